"""The dashboard page: data.dashboard()'s figures as one HTML page with inline SVG charts (pure: no
I/O). The page is a Jinja2 template with autoescaping (templates/dashboard.html.j2): every value the
DAGs recorded, even a "number" the Worker sent as text, reaches the page as escaped text. Only the
charts are markup, and svg_charts escapes what goes into them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from prism.monitoring.plan_limits import API_REQUESTS_PER_WINDOW
from prism.reports.charts import line_chart, status_strip

TEMPLATES = Path(__file__).resolve().parent / "templates"
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
            return f"{v:,.1f} {unit}" if unit != "B" else f"{v:,} B"
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


def _health(data: dict) -> dict:
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
        "when": "now" + (f" (checked {latest['at']})" if latest else ""),
        "runs": str(len(history)),
        "failed": str(sum(h["status"] == "unhealthy" for h in history)),
        "strip": Markup(strip),
        "checks": checks,
    }


def _requests(usage: dict) -> dict:
    req, perf, hourly = usage["requests"], usage["performance"], usage.get("hourly") or []
    chart = line_chart("P95 latency per hour (ms)", {"p95": _points(hourly, "p95_ms")}, "ms")
    volume = line_chart(
        "Requests and errors per hour",
        {"requests": _points(hourly, "requests"), "errors": _points(hourly, "errors")},
        "per hour",
    )
    return {
        "total": _n(req.get("total")),
        "success_rate": f"{req.get('success_rate')}%",
        "error_rate": f"{req.get('error_rate')}%",
        "p95": f"{perf.get('p95_latency_ms')} ms",
        "p50_p99": f"{perf.get('p50_latency_ms')} / {perf.get('p99_latency_ms')} ms",
        "latency_chart": Markup(chart),
        "volume_chart": Markup(volume),
        "start": _text(usage["window"]["start"]),
        "end": _text(usage["window"]["end"]),
        "captured_at": _text(usage.get("captured_at")),
    }


def _budget(usage: dict | None) -> dict | None:
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
    return {
        "used_of_limit": f"{_n(used)} / {_n(limit)}",
        "window_label": f"requests used in the current {minutes} window",
        "remaining": _n(budget.get("remaining")),
        "rate_limited": _text(budget.get("rate_limited_responses")),
        "bar": _bar(percent),
        "observed_at": _text(budget.get("observed_at")),
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
            "captured_at": _text(s.get("captured_at")),
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


def _reports(reports: list[dict]) -> list[dict]:
    out = []
    for r in reports:
        key = str(r.get("key") or "")
        # A relative link under the dashboard's reports/ route: quote() leaves no ':' so no scheme can form.
        out.append(
            {
                "title": _text(r.get("title")),
                "dag_id": _text(r.get("dag_id")),
                "at": _text(r.get("at")),
                "markdown_href": "reports/" + quote(key),
                "html_href": "reports/" + quote(key[:-3] + ".html") if r.get("html") and key.endswith(".md") else None,
            }
        )
    return out


def _alerts(alerts: list[dict]) -> list[dict]:
    return [
        {
            "severity": _badge(a.get("severity")),
            "at": _text(a.get("at")),
            "subject": _text(a.get("subject")),
            "investigations": ", ".join(map(str, a.get("investigations") or [])),
            "body": _text(a.get("body")),
        }
        for a in alerts
    ]


def render(data: dict) -> str:
    now = datetime.fromisoformat(data["now"])
    usage = data["usage"]
    return _env.get_template("dashboard.html.j2").render(
        now=data["now"],
        health=_health(data),
        requests=_requests(usage) if usage else None,
        budget=_budget(usage),
        resources=_resources(usage) if usage else None,
        cache=_cache(usage) if usage else None,
        backups=_backups(data["backups"], now),
        alerts=_alerts(data["alerts"]),
        reports=_reports(data["reports"]),
    )
