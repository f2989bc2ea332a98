"""Reports: one Markdown text and one HTML page rendered from it (reports.pages), written to the backup
bucket as reports/<dag_id>/<period>/<name>.md and .html. The Markdown stays for people who grep; the
dashboard and the tasks' extra links (reports.links) open the HTML.

A report is made for a window and depends on that window alone, so making it again (a retry, a
backfill reprocessing completed runs) rewrites no byte:

- Its title, window and sections come from the run's data interval (reports.periods), stated once.
- What it reads from GraphQL is the part of the window analytics_windows decides from the window.
  Once GraphQL no longer holds that part, the figures are `expired`: a report that already exists is
  then kept as it is (its figures were read while they could be), else it says they are unavailable.
- Point-in-time figures (the Worker's /metrics, resource sizes, the bucket's backup sets, npm audit:
  what they are when read, not figures of the window) are `Live` sections. They are read only when
  the run is timely: outside a backfill, within LIVE_GRACE of the window's end (live_capture()). A
  report that already exists keeps the live sections it has (the first capture); a late run that
  finds none states that they are left out.
- An object whose bytes would not change is not written again: same keys, same ETags.

Numbers go through number(): thousands separators, integers as integers, no Python reprs. Every
published report is recorded for the dashboard.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prism.alerts import alert
from prism.backups.deletion_guard import refuse_future_window
from prism.monitoring.dashboard_records import now_iso, record
from prism.reports.pages import chart_markdown, render, title_of
from prism.runtime import capture_labels
from prism.settings import connections
from prism.settings.config import runtime_config

log = logging.getLogger(__name__)

REPORTS_PREFIX = "reports"
# A capture taken this long after its window's end no longer stands for the window.
LIVE_GRACE = timedelta(days=1)
CHARTS_HEADING = "Charts (figures)"
LEFT_OUT = (
    "- Left out: {what}. These are point-in-time figures, read as they are at the moment of reading, and this "
    "report was made after its window had ended (inside a backfill, or later), when they would not describe it."
)


def report_key(dag_id: str, name: str, period: str) -> str:
    """reports/<dag_id>/<period>/<name>.md, e.g. reports/prism_monthly/202611/performance.md"""
    return f"{REPORTS_PREFIX}/{dag_id}/{period}/{name}.md"


def html_key(key: str) -> str:
    """The HTML page beside a Markdown report: reports/<dag_id>/<period>/<name>.html"""
    return key.rsplit(".", 1)[0] + ".html"


# ---- numbers and text --------------------------------------------------------------------------


def number(n, places: int = 2) -> str:
    """A figure as a person reads it: 1234567 -> '1,234,567', 3.0 -> '3', 2.5 -> '2.5', 0.12345 -> '0.12'
    (up to `places` decimals), None -> 'n/a', lists and dicts item by item; never a Python repr."""
    if n is None:
        return "n/a"
    if isinstance(n, bool):
        return "yes" if n else "no"
    if isinstance(n, int):
        return f"{n:,}"
    if isinstance(n, float):
        if not math.isfinite(n):
            return "n/a"
        if n.is_integer() or round(n, places) == round(n):
            return f"{round(n):,}"
        return f"{n:,.{places}f}".rstrip("0").rstrip(".")
    if isinstance(n, dict):
        return ", ".join(f"{one_line(k)} {number(v, places)}" for k, v in n.items()) or "none"
    if isinstance(n, (list, tuple, set, frozenset)):
        return ", ".join(number(v, places) for v in n) or "none"
    return one_line(n)


def percent(n) -> str:
    """A percentage with up to 4 decimals: 0.1234 -> '0.1234%', 90.0 -> '90%'."""
    return "n/a" if n is None else number(n, 4) + "%"


def one_line(text) -> str:
    """A value on one line: a line break in a name must not start a heading or a list item."""
    return " ".join(str(text).split())


def _line(line: str) -> str:
    # A report line on one line, its indent (a nested list item) kept.
    indent = len(line) - len(line.lstrip(" "))
    return " " * indent + one_line(line)


def code(text) -> str:
    """An inline code span around any text: its fence is longer than any run of backticks inside."""
    text = one_line(text)
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ---- point-in-time figures -------------------------------------------------------------------


def live_capture(context, window_end: datetime) -> dict:
    """Whether a task may read point-in-time figures for a report of a window ending at `window_end`,
    and when it reads them: {captured_at, timely}. Timely: not in a backfill, and within LIVE_GRACE
    of the window's end (a scheduled run, or a manual one made for a window that just ended)."""
    labels = capture_labels(context)
    late = datetime.fromisoformat(labels["captured_at"]) - window_end > LIVE_GRACE
    return {"captured_at": labels["captured_at"], "timely": not (labels["in_backfill"] or late)}


