"""What the DAGs record for the dashboard: small snapshots pushed as XComs of the task that measured
them, with keys `prism_dashboard_<kind>`, so they live in Airflow's metadata DB next to the run.

The dashboard (plugins/prism_dashboard) reads only these and the task instances' states: a page view
never calls Cloudflare or the bucket. Kinds and what writes them:

- `health`: CloudflareHealthCheckOperator (prism_health_monitor, prism_daily), failures included, with the
  REST calls it made, the D1 and Vectorize figures it read (the monitor's `usage` task reuses them) and the
  D1 database id it resolved the configured name to (the task's next run reuses it: `last_recorded`);
- `usage`: prism_health_monitor's `usage` task (the Worker's /metrics, D1 size, Vectorize, API budget, and
  the REST calls the run made);
- `backup`: a backup set's verification (and the quarterly restore drill), failures included;
- `report`: every published report (list); `alert`: every alert sent from a task (list).

Recording never fails a task: outside a running task (a unit test, a callback without a task
instance) it does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from airflow.sdk import get_current_context

from prism.monitoring.plan_limits import API_REQUESTS_PER_WINDOW, API_WINDOW_SECONDS
from prism.settings.constants import DASHBOARD_XCOM_PREFIX as PREFIX

log = logging.getLogger(__name__)
KINDS = ("health", "usage", "backup", "report", "alert")
MAX_LIST = 50  # alerts or reports kept per task instance


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _ti(ti=None):
    if ti is not None:
        return ti
    try:
        return get_current_context()["ti"]
    except Exception:  # noqa: BLE001 - not inside a running task
        return None


def record(kind: str, value: dict, ti=None, append: bool = False) -> bool:
    """Push `value` (JSON-able) as this task instance's `prism_dashboard_<kind>`; with `append`, add it
    to the list already recorded by this task instance. True when recorded."""
    if kind not in KINDS:
        raise ValueError(f"unknown dashboard record kind {kind!r}; known: {KINDS}")
    ti = _ti(ti)
    if ti is None:
        return False
    key = PREFIX + kind
    try:
        if append:
            earlier = ti.xcom_pull(task_ids=ti.task_id, key=key, map_indexes=ti.map_index) or []
            value = ([*earlier, value] if isinstance(earlier, list) else [value])[-MAX_LIST:]
        ti.xcom_push(key=key, value=value)
        return True
    except Exception as exc:  # noqa: BLE001 - the dashboard must never fail or hide the task's own outcome
        log.warning("could not record the dashboard %s snapshot: %s", kind, exc)
        return False


def recorded(kind: str, task_id: str, ti=None):
    """What the task `task_id` of this run recorded as `kind` (None when it recorded nothing)."""
    ti = _ti(ti)
    if ti is None:
        return None
    try:
        return ti.xcom_pull(task_ids=task_id, key=PREFIX + kind)
    except Exception as exc:  # noqa: BLE001 - a missing record is something the caller reports, not a crash
        log.warning("could not read the %s record of %s: %s", kind, task_id, exc)
        return None


def last_recorded(kind: str, ti=None):
    """What this task recorded as `kind` in the latest run of its DAG up to this one (by logical date, this
    run included), read from Airflow's metadata DB; None when it never recorded one."""
    ti = _ti(ti)
    if ti is None:
        return None
    try:
        # With map_indexes the pull asks for one value (the latest); without it, every earlier run's as a list.
        return ti.xcom_pull(task_ids=ti.task_id, key=PREFIX + kind, include_prior_dates=True, map_indexes=ti.map_index)
    except Exception as exc:  # noqa: BLE001 - an earlier record is an optimisation, never a failure
        log.warning("could not read the last %s record of %s: %s", kind, ti.task_id, exc)
        return None


def health_snapshot(
    results: dict,
    budget=None,
    api_calls: int | None = None,
    read: dict | None = None,
    resolved: dict | None = None,
) -> dict:
    """A health check's results ({check: {ok, detail, ms}}) with the API budget its requests saw, how many
    REST requests it sent, what it read on the way ({"d1": {...}, "vectorize": {...}}) and the ids it
    resolved names to ({"d1": {"name", "account", "uuid"}}, kept even when the query then failed)."""
    return {
        "at": now_iso(),
        "ok": all(r["ok"] for r in results.values()),
        "checks": results,
        "api_budget": budget_state(budget),
        "api_calls": api_calls,
        "read": read or {},
        "resolved": resolved or {},
    }


def run_budget(observed: dict | None, calls: dict[str, int | None]) -> dict:
    """The API budget as last observed (budget_state(), or None) with the REST calls a run made: `calls` is
    {task_id: count}, None for a task that recorded no count (it is left out of the sum)."""
    counted = {task: n for task, n in calls.items() if isinstance(n, int) and not isinstance(n, bool)}
    return {**(observed or {}), "calls_this_run": sum(counted.values()), "calls_by_task": counted}


def budget_state(budget) -> dict | None:
    """What the last Cloudflare response said about the account's request budget (budget.RequestBudget)."""
    if budget is None or budget.remaining is None:
        return None

    limit = budget.limit or API_REQUESTS_PER_WINDOW
    return {
        "limit": limit,
        "remaining": budget.remaining,
        "used": max(0, limit - budget.remaining),
        "window_seconds": API_WINDOW_SECONDS,
        "rate_limited_responses": budget.rate_limited,
        "observed_at": budget.observed_at,
    }


def backup_snapshot(
    cadence: str, manifest: dict, status: str, method: str, report: str | None = None, problems: list[str] | None = None
) -> dict:
    """A backup set's verification result, with what the dashboard shows of its manifest."""
    return {
        "at": now_iso(),
        "cadence": cadence,
        "period": manifest["period"],
        "status": status,
        "method": method,
        "captured_at": manifest["captured_at"],
        "logical_date": manifest["logical_date"],
        "bytes": sum(o["bytes"] for o in manifest["objects"]),
        "objects": len(manifest["objects"]),
        "vectors": (manifest.get("vectorize") or {}).get("vector_count"),
        "kv_keys": (manifest.get("kv") or {}).get("key_count"),
        "d1_rows": sum((manifest.get("d1") or {}).get("tables", {}).values()),
        "report": report,
        "problems": (problems or [])[:10],
    }
