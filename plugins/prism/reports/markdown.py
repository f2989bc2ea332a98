"""Reports: Markdown, and for reports with charts an HTML page beside it, written to the backup
bucket under reports/, keyed by DAG and period.

A report names the window it covers and, for point-in-time figures, when they were captured, so a
report made in a backfill never passes for one made at the time. Every published report is
recorded for the dashboard, which links it; a `ReportOperator` (reports.links) links it from its task too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prism.alerts import alert
from prism.monitoring.dashboard_records import now_iso, record
from prism.settings import connections
from prism.settings.config import runtime_config

REPORTS_PREFIX = "reports"


def report_key(dag_id: str, name: str, period: str) -> str:
    """reports/<dag_id>/<period>/<name>.md, e.g. reports/prism_monthly/202611/performance.md"""
    return f"{REPORTS_PREFIX}/{dag_id}/{period}/{name}.md"


def markdown(
    title: str, window: tuple[datetime, datetime], sections: dict[str, list[str] | str], captured: dict | None = None
) -> str:
    """A report: title, the window, optional capture labels, then sections of lines."""
    lines = [f"# {title}", "", f"Window: {window[0].isoformat()} to {window[1].isoformat()} (UTC)"]
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
        lines += ["", f"## {heading}", ""]
        lines += body if isinstance(body, list) else [body]
    return "\n".join(lines) + "\n"


def html_key(key: str) -> str:
    """The HTML page beside a Markdown report: reports/<dag_id>/<period>/<name>.html"""
    return key.rsplit(".", 1)[0] + ".html"


def publish_report(bucket: str, key: str, text: str, title: str | None = None, has_html: bool = False) -> str:
    """Write a report object and record it (a Markdown one, with whether an HTML page is beside it) for
    the dashboard; its s3:// URL."""
    connections.s3().load_string(text, key=key, bucket_name=bucket, replace=True)
    if key.endswith(".md"):
        record(
            "report",
            {
                "at": now_iso(),
                "bucket": bucket,
                "key": key,
                "title": title or (text.partition("\n")[0].lstrip("# ") or key),
                "html": has_html,
            },
            append=True,
        )
    return f"s3://{bucket}/{key}"


@dataclass
class Report:
    """A report ready to deliver: where it goes (reports/<dag_id>/<period>/<name>.md), its text, the
    alerts its figures call for (subject, body, severity, and the troubleshooting `investigations` to run) and what its task returns besides."""

    name: str
    period: str
    text: str
    summary: dict = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)  # html_reports.chart(): SVG for HTML, figures for Markdown


def deliver(dag_id: str, report: Report) -> dict:
    """Send the report's alerts (with the findings of the investigations an alert names), publish it to
    the config's bucket (Markdown, and HTML when it has charts), and return its addresses with its summary."""
    for item in report.alerts:
        alert(item["subject"], item.get("body", ""), item.get("severity", "error"), item.get("investigations", ()))
    bucket, key = runtime_config()["backups"]["bucket"], report_key(dag_id, report.name, report.period)
    urls = {}
    if report.charts:
        # Only a report with charts needs pages, which pulls markdown_it (~40 ms) into the DAG files' parsing.
        from prism.reports.pages import chart_markdown, render

        urls["report_html"] = publish_report(bucket, html_key(key), render(report.text, report.charts))
        text = report.text + "\n".join(["", "## Charts (figures)", *chart_markdown(report.charts)]) + "\n"
    else:
        text = report.text
    return {"report": publish_report(bucket, key, text, has_html=bool(urls)), **urls, **report.summary}


# ---- building blocks of report text ------------------------------------------------------------


def pulled(context, task_id: str):
    """What a task of this run returned (None when it was skipped or returned nothing)."""
    return context["ti"].xcom_pull(task_ids=task_id)


def result_rows(result: dict | None) -> list[dict]:
    """The rows of a D1SqlOperator result, [] when it has none (or the task did not run)."""
    return (result or {}).get("rows") or []


def number(n) -> str:
    """1234567 -> '1,234,567', 2.5 -> '2.50', anything else as str()."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}" if isinstance(n, float) else str(n)


def traffic_lines(traffic: dict) -> list[str]:
    """Report lines for a traffic_in() result: requests, errors, success rate, latency, and its note."""
    if not traffic.get("available"):
        return [f"- Traffic figures {traffic['note']}"]
    wall = traffic.get("wall_time_ms") or {}
    lines = [
        f"- Window queried: {traffic['window']['start']} to {traffic['window']['end']}",
        f"- Total requests: {number(traffic['requests'])}",
        f"- Errors: {number(traffic['errors'])} (error rate {traffic['error_rate_percent']}%)",
        f"- Success rate: {round(100 - traffic['error_rate_percent'], 4)}%",
        f"- P95 latency: {wall.get('p95', 'n/a')} ms (p50 {wall.get('p50', 'n/a')} ms, p99 {wall.get('p99', 'n/a')} ms)",
    ]
    return lines + ([f"- Note: {traffic['note']}"] if traffic.get("note") else [])


def checklist_item(done: bool | None, text: str) -> str:
    """A checklist line: [x] done, [!] needs attention, [ ] not done (skipped)."""
    return f"- [{'x' if done else '!' if done is False else ' '}] {text}"
