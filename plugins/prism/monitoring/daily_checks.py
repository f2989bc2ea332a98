"""prism_daily's live checks: Workers AI free-tier usage against its threshold (`health_check.free_tier`)
and the resource summary of the guide's Resource Usage Check (`resource_usage.summary`). Both describe
the present, labelled with the run's logical date and the capture time."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.alerts import alert
from prism.monitoring.worker import PrismWorkerHook
from prism.runtime import capture_labels, in_backfill
from prism.settings.config import runtime_config


def free_tier_check(used: int, limit: int, threshold: float) -> dict:
    """Neurons used against the daily limit, as a percentage (100 when no limit is known), and
    whether it is above `threshold` percent."""
    percent = round(100 * used / limit, 2) if limit else 100.0
    return {
        "neurons_used": used,
        "neurons_limit": limit,
        "usage_percent": percent,
        "threshold_percent": threshold,
        "crossed": percent > threshold,
    }


def free_tier_usage(**context) -> dict:
    """Workers AI neurons used today (UTC) against the daily free-tier limit, from the Worker's
    `/metrics`; alerts above `thresholds.free_tier_usage_percent`. Skipped inside a backfill."""
    if in_backfill(context):
        raise AirflowSkipException("free-tier usage is today's live figure; skipped inside a backfill")
    resources = PrismWorkerHook().metrics("24h")["resources"]
    threshold = runtime_config()["thresholds"]["free_tier_usage_percent"]
    result = {
        **free_tier_check(resources["neurons_used"], resources["neurons_limit"], threshold),
        **capture_labels(context),
    }
    if result["crossed"]:
        alert(
            f"Free tier usage at {result['usage_percent']}% (threshold {threshold}%)",
            f"Workers AI neurons used today: {result['neurons_used']} of {result['neurons_limit']}",
            "warning",
            ["resource_exhaustion"],
        )
    return result


def resource_summary(**context) -> dict:
    """`wrangler d1 info`, `kv:namespace list`, `vectorize list` and `deployments list --limit 1`,
    through the API. Live figures, labelled with the logical date and the capture time."""
    cf = runtime_config()["cloudflare"]
    d1 = D1Hook()
    db = d1.get_database(d1.find_database(cf["d1_database"]))
    vectorize = VectorizeHook()
    deployments = WorkersAnalyticsHook().deployments(cf["worker_name"])
    return {
        "d1": {k: db.get(k) for k in ("name", "uuid", "file_size", "num_tables", "version", "created_at")},
        "kv_namespaces": [{"id": ns["id"], "title": ns["title"]} for ns in KVHook().list_namespaces()],
        "vectorize_indexes": [
            {"name": ix["name"], **ix.get("config", {}), **vectorize.info(ix["name"])}
            for ix in vectorize.list_indexes()
        ],
        "latest_deployment": deployments[0] if deployments else None,
        **capture_labels(context),
    }
