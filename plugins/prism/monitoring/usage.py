"""PRISM's usage as it is now, for the health monitor's `usage` task and the dashboard: the Worker's
`/metrics` (24 h), the D1 database's size, the Vectorize index, the last 24 hours of traffic per hour
(GraphQL) and the API budget, compared with the thresholds and the plans' limits.

The D1 and Vectorize figures are the ones the run's health check read (its `health` record): a run asks
Cloudflare for each once. Point-in-time: the snapshot carries when it was captured, and the task skips
inside a backfill.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prism.monitoring.api_calls import ApiCalls
from prism.monitoring.dashboard_records import budget_state
from prism.monitoring.plan_limits import usage_against_limits
from prism.monitoring.troubleshooting import FOR_METRIC
from prism.monitoring.worker import PrismWorkerHook

METRICS_PERIOD = "24h"


def usage_snapshot(cf: dict, now: datetime, checked: dict, calls: ApiCalls) -> dict:
    """Everything the dashboard shows about requests, resources, cache and tokens: the Worker's /metrics
    (not an API call), D1 and Vectorize as the health check recorded them (`checked`: its `health` record,
    {} when it recorded none) and one GraphQL call at monitoring priority, counted in `calls`."""
    # The Cloudflare hooks pull requests (~35 ms): imported when the task runs, not at DAG parse time.
    from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook

    missing: dict[str, str] = {}
    read = checked.get("read") or {}

    def from_check(name: str) -> dict:
        # What the check could not read (it failed, or did not run) is unavailable here too: asking again
        # would spend the budget on a source that just failed.
        if name not in read:
            detail = (checked.get("checks") or {}).get(name, {}).get("detail")
            missing[name] = f"not read by the health check: {detail or 'no health check recorded in this run'}"
        return read.get(name) or {}

    metrics = PrismWorkerHook().metrics(METRICS_PERIOD)  # without the Worker's figures there is nothing to record
    analytics, hourly = None, []
    try:
        analytics = calls.watch(WorkersAnalyticsHook(priority="monitor"))
        hourly = analytics.worker_hourly(cf["worker_name"], now - timedelta(hours=24), now)
    except Exception as exc:  # noqa: BLE001 - a source that is down is the health check's to report
        missing["hourly"] = f"{type(exc).__name__}: {exc}"
    budget = budget_state(analytics.budget) if analytics is not None else None
    snapshot = figures(metrics, from_check("d1"), from_check("vectorize"), hourly, budget)
    return {**snapshot, "unavailable": missing}


def figures(metrics: dict, db: dict, vec: dict, hourly: list[dict], budget: dict | None) -> dict:
    """The snapshot from what was read (pure, so it can be checked on given figures)."""
    r = metrics["resources"]
    stored = r.get("vectorize_stored_dimensions", (vec.get("vectorCount") or 0) * (vec.get("dimensions") or 0))
    used = {
        "ai_neurons": r["neurons_used"],
        "d1_rows_read": r.get("d1_rows_read_today"),
        "d1_rows_written": r.get("d1_rows_written_today"),
        "d1_database_bytes": db.get("file_size"),
        "kv_reads": r.get("kv_reads_today"),
        "kv_writes": r.get("kv_writes_today"),
        "vectorize_stored_dimensions": stored,
        "vectorize_queried_dimensions": r.get("vectorize_queried_dimensions_month"),
    }
    return {
        "window": metrics["window"],
        "requests": metrics["requests"],
        "performance": metrics["performance"],
        "cache": metrics["cache"],
        "tokens": metrics["tokens"],
        "d1": {"name": db.get("name"), "file_size": db.get("file_size"), "num_tables": db.get("num_tables")},
        "vectorize": {"vectors": vec.get("vectorCount"), "dimensions": vec.get("dimensions")},
        "limits": usage_against_limits(used),
        "hourly": hourly,
        "api_budget": budget,
    }


def threshold_checks(snapshot: dict, thresholds: dict) -> list[dict]:
    """The monitor's checks: the 24 h error rate and p95 and the highest free-tier share used, each
    with the troubleshooting investigation a crossing calls for."""
    free = [row for row in snapshot["limits"] if row["free_percent"] is not None]
    top = max(free, key=lambda row: row["free_percent"], default=None)
    checks = [
        ("error rate (%)", snapshot["requests"]["error_rate"], thresholds["error_rate_percent"]),
        ("p95 latency (ms)", snapshot["performance"]["p95_latency_ms"], thresholds["p95_latency_ms"]),
        ("free-tier usage (%)", top["free_percent"] if top else 0.0, thresholds["free_tier_usage_percent"]),
    ]
    return [
        {
            "metric": m,
            "value": v,
            "threshold": t,
            "crossed": _crossed(v, t),
            "investigation": FOR_METRIC[m],
            **({"resource": top["label"]} if m.startswith("free") and top else {}),
        }
        for m, v, t in checks
    ]


def _crossed(value, threshold) -> bool:
    # A figure the Worker sends that is no number (a bug, or a Worker replaced) is a crossing to look at,
    # not a TypeError that leaves the dashboard without the snapshot.
    return not isinstance(value, (int, float)) or isinstance(value, bool) or value >= threshold
