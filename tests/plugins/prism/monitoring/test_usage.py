"""The monitor's usage snapshot and checks from given figures."""

from __future__ import annotations

from prism.monitoring.usage import figures, threshold_checks

METRICS = {
    "window": {"start": "s", "end": "e"},
    "requests": {"total": 1000, "errors": 40, "success_rate": 96.0, "error_rate": 4.0},
    "performance": {"p50_latency_ms": 100.0, "p95_latency_ms": 300.0, "p99_latency_ms": 900.0},
    "cache": {"hit_rate": 60.0},
    "tokens": {"saved": 5, "cost_saved_usd": 0.0},
    "resources": {
        "neurons_used": 8500,
        "d1_rows_read_today": 10,
        "d1_rows_written_today": 1,
        "kv_reads_today": 5,
        "kv_writes_today": 2,
        "vectorize_stored_dimensions": 384_000,
        "vectorize_queried_dimensions_month": 3_840_000,
    },
}
THRESHOLDS = {"error_rate_percent": 0.5, "p95_latency_ms": 1000, "free_tier_usage_percent": 80}


def test_the_snapshot_measures_usage_against_both_plans():
    snap = figures(
        METRICS,
        {"name": "db", "file_size": 50_000_000, "num_tables": 9},
        {"vectorCount": 1000, "dimensions": 384},
        [],
        None,
    )
    limits = {r["name"]: r for r in snap["limits"]}
    assert limits["ai_neurons"]["free_percent"] == 85.0 and limits["ai_neurons"]["paid_limit"] is None
    assert limits["d1_database_bytes"]["free_percent"] == 10.0 and limits["d1_database_bytes"]["paid_percent"] == 0.5
    assert (
        limits["vectorize_queried_dimensions"]["free_percent"] == 12.8
        and limits["vectorize_queried_dimensions"]["paid_percent"] == 7.68
    )
    assert snap["vectorize"] == {"vectors": 1000, "dimensions": 384}


def test_checks_name_the_investigation_a_crossing_calls_for():
    snap = figures(METRICS, {}, {}, [], None)
    checks = {c["metric"]: c for c in threshold_checks(snap, THRESHOLDS)}
    assert checks["error rate (%)"]["crossed"] and checks["error rate (%)"]["investigation"] == "high_error_rate"
    assert (
        not checks["p95 latency (ms)"]["crossed"] and checks["p95 latency (ms)"]["investigation"] == "slow_performance"
    )
    free = checks["free-tier usage (%)"]
    assert free["crossed"] and free["value"] == 85.0 and free["resource"] == "Workers AI neurons"
    assert free["investigation"] == "resource_exhaustion"


def test_a_figure_that_is_no_number_is_a_crossing_not_a_crash():
    """A Worker that answers `<script>` or "fast" where its /metrics has numbers: the check says so."""
    import copy

    metrics = copy.deepcopy(METRICS)
    metrics["requests"]["error_rate"] = "<script>alert(1)</script>"
    metrics["performance"]["p95_latency_ms"] = True
    checks = {c["metric"]: c for c in threshold_checks(figures(metrics, {}, {}, [], None), THRESHOLDS)}
    assert checks["error rate (%)"]["crossed"] and checks["error rate (%)"]["value"] == "<script>alert(1)</script>"
    assert checks["p95 latency (ms)"]["crossed"]


# ---- the snapshot against localflare: D1 and Vectorize from the run's health check, one GraphQL call -----------


def _snapshot(checked: dict):
    from datetime import datetime, timezone

    from prism.monitoring.api_calls import ApiCalls
    from prism.monitoring.usage import usage_snapshot
    from prism.settings.config import runtime_config

    calls = ApiCalls()
    return usage_snapshot(runtime_config()["cloudflare"], datetime.now(timezone.utc), checked, calls), calls


def test_the_snapshot_shows_what_the_check_read_and_asks_only_graphql(cf):
    checked = {
        "read": {
            "d1": {"name": "claudes-friend-db", "file_size": 917_504, "num_tables": 14},
            "vectorize": {"vectorCount": 615, "dimensions": 384},
        }
    }
    before = cf.counters()
    snap, calls = _snapshot(checked)
    after = cf.counters()
    assert calls.count == 1 == after["requests"] - before.get("requests", 0)
    assert after["route:POST /graphql"] - before.get("route:POST /graphql", 0) == 1
    assert snap["d1"] == checked["read"]["d1"] and snap["vectorize"] == {"vectors": 615, "dimensions": 384}
    assert snap["unavailable"] == {} and len(snap["hourly"]) in (23, 24)
    assert snap["api_budget"]["limit"] == 1200


def test_what_the_check_could_not_read_is_unavailable_and_not_asked_again(cf):
    hostile = "<script>alert(1)</script> index not found"
    checked = {"read": {"d1": {"name": "claudes-friend-db", "file_size": 1, "num_tables": 1}}}
    checked["checks"] = {"vectorize": {"ok": False, "detail": hostile}}
    snap, calls = _snapshot(checked)
    assert calls.count == 1 and snap["vectorize"] == {"vectors": None, "dimensions": None}
    assert snap["unavailable"] == {"vectorize": f"not read by the health check: {hostile}"}
    snap, calls = _snapshot({})  # the check recorded nothing (it died first)
    assert calls.count == 1 and set(snap["unavailable"]) == {"d1", "vectorize"}
    assert snap["unavailable"]["d1"] == "not read by the health check: no health check recorded in this run"
