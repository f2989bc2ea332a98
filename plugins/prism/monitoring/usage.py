"""PRISM's usage as it is now, for the health monitor's `usage` task and the dashboard: the Worker's
`/metrics` (24 h), the D1 database's size, the Vectorize index, the last 24 hours of traffic per hour
(GraphQL) and the API budget, compared with the thresholds and the plans' limits.

Point-in-time: the snapshot carries when it was captured, and the task skips inside a backfill.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prism.monitoring.dashboard_records import budget_state
from prism.monitoring.plan_limits import usage_against_limits
from prism.monitoring.troubleshooting import FOR_METRIC
from prism.monitoring.worker import PrismWorkerHook

METRICS_PERIOD = "24h"


def usage_snapshot(cf: dict, now: datetime) -> dict:
    """Read everything the dashboard shows about requests, resources, cache and tokens (one Worker
    call, three API calls at monitoring priority)."""
    # The Cloudflare hooks pull requests (~35 ms): imported when the task runs, not at DAG parse time.
    from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    d1 = D1Hook(priority="monitor")
    missing: dict[str, str] = {}

    def read(name: str, fetch, default):
        # A source that is down is the health check's failure to report; the rest is still recorded.
        try:
            return fetch()
        except Exception as exc:  # noqa: BLE001
            missing[name] = f"{type(exc).__name__}: {exc}"
            return default

    metrics = PrismWorkerHook().metrics(METRICS_PERIOD)  # without the Worker's figures there is nothing to record
    db = read("d1", lambda: d1.get_database(d1.find_database(cf["d1_database"])), {})
    vec = read("vectorize", lambda: VectorizeHook(priority="monitor").info(cf["vectorize_index"]), {})
    hourly = read(
        "hourly",
        lambda: WorkersAnalyticsHook(priority="monitor").worker_hourly(
            cf["worker_name"], now - timedelta(hours=24), now
        ),
        [],
    )
    return {**figures(metrics, db, vec, hourly, budget_state(d1.budget)), "unavailable": missing}


def figures(metrics: dict, db: dict, vec: dict, hourly: list[dict], budget: dict | None) -> dict:
    """The snapshot from what was read (pure, so it can be checked on given figures)."""
    r = metrics["resources"]
    stored = r.get("vectorize_stored_dimensions", vec.get("vectorCount", 0) * vec.get("dimensions", 0))
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
