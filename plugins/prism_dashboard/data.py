"""The dashboard's figures, read from Airflow's metadata DB only: the snapshots the DAGs record as
XComs (`prism_dashboard_<kind>`, see prism.monitoring.dashboard_records) and the health monitor's
task instances. Nothing here calls Cloudflare or the bucket, so a page view costs no API budget.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from prism.settings.constants import DASHBOARD_XCOM_PREFIX as PREFIX
from prism.settings.constants import SET_CADENCES as CADENCES

HEALTH_DAG, HEALTH_TASK, USAGE_TASK = "prism_health_monitor", "check_resources", "usage"

HISTORY = timedelta(hours=24)


def _records(
    session, kind: str, since: datetime | None = None, limit: int = 500, dag_ids: list[str] | None = None
) -> list[dict]:
    """[{dag_id, run_id, task_id, timestamp, value}] of one kind, newest first; of `dag_ids` only
    (the DAGs the reader was authorised for) when given, else of every prism_ DAG."""
    # The core ORM (~0.5 s) stays out of plugin load: every task process imports this plugin too.
    from airflow.models.xcom import XComModel

    query = select(XComModel).where(XComModel.key == PREFIX + kind)
    query = query.where(
        XComModel.dag_id.in_(dag_ids) if dag_ids is not None else XComModel.dag_id.startswith("prism_", autoescape=True)
    )
    if since is not None:
        query = query.where(XComModel.timestamp >= since)
    rows = session.scalars(query.order_by(XComModel.timestamp.desc()).limit(limit)).all()
    return [
        {
            "dag_id": r.dag_id,
            "run_id": r.run_id,
            "task_id": r.task_id,
            "timestamp": r.timestamp,
            "value": XComModel.deserialize_value(r),
        }
        for r in rows
    ]


def _flat(records: list[dict]) -> list[dict]:
    """List-valued records (reports, alerts) as one list of items, newest first, each with its task."""
    items = [
        {**item, "dag_id": r["dag_id"], "task_id": r["task_id"], "run_id": r["run_id"]}
        for r in records
        for item in (r["value"] if isinstance(r["value"], list) else [r["value"]])
    ]
    return sorted(items, key=lambda i: i.get("at") or "", reverse=True)


def health_history(session, since: datetime, dag_ids: list[str] | None = None) -> list[dict]:
    """The health monitor's runs since `since`, oldest first: the state of each check and of the usage
    thresholds. A run whose check task died before recording still shows with its task state."""
    from airflow.models.taskinstance import TaskInstance  # the core ORM: see _records

    tis = session.scalars(
        select(TaskInstance)
        .where(TaskInstance.dag_id == HEALTH_DAG, TaskInstance.task_id == HEALTH_TASK, TaskInstance.start_date >= since)
        .order_by(TaskInstance.start_date)
    ).all()
    if dag_ids is not None and HEALTH_DAG not in dag_ids:
        return []
    health = {
        r["run_id"]: r["value"]
        for r in _records(session, "health", since, limit=2000, dag_ids=dag_ids)
        if r["dag_id"] == HEALTH_DAG
    }
    usage = {r["run_id"]: r["value"] for r in _records(session, "usage", since, limit=2000, dag_ids=dag_ids)}
    out = []
    for ti in tis:
        snap, use = health.get(ti.run_id), usage.get(ti.run_id)
        state = str(ti.state.value if hasattr(ti.state, "value") else ti.state)
        if state == "failed" or (snap and not snap["ok"]):
            status = "unhealthy"
        elif state == "success":
            status = "degraded" if use and any(c["crossed"] for c in use.get("checks", [])) else "healthy"
        else:
            status = state or "none"
        out.append(
            {
                "run_id": ti.run_id,
                "at": ti.start_date.isoformat(timespec="seconds"),
                "state": state,
                "status": status,
                "checks": (snap or {}).get("checks", {}),
                "crossed": [c["metric"] for c in (use or {}).get("checks", []) if c["crossed"]],
            }
        )
    return out


def backups(session, dag_ids: list[str] | None = None) -> dict[str, dict]:
    """backup_standing() of the recorded verifications."""
    return backup_standing([r["value"] for r in _records(session, "backup", limit=1000, dag_ids=dag_ids)])


def backup_standing(records: list[dict]) -> dict[str, dict]:
    """Per cadence: the newest verified set (the current RPO is its age) and the newest attempt."""
    out = {}
    for cadence in CADENCES:
        sets = [r for r in records if r["cadence"] == cadence]
        if not sets:
            continue
        # A set's standing is its latest result (a drill can fail a set verified before).
        latest_per_set: dict[str, dict] = {}
        for r in sorted(sets, key=lambda r: r["at"]):
            latest_per_set[r["period"]] = r
        verified = [r for r in latest_per_set.values() if r["status"] == "verified"]
        out[cadence] = {
            "last_verified": max(verified, key=lambda r: (r["period"], r["at"])) if verified else None,
            "latest": max(sets, key=lambda r: r["at"]),
        }
    return out


def dashboard(session, now: datetime | None = None, dag_ids: list[str] | None = None) -> dict:
    """Everything the page shows; with `dag_ids`, read from those DAGs' records only."""
    now = now or datetime.now(timezone.utc)
    since = now - HISTORY
    usage = _records(session, "usage", limit=1, dag_ids=dag_ids)
    health = health_history(session, since, dag_ids)
    reports = []
    for item in _flat(_records(session, "report", limit=300, dag_ids=dag_ids)):
        if item["key"] not in {r["key"] for r in reports}:
            reports.append(item)
    return {
        "now": now.isoformat(timespec="seconds"),
        "health": health,
        "latest_health": next((h for h in reversed(health) if h["state"] in ("success", "failed")), None),
        "usage": usage[0]["value"] if usage else None,
        "usage_run": usage[0]["run_id"] if usage else None,
        "backups": backups(session, dag_ids),
        "reports": reports[:25],
        "alerts": _flat(_records(session, "alert", since=now - timedelta(days=7), limit=300, dag_ids=dag_ids))[:15],
    }
