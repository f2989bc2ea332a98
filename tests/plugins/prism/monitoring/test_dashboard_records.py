"""Dashboard records: XComs of the running task, never a failure of it."""

from __future__ import annotations

import pytest

from airflow_provider_cloudflare.budget import BudgetSettings, RequestBudget
from prism.monitoring import dashboard_records


class FakeTI:
    task_id, map_index = "t", -1

    def __init__(self, fail: bool = False):
        self.pushed, self.fail = {}, fail

    def xcom_push(self, key, value):
        if self.fail:
            raise RuntimeError("the API server is away")
        self.pushed[key] = value

    def xcom_pull(self, task_ids, key, map_indexes):
        return self.pushed.get(key)


def test_record_pushes_by_kind_and_appends_lists():
    ti = FakeTI()
    assert dashboard_records.record("health", {"ok": True}, ti=ti)
    assert dashboard_records.record("alert", {"subject": "a"}, ti=ti, append=True)
    assert dashboard_records.record("alert", {"subject": "b"}, ti=ti, append=True)
    assert ti.pushed == {
        "prism_dashboard_health": {"ok": True},
        "prism_dashboard_alert": [{"subject": "a"}, {"subject": "b"}],
    }


def test_recording_never_fails_the_task_and_needs_one():
    assert dashboard_records.record("health", {}, ti=FakeTI(fail=True)) is False
    assert dashboard_records.record("health", {}) is False  # outside a running task
    with pytest.raises(ValueError, match="unknown dashboard record kind"):
        dashboard_records.record("everything", {}, ti=FakeTI())


def test_snapshots():
    budget = RequestBudget(BudgetSettings())
    assert dashboard_records.budget_state(budget) is None  # nothing observed yet
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "1100"}, 200)
    state = dashboard_records.budget_state(budget)
    assert (state["used"], state["limit"], state["window_seconds"], state["rate_limited_responses"]) == (
        100,
        1200,
        300,
        0,
    )
    health = dashboard_records.health_snapshot({"d1": {"ok": True}, "kv": {"ok": False}}, budget)
    assert health["ok"] is False and health["api_budget"]["remaining"] == 1100
    manifest = {
        "period": "20261129",
        "captured_at": "c",
        "logical_date": "l",
        "objects": [{"bytes": 10}, {"bytes": 5}],
        "vectorize": {"vector_count": 615},
        "kv": {"key_count": 90},
        "d1": {"tables": {"a": 3, "b": 4}},
    }
    snap = dashboard_records.backup_snapshot("daily", manifest, "verified", "test restore", "s3://b/r.md")
    assert (snap["bytes"], snap["objects"], snap["vectors"], snap["kv_keys"], snap["d1_rows"]) == (15, 2, 615, 90, 7)