@dataclass(frozen=True)
class Live:
    """A section of point-in-time figures: `lines` as read at `captured_at`, or None when the run was
    too late to read them (see live_capture())."""

    what: str
    lines: list[str] | None = None
    captured_at: str | None = None

    def body(self) -> list[str]:
        if self.lines is None:
            return [LEFT_OUT.format(what=self.what)]
        return [
            f"Captured at {self.captured_at}: point-in-time figures, as they were when this report was first "
            "made at its window's end.",
            "",
            *self.lines,
        ]


def live(what: str, capture: dict, lines: list[str] | None) -> Live:
    """The live section of a capture (live_capture()): its lines when it was timely, else left out."""
    if not capture.get("timely") or lines is None:
        return Live(what)
    return Live(what, list(lines), capture["captured_at"])


# ---- a report ------------------------------------------------------------------------------


def markdown(
    title: str, window: tuple[datetime, datetime], sections: dict[str, list[str] | str], captured: dict | None = None
) -> str:
    """A report: title, the window, optional capture labels, then sections of lines (each on one line)."""
    lines = [f"# {one_line(title)}", "", f"Window: {window[0].isoformat()} to {window[1].isoformat()} (UTC)"]
    if captured:
        lines.append(
            f"Captured at {captured['captured_at']}"
            + (
                " (inside a backfill: live figures are from the capture time, not the window)"
                if captured.get("in_backfill")
                else ""
            )
        )
    for heading, body in sections.items():
        lines += ["", f"## {one_line(heading)}", ""]
        lines += [_line(line) if line else "" for line in (body if isinstance(body, list) else [body])]
    return "\n".join(lines) + "\n"


def sections_of(text: str) -> dict[str, list[str]]:
    """The sections of a report's Markdown by heading: the lines between `## heading` and the next one."""
    out: dict[str, list[str]] = {}
    heading = None
    for line in text.split("\n"):
        if line.startswith("## "):
            heading = line[3:]
            out[heading] = []
        elif heading is not None:
            out[heading].append(line)
    return {h: _trim(body) for h, body in out.items()}


def _trim(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start]:
        start += 1
    while end > start and not lines[end - 1]:
        end -= 1
    return lines[start:end]


@dataclass
class Report:
    """A report ready to deliver: where it goes (reports/<dag_id>/<period>/<name>.md), its title, the
    window it covers, its sections (lists of lines, or Live sections), the alerts its figures call for
    (subject, body, severity, the troubleshooting `investigations` to run), what its task returns
    besides, its charts (pages.chart()), and whether some figures had left GraphQL (`expired`)."""

    name: str
    period: str
    title: str
    window: tuple[datetime, datetime]
    sections: dict[str, list[str] | Live]
    summary: dict = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)
    charts: list[dict] | Callable[[dict[str, list[str]]], list[dict]] = field(default_factory=list)
    expired: bool = False

    def compose(self, kept: dict[str, list[str]] | None = None) -> tuple[str, list[dict]]:
        """The Markdown and the charts: live sections from `kept` (an earlier report's sections) when it
        has them. `charts` may be a function of the sections' final lines, so a chart of a kept section
        is drawn from what the report shows."""
        kept = kept or {}
        body = {
            heading: (kept.get(one_line(heading)) or section.body()) if isinstance(section, Live) else section
            for heading, section in self.sections.items()
        }
        charts = self.charts(body) if callable(self.charts) else self.charts
        if charts:
            body[CHARTS_HEADING] = _trim(chart_markdown(charts))
        return markdown(self.title, self.window, body), charts

    def render(self, kept: dict[str, list[str]] | None = None) -> str:
        return self.compose(kept)[0]

    @property
    def text(self) -> str:
        return self.render()


