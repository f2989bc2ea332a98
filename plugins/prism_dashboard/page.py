"""The dashboard page: data.dashboard()'s figures as one HTML page with inline SVG charts (pure: no
I/O). The page is a Jinja2 template with autoescaping (templates/dashboard.html.j2): every value the
DAGs recorded, even a "number" the Worker sent as text, reaches the page as escaped text. Only the
charts are markup, and svg_charts escapes what goes into them.

Times are shown for people: "2026-12-06 17:43 UTC (3 min ago)", the recorded ISO value in a
`<time datetime title>` (its tooltip). "Ago" is measured from the page's own time (`data["now"]`, the
moment data.dashboard() read the records), never from the clock, so a page is the same for the same
data; a time after it reads "in 5 min", and a value that is no time with a zone is shown as it is.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from prism.monitoring.plan_limits import API_REQUESTS_PER_WINDOW
from prism.reports.charts import line_chart, status_strip

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The px a chart is drawn for: a card's inner width at 1440 px (three columns of dashboard.css's grid).
# Its text is then at its nominal size (charts.FONT px); a narrower card shrinks the chart, a wider one
# never grows it. Change it with the grid.
CHART_WIDTH = 420
# Badge colours by state; any other state (a value from a record) gets the neutral class.
BADGE_CLASSES = {
    "healthy",
    "verified",
    "ok",
    "degraded",
    "warning",
    "unhealthy",
    "failed",
    "error",
    "none",
    "checksummed",
}

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _n(v, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{v:,.0f}" if _is_num(v) else str(v)


def _bytes(v) -> str:
    if v is None:
        return "n/a"
    if not _is_num(v):
        return str(v)
    for unit in ("B", "KB", "MB", "GB"):
        if v < 1000 or unit == "GB":
            # 500 MB, 917.5 KB, 12 B: no ".0" that reads as a float's repr
            return (f"{v:,.1f}".removesuffix(".0") if unit != "B" else f"{v:,.0f}") + f" {unit}"
        v /= 1000
    return str(v)


def _age(since, now: datetime) -> str:
    if not since:
        return "n/a"
    try:
        seconds = (now - datetime.fromisoformat(str(since))).total_seconds()
    except (TypeError, ValueError):
        return "n/a"
    if seconds < -300:  # captured "after" now: a clock or a record is wrong; no age to show
        return "in the future"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _span(seconds: float) -> str:
    """A positive duration in words, rounded down: 4 min, 2 h 5 min, 30 h, 12 days, 2.3 years."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 10:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    if hours < 48:
        return f"{hours} h"
    days = hours // 24
    return f"{days} days" if days < 730 else f"{days / 365.25:.1f} years"


def ago(then: datetime, now: datetime) -> str:
    """How long before `now` `then` was, in words; a time after `now` (a clock ahead of the page's, or
    a record from the future) says so: "in 5 min". Within a minute either way: "just now"."""
    seconds = (now - then).total_seconds()
    if abs(seconds) < 60:
        return "just now"
    return f"{_span(seconds)} ago" if seconds > 0 else f"in {_span(-seconds)}"


def parse_time(value) -> datetime | None:
    """An ISO 8601 time with its zone ("Z" too), None for anything else: a time without a zone is
    not guessed at, and text is not a time."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return t if t.tzinfo is not None and t.utcoffset() is not None else None


def when(value, now: datetime) -> dict:
    """A recorded time for the page: `text` in UTC to the minute, `ago` from the page's time `now`, and
    `iso` (the exact value, for <time datetime> and its tooltip); a value that is no time: its text
    as it is (escaped by the template), with no `iso`."""
    t = parse_time(value)
    try:
        if t is not None:
            return {
                "iso": t.isoformat(),
                "text": t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "ago": ago(t, now),
            }
    except OverflowError:  # a year-1 or year-9999 time whose UTC falls off the calendar
        pass
    return {"iso": None, "text": "n/a" if value is None or value == "" else str(value), "ago": ""}


# What must not wrap inside free text: an ISO time, or a figure with its unit ("327 ms", "2.4 MB", "0.5%").
_UNBROKEN = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"
    r"|\$?\d[\d,]*(?:\.\d+)?(?: ?(?:ms|s|min|h|days|%|[KMGT]?B)\b|%)"
)


def segments(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (part, keep whole) pieces: ISO times and figures with units are kept whole
    (the template puts them in a nowrap span), the rest wraps. Joined, the parts are `text`."""
    out, at = [], 0
    for m in _UNBROKEN.finditer(text):
        if m.start() > at:
            out.append((text[at : m.start()], False))
        out.append((m.group(), True))
        at = m.end()
    if at < len(text):
        out.append((text[at:], False))
    return out


