"""PRISM's Cloudflare resources as they are now: point-in-time figures, which a report labels with
the capture time (calendar-window figures come from analytics_windows instead)."""

from __future__ import annotations

from datetime import datetime

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.reports.periods import from_iso


def live_resources(cf: dict) -> dict:
    """The D1 database (size, tables), the Vectorize index's info, the KV namespaces and the Worker's
    deployments (newest first). `cf`: the config's cloudflare section."""
    d1 = D1Hook()
    return {
        "d1": d1.get_database(d1.find_database(cf["d1_database"])),
        "vectorize": VectorizeHook().info(cf["vectorize_index"]),
        "kv": KVHook().list_namespaces(),
        "deployments": WorkersAnalyticsHook().deployments(cf["worker_name"]),
    }


def architecture(cf: dict, start: datetime, end: datetime) -> dict:
    """live_resources() with the index's configuration and metadata indexes, and the Worker versions
    created in the quarter [start, end)."""
    live = live_resources(cf)
    vec = VectorizeHook()
    config = vec.get_index(cf["vectorize_index"])["config"]
    versions = [
        v
        for v in WorkersAnalyticsHook().versions(cf["worker_name"])
        if start <= from_iso(v["metadata"]["created_on"]) < end
    ]
    db, deployments = live["d1"], live["deployments"]
    return {
        "d1": {"name": db["name"], "bytes": db.get("file_size"), "tables": db.get("num_tables")},
        "vectorize": {
            "dimensions": config["dimensions"],
            "metric": config["metric"],
            "vectors": live["vectorize"]["vectorCount"],
            "metadata_indexes": [m["propertyName"] for m in vec.list_metadata_indexes(cf["vectorize_index"])],
        },
        "kv": [ns["title"] for ns in live["kv"]],
        "worker": {
            "versions_in_quarter": len(versions),
            "latest_deployment": deployments[0]["id"] if deployments else None,
        },
    }
