"""The daily log review: a window's Worker traffic and D1 security events against the thresholds."""

from __future__ import annotations

from datetime import datetime

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
            f"| {c['metric']} | {c['value']} | {c['threshold']} | {'CROSSED' if c['crossed'] else 'ok'} |"
            for c in result["checks"]
        ],
        "Traffic (GraphQL Analytics)": [
            f"- requests: {traffic['requests']}",
            f"- errors: {traffic['errors']}",
            f"- by status: {traffic['status']}",
            f"- wall time (ms): {traffic['wall_time_ms']}",
        ],
        "Security events (D1)": [f"- {t}: {n}" for t, n in sorted(result["security_events"].items())] or ["- none"],
    }