def body_lines(body: str) -> list[dict]:
    """An alert's text line by line: each line's indentation (in columns, tab-size 4 as in
    dashboard.css) becomes its block's padding, plus a list marker's "- " for the lines it wraps onto,
    so a long line wraps under itself instead of at the card's edge. The text of a line is the rest of
    it (in `segments()`), its line break kept, so the page's text reads as the alert's."""
    lines = body.split("\n")
    out = []
    for i, line in enumerate(lines):
        rest = line.lstrip(" \t")
        column = 0
        for ch in line[: len(line) - len(rest)]:
            column = column + 4 - column % 4 if ch == "\t" else column + 1
        marker = 2 if rest[:2] in ("- ", "* ", "• ") else 0
        out.append(
            {
                "parts": segments(rest + ("\n" if i < len(lines) - 1 else "")),
                "indent": min(column, 40),
                "hang": marker,
            }
        )
    return out


def _badge(state) -> dict:
    text = str(state)
    return {"text": text, "css": text if text in BADGE_CLASSES else "none"}


def _bar(percent) -> dict | None:
    if not _is_num(percent):
        return None
    return {
        "title": f"{percent}%",
        "css": "hot" if percent >= 80 else "",
        "width": f"{max(0.0, min(percent, 100)):.1f}",
    }


def _text(v, limit: int | None = None) -> str:
    s = "" if v is None else str(v)
    return s[:limit] if limit else s


