"""The demo fill (scripts/dashboard_fill.py) records runs with the times they really had: dag.test() starts a
run at its logical date, and the UI showed a weekly run dated last Sunday as 15 hours long."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import dashboard_fill  # noqa: E402

SLACK = timedelta(seconds=5)


def load(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    return dag


@pytest.fixture
def stand_ins(lf_fresh, connect, s3, monkeypatch):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    bucket = f"prism-fill-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
    return server


@pytest.mark.slow
def test_filled_runs_carry_their_real_start_and_end(stand_ins, airflow_db):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    now = datetime.now(timezone.utc)
    slot = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    monitor = "prism_health_monitor"
    plan = [
        (monitor, None, slot, None),  # present
        (monitor, None, slot - timedelta(minutes=5), dashboard_fill.OUTAGE),  # a failed run
        (monitor, None, slot + timedelta(days=1), None),  # a logical date in the future
        ("prism_weekly", None, dashboard_fill.last_sunday_two(now), None),  # the past: up to a week ago
    ]
    bag = SimpleNamespace(dags={d: load(d) for d in {p[0] for p in plan}})
    began = datetime.now(timezone.utc)
    runs = dashboard_fill.fill(bag, plan, f"{stand_ins.base_url}/__localflare")
    ended = datetime.now(timezone.utc)

    assert all(runs), runs
    states = []
    with create_session() as session:
        for (dag_id, _, logical, _), run in zip(plan, runs):
            dr = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run.run_id)).one()
            states.append(str(dr.state))
            assert dr.logical_date == logical  # the run's date and window stay what the fill asked for
            assert (dr.data_interval_start, dr.data_interval_end) == (run.data_interval_start, run.data_interval_end)
            assert dr.data_interval_end is not None and dr.data_interval_end <= logical + timedelta(days=7)
            tis = [ti for ti in dr.get_task_instances(session=session) if ti.start_date is not None]
            assert tis, dag_id
            first, last = min(ti.start_date for ti in tis), max(ti.end_date for ti in tis)
            # Every time is one this test saw pass, never the logical date.
            assert began <= dr.start_date <= first <= last <= dr.end_date <= ended, (dag_id, logical)
            for ti in tis:
                assert began <= ti.start_date <= ti.end_date <= ended, (dag_id, ti.task_id)
            # The UI's duration is the tasks' wall time (and the few moments around it).
            assert abs((dr.end_date - dr.start_date) - (last - first)) <= SLACK, (dag_id, dr.start_date, first, last)
    assert states == ["success", "failed", "success", "success"], states


def test_a_run_whose_tasks_never_started_starts_when_the_fill_called_it(airflow_db):
    """real_times without a started task: the run's start is the moment dag.test() was called, not its date."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    logical = datetime(2026, 1, 4, 2, 0, tzinfo=timezone.utc)
    run_id = f"fill_test__{uuid.uuid4().hex}"
    with create_session() as session:
        session.add(
            DagRun(
                dag_id="prism_fill_no_tasks",
                run_id=run_id,
                logical_date=logical,
                start_date=logical,
                run_type=DagRunType.MANUAL,
                state=DagRunState.FAILED,
            )
        )
    began = datetime.now(timezone.utc)
    dashboard_fill.real_times(SimpleNamespace(dag_id="prism_fill_no_tasks", run_id=run_id), began)
    with create_session() as session:
        dr = session.query(DagRun).filter_by(dag_id="prism_fill_no_tasks", run_id=run_id).one()
        assert dr.start_date == began and dr.logical_date == logical


@pytest.mark.parametrize(
    "now, slot",
    [
        (datetime(2026, 12, 7, 2, 0), datetime(2026, 10, 1, 4, 0)),
        (datetime(2026, 1, 1, 3, 59), datetime(2025, 10, 1, 4, 0)),  # before the year's first run: last year's
        (datetime(2026, 1, 1, 4, 0), datetime(2026, 1, 1, 4, 0)),
        (datetime(2026, 6, 30, 23, 0), datetime(2026, 4, 1, 4, 0)),
        (datetime(2099, 7, 1, 4, 0, 1), datetime(2099, 7, 1, 4, 0)),
    ],
)
def test_the_quarterly_run_is_the_latest_scheduled_one(now, slot):
    """prism_quarterly refuses a run for a quarter its data interval does not cover: the fill runs the latest
    scheduled slot, which reviews the quarter that ended then."""
    utc = timezone.utc
    assert dashboard_fill.last_quarter_run(now.replace(tzinfo=utc)) == slot.replace(tzinfo=utc)
    plan = dashboard_fill.runs(datetime.now(utc))
    ((_, conf, logical, _),) = [p for p in plan if p[0] == "prism_quarterly"]
    assert conf is None and logical == dashboard_fill.last_quarter_run(datetime.now(utc))
