"""The plans' limits and usage against them."""

from __future__ import annotations

from prism.monitoring.plan_limits import LIMITS, usage_against_limits


def test_usage_against_both_plans():
    rows = {
        r["name"]: r
        for r in usage_against_limits({"kv_writes": 500, "worker_requests": 50_000, "unknown": 1, "kv_reads": None})
    }
    assert set(rows) == {"kv_writes", "worker_requests"}
    assert rows["kv_writes"]["free_percent"] == 50.0 and rows["kv_writes"]["paid_percent"] == round(
        100 * 500 / (1_000_000 / 30.44), 2
    )
    assert rows["worker_requests"]["paid_limit"] is None and rows["worker_requests"]["paid_percent"] is None
    assert LIMITS["vectorize_stored_dimensions"][2:] == (5_000_000, 10_000_000)
