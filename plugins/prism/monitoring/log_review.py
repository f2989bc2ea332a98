"""The daily log review: a window's Worker traffic and D1 security events against the thresholds.

`review` and `report_sections` are pure; `window_bounds`, `window_traffic` and `review_and_report` are
prism_daily's `log_review` tasks (they take the Airflow context).
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from prism.alerts import alert
from prism.monitoring.troubleshooting import FOR_METRIC
from prism.reports.markdown import markdown, number, publish_report, report_key
from prism.runtime import sql_time, window
from prism.settings.config import runtime_config

DAG_ID = "prism_daily"
FAILED_AUTH_TYPES = ("failed_login", "unauthorized", "forbidden")
RATE_LIMIT_TYPES = ("rate_limited",)


def review(traffic: dict, events: dict[str, int], thresholds: dict, start: datetime, end: datetime) -> dict:
    """Each check as {metric, value, threshold, crossed}. Per-day thresholds scale to the window."""
    days = (end - start).total_seconds() / 86400
    failed_auth = sum(events.get(t, 0) for t in FAILED_AUTH_TYPES)
    rate_limited = sum(events.get(t, 0) for t in RATE_LIMIT_TYPES)
    p95 = traffic["wall_time_ms"].get("p95", 0.0)
    checks = [
        (
            "error rate (%)",
            traffic["error_rate_percent"],
            thresholds["error_rate_percent"],
            traffic["error_rate_percent"] >= thresholds["error_rate_percent"],
        ),
        ("p95 latency (ms)", p95, thresholds["p95_latency_ms"], p95 >= thresholds["p95_latency_ms"]),
        (
            "failed authentication attempts",
            failed_auth,
            round(thresholds["failed_auth_per_day"] * days, 2),
            failed_auth > thresholds["failed_auth_per_day"] * days,
        ),
        (
            "rate-limit violations",
            rate_limited,
            round(thresholds["rate_limited_per_day"] * days, 2),
            rate_limited > thresholds["rate_limited_per_day"] * days,
        ),
    ]
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "requests": traffic["requests"],
        "errors": traffic["errors"],
        "error_rate_percent": traffic["error_rate_percent"],
        "p95_ms": p95,
        "failed_auth": failed_auth,
        "rate_limited": rate_limited,
        "security_events": events,
        "checks": [{"metric": m, "value": v, "threshold": t, "crossed": c} for m, v, t, c in checks],
    }


def report_sections(result: dict, traffic: dict) -> dict[str, list[str]]:
    return {
        "Checks": ["| metric | value | threshold | status |", "|---|---|---|---|"]
        + [
            f"| {c['metric']} | {number(c['value'])} | {number(c['threshold'])} | {'CROSSED' if c['crossed'] else 'ok'} |"
            for c in result["checks"]
        ],
        "Traffic (GraphQL Analytics)": [
            f"- requests: {number(traffic['requests'])}",
            f"- errors: {number(traffic['errors'])}",
            f"- by status: {number(traffic['status'])}",
            f"- wall time (ms): {number(traffic['wall_time_ms'])}",
        ],
        "Security events (D1)": [f"- {t}: {number(n)}" for t, n in sorted(result["security_events"].items())]
        or ["- none"],
    }


def _period(end: datetime) -> str:
    """YYYYMMDD of the window's end: the day the run stands for."""
    return end.astimezone(timezone.utc).strftime("%Y%m%d")


def window_bounds(**context) -> dict:
    """The run's data interval, in the forms the other tasks bind."""
    start, end = window(context)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "start_sql": sql_time(start),
        "end_sql": sql_time(end),
        "period": _period(end),
    }


def window_traffic(**context) -> dict:
    """The Worker's requests, errors and wall-time quantiles in the window (GraphQL Analytics)."""
    start, end = window(context)
    return WorkersAnalyticsHook().worker_traffic(runtime_config()["cloudflare"]["worker_name"], start, end)


def review_and_report(traffic: dict, security: dict, **context) -> dict:
    """Compare the window's figures with the thresholds, publish the report, alert on each
    threshold crossed. `security`: the `security_events` query's result (rows of type, events)."""
    config = runtime_config()
    start, end = window(context)
    events = {row["type"]: row["events"] for row in security.get("rows", [])}
    result = review(traffic, events, config["thresholds"], start, end)
    period = _period(end)
    text = markdown(f"PRISM daily log review {period}", (start, end), report_sections(result, traffic))
    result["report"] = publish_report(config["backups"]["bucket"], report_key(DAG_ID, "log_review", period), text)
    for check in result["checks"]:
        if check["crossed"]:  # with the findings of the guide's matching troubleshooting
            alert(
                f"Daily log review {period}: {check['metric']} is {check['value']}, threshold {check['threshold']}",
                f"window {start.isoformat()} to {end.isoformat()}; report {result['report']}",
                "warning",
                [FOR_METRIC[check["metric"]]] if check["metric"] in FOR_METRIC else [],
            )
    return result