def _points(hourly: list, field: str) -> list[tuple[datetime, float]]:
    """(hour, value) of the hours whose time parses and whose value is a number: a chart draws figures only."""
    out = []
    for h in hourly if isinstance(hourly, list) else []:
        try:
            when = datetime.fromisoformat(str(h["hour"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            continue
        value = h.get(field)
        if _is_num(value) and when.tzinfo is not None:
            out.append((when, float(value)))
    return out


def _health(data: dict, now: datetime) -> dict:
    history, latest = data["health"], data["latest_health"]
    strip = status_strip(
        "Health over the last 24 hours (one mark a run, oldest first)",
        [
            (
                str(h["status"]),
                f"{h['at']}: {h['status']}" + (f" ({', '.join(map(str, h['crossed']))})" if h["crossed"] else ""),
            )
            for h in history
        ],
        width=CHART_WIDTH,
    )
    checks = [
        {
            "name": _text(name),
            "result": _badge("ok" if c.get("ok") else "failed"),
            "ms": f"{c['ms']:.0f}" if _is_num(c.get("ms")) else _text(c.get("ms")),
            "detail": _text(c.get("detail"), 140),
        }
        for name, c in ((latest or {}).get("checks") or {}).items()
    ]
    return {
        "status": _badge(latest["status"] if latest else "none"),
        "checked": when(latest["at"], now) if latest else None,
        "runs": str(len(history)),
        "failed": str(sum(h["status"] == "unhealthy" for h in history)),
        "strip": Markup(strip),
        "checks": checks,
    }


def _requests(usage: dict, now: datetime) -> dict:
    req, perf, hourly = usage["requests"], usage["performance"], usage.get("hourly") or []
    chart = line_chart("P95 latency per hour (ms)", {"p95": _points(hourly, "p95_ms")}, "ms", width=CHART_WIDTH)
    volume = line_chart(
        "Requests and errors per hour",
        {"requests": _points(hourly, "requests"), "errors": _points(hourly, "errors")},
        "per hour",
        width=CHART_WIDTH,
    )
    return {
        "total": _n(req.get("total")),
        "success_rate": f"{req.get('success_rate')}%",
        "error_rate": f"{req.get('error_rate')}%",
        "p95": f"{perf.get('p95_latency_ms')} ms",
        "p50_p99": f"{perf.get('p50_latency_ms')} / {perf.get('p99_latency_ms')} ms",
        "latency_chart": Markup(chart),
        "volume_chart": Markup(volume),
        "start": when(usage["window"]["start"], now),
        "end": when(usage["window"]["end"], now),
        "captured_at": when(usage.get("captured_at"), now),
    }


def _budget(usage: dict | None, now: datetime) -> dict | None:
    budget = (usage or {}).get("api_budget")
    if not budget:
        return None
    used, limit, window = budget.get("used"), budget.get("limit"), budget.get("window_seconds")
    percent = (
        round(100 * used / (limit or API_REQUESTS_PER_WINDOW), 1)
        if _is_num(used) and (limit is None or _is_num(limit))
        else None
    )
    minutes = f"{window // 60}-minute" if _is_num(window) else f"{window}"
    # The REST calls the health monitor's run made, measured by its tasks (records older than the count: n/a).
    by_task = budget.get("calls_by_task")
    return {
        "used_of_limit": f"{_n(used)} / {_n(limit)}",
        "window_label": f"requests used in the current {minutes} window",
        "remaining": _n(budget.get("remaining")),
        "rate_limited": _text(budget.get("rate_limited_responses")),
        "bar": _bar(percent),
        "observed_at": when(budget.get("observed_at"), now) if budget.get("observed_at") else None,
        "calls_this_run": _n(budget.get("calls_this_run")),
        "calls_by_task": ", ".join(f"{_text(t)} {_n(n)}" for t, n in by_task.items())
        if isinstance(by_task, dict)
        else "",
    }


def _resources(usage: dict) -> dict:
    def amount(r: dict, key: str) -> str:
        return _bytes(r[key]) if str(r.get("name", "")).endswith("bytes") else _n(r[key])

    rows = [
        {
            "name": _text(r.get("name")),
            "label": _text(r.get("label")),
            "counted": _text(r.get("counted")),
            "used": amount(r, "used"),
            "free_limit": amount(r, "free_limit"),
            "free_percent": (_n(r["free_percent"], 1) if r.get("free_percent") is not None else "n/a") + "%",
            "bar": _bar(r.get("free_percent")),
            "paid_limit": amount(r, "paid_limit") if r.get("paid_limit") else "no limit",
            "paid_percent": (_n(r["paid_percent"], 2) + "%") if r.get("paid_percent") is not None else "",
        }
        for r in usage.get("limits") or []
    ]
    d1, vec = usage.get("d1") or {}, usage.get("vectorize") or {}
    return {
        "rows": rows,
        "d1_name": _text(d1.get("name")),
        "d1_tables": _text(d1.get("num_tables")),
        "d1_size": _bytes(d1.get("file_size")),
        "vectors": _n(vec.get("vectors")),
        "dimensions": _text(vec.get("dimensions")),
    }


def _cache(usage: dict) -> dict:
    cache, tokens = usage["cache"], usage["tokens"]
    cost = tokens.get("cost_saved_usd")
    return {
        "hit_rate": f"{cache.get('hit_rate')}%",
        "entries": _n(cache.get("entries")),
        "size": _bytes(cache.get("size_bytes")),
        "evictions": _n(cache.get("evictions")),
        "tokens_saved": _n(tokens.get("saved")),
        "cost_saved": f"${cost:,.2f}" if _is_num(cost) else f"${cost}",
        "hits": _n(cache.get("hits")),
        "misses": _n(cache.get("misses")),
    }


def _backups(backups: dict, now: datetime) -> list[dict]:
    def row(s: dict) -> dict:
        return {
            "period": _text(s.get("period")),
            "captured_at": when(s.get("captured_at"), now),
            "age": _age(s.get("captured_at"), now),
            "size": _bytes(s.get("bytes")),
            "status": _badge(s.get("status")),
            "method": _text(s.get("method")),
            "problems": _text("; ".join(map(str, s.get("problems") or [])), 200),
        }

    out = []
    for cadence, entry in backups.items():
        last, latest = entry["last_verified"], entry["latest"]
        out.append(
            {
                "cadence": _text(cadence),
                "last": row(last) if last else None,
                "attempt": row(latest) if latest is not last and latest["status"] != "verified" else None,
            }
        )
    return out


def _reports(reports: list[dict], now: datetime) -> list[dict]:
    out = []
    for r in reports:
        key = str(r.get("key") or "")
        # A relative link under the dashboard's reports/ route: quote() leaves no ':' so no scheme can form.
        out.append(
            {
                "title": _text(r.get("title")),
                "dag_id": _text(r.get("dag_id")),
                "at": when(r.get("at"), now),
                "markdown_href": "reports/" + quote(key),
                "html_href": "reports/" + quote(key[:-3] + ".html") if r.get("html") and key.endswith(".md") else None,
            }
        )
    return out


def _alerts(alerts: list[dict], now: datetime) -> list[dict]:
    return [
        {
            "severity": _badge(a.get("severity")),
            "at": when(a.get("at"), now),
            "subject": _text(a.get("subject")),
            "investigations": ", ".join(map(str, a.get("investigations") or [])),
            "body": body_lines(_text(a.get("body"))),
        }
        for a in alerts
    ]


def render(data: dict) -> str:
    # The page's time: when data.dashboard() read the records. Every "ago" is measured from it.
    now = datetime.fromisoformat(data["now"])
    usage = data["usage"]
    return _env.get_template("dashboard.html.j2").render(
        now=when(data["now"], now),
        health=_health(data, now),
        requests=_requests(usage, now) if usage else None,
        budget=_budget(usage, now),
        resources=_resources(usage) if usage else None,
        cache=_cache(usage) if usage else None,
        backups=_backups(data["backups"], now),
        alerts=_alerts(data["alerts"], now),
        reports=_reports(data["reports"], now),
    )
