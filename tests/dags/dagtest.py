"""Helpers for running bundle DAGs with dag.test() and reading what their runs did."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_IDS = sorted(p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_"))


def load_dag(dag_id: str):
    """The DAG as the bundle defines it, parsed from its own file, with retries off: a failing task
    fails the test at once instead of waiting out the production retry delay."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    return dag


def states(run) -> dict[str, str]:
    return {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
        for ti in run.get_task_instances()
    }


def xcom(run, task_id: str, key: str = "return_value"):
    """The value a task of the run pushed (None when it pushed none)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


def run_only(dag, *patterns: str, **kwargs):
    """dag.test() running only the tasks matching `patterns`; the others are marked successful unrun.
    (A partial_subset cannot be dag.test()ed: the run's task instances come from the bundle's DAG.)"""
    others = [t for t in dag.task_ids if not any(re.search(p, t) for p in patterns)]
    return dag.test(mark_success_pattern="|".join(re.escape(t) for t in others), **kwargs)


def recent(day: int) -> datetime:
    """The latest `day` of a month at 03:00 UTC that ended at least an hour ago (a monthly slot)."""
    now = datetime.now(timezone.utc) - timedelta(hours=1)
    d = now.replace(hour=3, minute=0, second=0, microsecond=0)
    while d.day != day or d > now:
        d -= timedelta(days=1)
    return d


# ---- the live state of a Cloudflare account, to compare before and after --------------------


def d1_state(hook, db: str) -> dict[str, list]:
    """Every row of every user table, each value through quote() (BLOBs as X'..' text, as the dumps have them)."""
    from airflow_provider_cloudflare.sqldump import quote_ident

    out = {}
    for table, _ in hook.user_tables(db):
        columns = [c["name"] for c in hook.rows(db, f"PRAGMA table_info({quote_ident(table)})")]
        quoted = ", ".join(f"quote({quote_ident(c)})" for c in columns)
        out[table] = hook.raw(db, f"SELECT rowid, {quoted} FROM {quote_ident(table)} ORDER BY rowid")[-1]["results"][
            "rows"
        ]
    return out


def vector_state(hook, index: str) -> dict[str, tuple]:
    from airflow_provider_cloudflare.errors import CloudflareNotFound

    try:
        ids = list(hook.list_ids(index))
    except CloudflareNotFound:  # the index is gone
        return {}
    return {
        v["id"]: ([round(x, 6) for x in v["values"]], v.get("metadata") or {}, v.get("namespace"))
        for v in hook.get_by_ids(index, ids)
    }


def kv_state(hook, ns: str) -> dict[str, tuple]:
    return {
        k["name"]: (hook.get_value(ns, k["name"]), k.get("metadata"), k.get("expiration")) for k in hook.list_keys(ns)
    }


@functools.cache
def dag_of(dag_id: str):
    """load_dag, once per test process: for tests that only read a DAG (its Params, its tasks)."""
    return load_dag(dag_id)
