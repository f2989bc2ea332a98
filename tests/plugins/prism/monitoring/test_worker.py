"""PrismWorkerHook against localflare's stand-in for PRISM's Worker (/worker/health, /worker/metrics)."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_cloudflare.errors import CloudflareError
from localflare import testing
from prism.monitoring.worker import PrismWorkerHook


def test_health_is_healthy_with_every_check_ok(cf):
    health = PrismWorkerHook().health()
    assert health["status"] == "healthy" and health["http_status"] == 200
    assert health["checks"] == {"database": "ok", "vectorize": "ok", "kv": "ok", "ai": "ok"}


def test_health_is_unhealthy_with_503_while_the_fault_is_set(lf_fresh, connect):
    server = lf_fresh()  # private: the fault would hit every health check on the shared server
    connect(server)
    hook = PrismWorkerHook()
    assert hook.health()["status"] == "healthy"
    server.add_faults("worker_unhealthy")
    health = hook.health()
    assert health["status"] == "unhealthy" and health["http_status"] == 503
    assert health["checks"]["worker"].startswith("error")
    server.clear_faults()
    assert hook.health()["http_status"] == 200


def test_metrics_fields_are_present_and_consistent(cf):
    hook = PrismWorkerHook()
    day = hook.metrics()
    assert day["period"] == "24h"
    req = day["requests"]
    assert req["total"] > 0 and 0 <= req["errors"] < req["total"]
    assert req["success_rate"] + req["error_rate"] == pytest.approx(100.0, abs=0.01)
    assert req["error_rate"] == pytest.approx(100 * req["errors"] / req["total"], abs=0.001)
    perf = day["performance"]
    assert 0 < perf["p50_latency_ms"] <= perf["p95_latency_ms"] <= perf["p99_latency_ms"]
    res = day["resources"]
    assert res["neurons_limit"] > 0 and res["neurons_used"] >= 0
    assert res["vectorize_stored_dimensions"] == 615 * 384
    cache = day["cache"]
    assert cache["hits"] + cache["misses"] == req["total"] and 0 <= cache["hit_rate"] <= 100
    assert cache["entries"] > 0 and cache["size_bytes"] > 0
    assert day["tokens"]["saved"] > 0 and day["tokens"]["cost_saved_usd"] > 0
    week = hook.metrics("7d")
    assert week["period"] == "7d" and week["requests"]["total"] > req["total"]


def test_metrics_with_a_bad_period_raises_with_the_status(cf):
    with pytest.raises(CloudflareError) as exc:
        PrismWorkerHook().metrics("fortnight")
    assert exc.value.status == 400


def test_an_unreachable_worker_raises_quickly(cf, monkeypatch):
    port = testing.free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRISM_WORKER", json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{port}/worker"})
    )
    hook = PrismWorkerHook(timeout=2)
    for call in (hook.health, hook.metrics):
        started = time.monotonic()
        with pytest.raises(CloudflareError, match="unreachable"):
            call()
        assert time.monotonic() - started < 5
