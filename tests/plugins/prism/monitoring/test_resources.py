"""Live resources: what the inventory reports is what the hooks read directly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.monitoring.resources import architecture, live_resources

CF = {
    "d1_database": "claudes-friend-db",
    "vectorize_index": "claudes-companion",
    "kv_namespace": "prism-cache",
    "worker_name": "claudes-friend",
}


def test_live_resources(cf):
    live = live_resources(CF)
    assert live["d1"]["uuid"] == cf.d1_id and live["d1"]["num_tables"] > 0
    assert live["vectorize"]["vectorCount"] == VectorizeHook().info(cf.index_name)["vectorCount"] > 0
    assert [ns["id"] for ns in live["kv"]] == [ns["id"] for ns in KVHook().list_namespaces()]
    assert live["deployments"][0]["id"] == WorkersAnalyticsHook().deployments("claudes-friend")[0]["id"]


def test_the_architecture_counts_the_worker_versions_of_the_window(cf):
    now = datetime.now(timezone.utc)
    ever = architecture(CF, now - timedelta(days=3650), now + timedelta(days=1))
    assert ever["d1"]["name"] == "claudes-friend-db" and ever["vectorize"]["dimensions"] == 384
    assert ever["vectorize"]["metric"] == "cosine" and "prism-cache" in ever["kv"]
    assert ever["worker"]["versions_in_quarter"] == len(WorkersAnalyticsHook().versions("claudes-friend")) > 0
    assert architecture(CF, now + timedelta(days=1), now + timedelta(days=2))["worker"]["versions_in_quarter"] == 0