def deliver(dag_id: str, report: Report) -> dict:
    """Publish the report (Markdown and HTML) to the config's bucket, keeping what an earlier report of
    the same window captured (see the module's doc), send its alerts, and return its addresses with its
    summary. A window that has not ended is refused before anything is sent or written."""
    refuse_future_window("", report.window[1], action=f"to write the report {report.title!r}")
    for item in report.alerts:
        alert(item["subject"], item.get("body", ""), item.get("severity", "error"), item.get("investigations", ()))
    s3, bucket = connections.s3(), runtime_config()["backups"]["bucket"]
    key = report_key(dag_id, report.name, report.period)
    existing = _read(s3, bucket, key)
    if existing is not None and report.expired:
        log.info("%s: kept as it is (GraphQL no longer holds all of the window it was made from)", key)
        text, charts, html = existing.decode(), [], _read(s3, bucket, html_key(key))
    else:
        (text, charts), html = report.compose(sections_of(existing.decode()) if existing else None), None
    md_url, html_url = _publish(s3, bucket, key, text, charts, report.title, existing, html)
    return {"report": md_url, "report_html": html_url, **report.summary}


def publish_report(bucket: str, key: str, text: str, title: str | None = None, has_html: bool = False) -> str:
    """Write a Markdown report and its HTML page rendered from it (`has_html`: the caller writes its own
    page beside it), unless their bytes are already there, and record them for the dashboard; any other
    key is written as it is. The object's s3:// URL."""
    s3 = connections.s3()
    if not key.endswith(".md"):
        _put(s3, bucket, key, text.encode(), _read(s3, bucket, key))
        return f"s3://{bucket}/{key}"
    return _publish(s3, bucket, key, text, [], title, _read(s3, bucket, key), own_page=has_html)[0]


def _publish(
    s3, bucket, key, text, charts, title, existing: bytes | None, html: bytes | None = None, own_page: bool = False
) -> tuple:
    _put(s3, bucket, key, text.encode(), existing)
    if not own_page:
        page = html if html is not None else render(text, charts).encode()
        _put(s3, bucket, html_key(key), page, _read(s3, bucket, html_key(key)))
    title = title or title_of(text) or key
    record(
        "report",
        {"at": now_iso(), "bucket": bucket, "key": key, "title": title, "html": True, "html_key": html_key(key)},
        append=True,
    )
    return f"s3://{bucket}/{key}", f"s3://{bucket}/{html_key(key)}"


def _read(s3, bucket: str, key: str) -> bytes | None:
    obj = s3.get_key(key, bucket) if s3.check_for_key(key, bucket) else None
    return obj.get()["Body"].read() if obj is not None else None


def _put(s3, bucket: str, key: str, body: bytes, existing: bytes | None) -> None:
    if body != existing:
        s3.load_bytes(body, key=key, bucket_name=bucket, replace=True)


# ---- building blocks of report text ------------------------------------------------------------


def pulled(context, task_id: str):
    """What a task of this run returned (None when it was skipped or returned nothing)."""
    return context["ti"].xcom_pull(task_ids=task_id)


def result_rows(result: dict | None) -> list[dict]:
    """The rows of a D1SqlOperator result, [] when it has none (or the task did not run)."""
    return (result or {}).get("rows") or []


def traffic_lines(traffic: dict) -> list[str]:
    """Report lines for a traffic_in() result: requests, errors, success rate, latency, and its note."""
    if not traffic.get("available"):
        return [f"- Traffic figures {traffic['note']}"]
    wall = traffic.get("wall_time_ms") or {}
    lines = [
        f"- Window queried: {traffic['window']['start']} to {traffic['window']['end']}",
        f"- Total requests: {number(traffic['requests'])}",
        f"- Errors: {number(traffic['errors'])} (error rate {percent(traffic['error_rate_percent'])})",
        f"- Success rate: {percent(100 - traffic['error_rate_percent'])}",
        f"- P95 latency: {number(wall.get('p95'))} ms (p50 {number(wall.get('p50'))} ms, "
        f"p99 {number(wall.get('p99'))} ms)",
    ]
    return lines + ([f"- Note: {traffic['note']}"] if traffic.get("note") else [])


def expired(*figures) -> bool:
    """Whether any of these analytics_windows results (dicts, or lists of them) had left GraphQL."""
    for f in figures:
        items = f if isinstance(f, list) else [f]
        if any(isinstance(i, dict) and i.get("expired") for i in items):
            return True
    return False


def checklist_item(done: bool | None, text: str) -> str:
    """A checklist line: [x] done, [!] needs attention, [ ] not done (skipped)."""
    return f"- [{'x' if done else '!' if done is False else ' '}] {text}"
