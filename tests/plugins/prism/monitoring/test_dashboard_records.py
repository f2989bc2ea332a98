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


class RunTI:
    """A task instance of a run in which other tasks recorded: xcom_pull by task id and key."""

    task_id, map_index = "usage", -1

    def __init__(self, records: dict):
        self.records = records

    def xcom_pull(self, task_ids, key):
        if task_ids == "broken":
            raise RuntimeError("the API server is away")
        return self.records.get((task_ids, key))


def test_a_task_reads_what_another_task_of_its_run_recorded():
    ti = RunTI({("check_resources", "prism_dashboard_health"): {"ok": True, "api_calls": 6}})
    assert dashboard_records.recorded("health", "check_resources", ti=ti) == {"ok": True, "api_calls": 6}
    assert dashboard_records.recorded("health", "other", ti=ti) is None
    assert dashboard_records.recorded("health", "broken", ti=ti) is None  # never a failure of the reader
    assert dashboard_records.recorded("health", "check_resources") is None  # outside a running task


class PriorTI:
    """A task instance whose task recorded in earlier runs: xcom_pull with include_prior_dates answers the
    latest (the real pull through Airflow: tests/dags/test_prism_health_monitor.py)."""

    task_id, map_index = "check_resources", -1

    def __init__(self, latest, fail: bool = False):
        self.latest, self.fail, self.asked = latest, fail, []

    def xcom_pull(self, **kwargs):
        self.asked.append(kwargs)
        if self.fail:
            raise RuntimeError("the API server is away")
        return self.latest


def test_a_task_reads_its_own_latest_record_of_earlier_runs():
    ti = PriorTI({"ok": True, "resolved": {}})
    assert dashboard_records.last_recorded("health", ti=ti) == {"ok": True, "resolved": {}}
    # Its own task, one map index (one value, not every earlier run's), earlier runs included.
    assert ti.asked == [
        {"task_ids": "check_resources", "key": "prism_dashboard_health", "include_prior_dates": True, "map_indexes": -1}
    ]
    assert dashboard_records.last_recorded("health", ti=PriorTI(None)) is None  # never recorded
    assert dashboard_records.last_recorded("health", ti=PriorTI({}, fail=True)) is None  # never a failure
    assert dashboard_records.last_recorded("health") is None  # outside a running task


def test_the_health_snapshot_carries_its_call_count_and_what_it_read():
    read = {"d1": {"name": "db", "file_size": 4096, "num_tables": 3}}
    resolved = {"d1": {"name": "db", "account": "a" * 32, "uuid": "0d1c5c4e-5a2b-4f59-9a53-2f1f6f1f3b8e"}}
    health = dashboard_records.health_snapshot({"d1": {"ok": True}}, None, api_calls=2, read=read, resolved=resolved)
    assert (health["api_calls"], health["read"], health["resolved"], health["api_budget"]) == (2, read, resolved, None)
    assert dashboard_records.health_snapshot({"d1": {"ok": True}})["read"] == {}
    assert dashboard_records.health_snapshot({"d1": {"ok": True}})["resolved"] == {}


def test_the_run_budget_sums_the_calls_of_the_tasks_that_counted():
    observed = {"limit": 1200, "remaining": 1193, "used": 7}
    assert dashboard_records.run_budget(observed, {"check_resources": 6, "usage": 1}) == {
        **observed,
        "calls_this_run": 7,
        "calls_by_task": {"check_resources": 6, "usage": 1},
    }
    # A check that recorded no count (it died first) is left out, not guessed; nothing observed is no budget state.
    assert dashboard_records.run_budget(None, {"check_resources": None, "usage": 1}) == {
        "calls_this_run": 1,
        "calls_by_task": {"usage": 1},
    }
    assert dashboard_records.run_budget(None, {"check_resources": True, "usage": "3"})["calls_this_run"] == 0
