"""prism_monthly backfilled after an outage across a month boundary, then backfilled again reprocessing the
completed runs: every report lands under the period it stands for, depends on its window alone (no
live figure, no capture time), and the second backfill rewrites no byte: same keys, same ETags.

The backfills are made with `airflow backfill create` (the CLI, against this session's metadata DB), so
the runs are Airflow's own: BACKFILL_JOB runs at the timetable's schedule slots with their data
intervals, cleared and queued again by `--reprocess-behavior completed`. What the scheduler then does
(run the queued runs' tasks, mark the backfill complete) is done here in-process, one run at a time
(`--max-active-runs 1`), with the task runner dag.test() uses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta

from dagtest import load_dag, recent, states

from prism.reports.markdown import LEFT_OUT

DAG_ID = "prism_monthly"
# A Python repr or a count written as a float in a report's text.
REPR = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|\d+\.0\b|\d\.\d{5,}")


def serialize_bundle() -> None:
    """Parse the bundle into the metadata DB, as a dag-processor does (backfills need the serialized DAG)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)


def backfill_create(start: datetime, end: datetime, *extra: str) -> str:
    """`airflow backfill create` over the schedule slots from `start` to `end`, as an operator runs it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            start.isoformat(),
            "--to-date",
            end.isoformat(),
            "--max-active-runs",
            "1",
            *extra,
        ],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def run_backfill(dag, note: str = "") -> list:
    """What the scheduler does with the DAG's active backfill: run its queued runs, oldest first, one at a
    time, then mark it complete. Returns the runs."""
    from airflow import settings
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    settings.Session.remove()  # what `airflow backfill create` wrote, not an older snapshot
    session = settings.Session()
    backfill_id = session.scalars(
        select(Backfill.id).where(Backfill.dag_id == DAG_ID, Backfill.completed_at.is_(None))
    ).one()
    run_ids = session.scalars(
        select(DagRun.run_id)
        .where(DagRun.dag_id == DAG_ID, DagRun.backfill_id == backfill_id)
        .order_by(DagRun.logical_date)
    ).all()

    def fetch(run_id: str):
        # A task run closes the thread's session, and another process changed the runs: end any read
        # transaction, then read the run again in the session now current.
        session = settings.Session()
        session.commit()
        run = session.scalars(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id)).one()
        run.dag = scheduler_dag
        return session, run

    for run_id in run_ids:
        session, run = fetch(run_id)
        assert run.run_type == DagRunType.BACKFILL_JOB and run.state == DagRunState.QUEUED, (run_id, run.state, note)
        run.state = DagRunState.RUNNING
        session.commit()
        while run.state == DagRunState.RUNNING:
            session, run = fetch(run_id)
            schedulable, _ = run.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
                ti.scheduled_dttm = timezone.utcnow()
            session.commit()
            for ti in [t for t in run.get_task_instances(session=session) if t.state == TaskInstanceState.SCHEDULED]:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
            session, run = fetch(run_id)
        assert run.state == DagRunState.SUCCESS, states(run)
    session = settings.Session()
    session.get(Backfill, backfill_id).completed_at = timezone.utcnow()
    session.commit()
    return [fetch(run_id)[1] for run_id in run_ids]


def bucket_state(s3, bucket: str) -> dict[str, tuple[str, bytes]]:
    """Every object of the bucket: its ETag and its bytes."""
    out = {}
    for key in s3.list_keys(bucket) or []:
        obj = s3.get_key(key, bucket)
        out[key] = (obj.e_tag, obj.get()["Body"].read())
    return out


def test_a_reprocessed_backfill_across_a_month_boundary_rewrites_no_byte(cf, s3, bucket, airflow_db, alerts):
    dag = load_dag(DAG_ID)
    first_of_month = recent(1)
    before = (first_of_month - timedelta(days=1)).replace(day=21, hour=3)
    slots = [before, before.replace(day=28), first_of_month]  # 21st and 28th of one month, 1st of the next
    serialize_bundle()

    backfill_create(slots[0], slots[-1])
    runs = run_backfill(dag)
    # One run per schedule slot, each standing for its slot: the data interval ends at it.
    assert [r.data_interval_end for r in runs] == slots and [r.run_after for r in runs] == slots
    first = bucket_state(s3, bucket)

    month, day21 = f"{before:%Y%m}", f"{before:%Y%m%d}"
    reports = {
        f"reports/{DAG_ID}/{day21}/log_review",
        f"reports/{DAG_ID}/{day21}/resources",
        f"reports/{DAG_ID}/{month}/monthly_report",
        f"reports/{DAG_ID}/{month}/capacity",
        f"reports/{DAG_ID}/{month}/performance",  # day 1 reports on the month before: the same month
    }
    assert set(first) == {k + ext for k in reports for ext in (".md", ".html")}, sorted(first)
    for key in reports:
        md, html = first[key + ".md"][1].decode(), first[key + ".html"][1].decode()
        title = md.partition("\n")[0].removeprefix("# ")
        assert f"<title>{title}</title>" in html  # one page per report, titled as the report
        assert "Captured at" not in md and not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+", md), key
        assert not REPR.search(md), (key, REPR.search(md).group(0))
    performance = first[f"reports/{DAG_ID}/{month}/performance.md"][1].decode()
    assert performance.startswith(f"# PRISM Performance Report - {before:%Y-%m}\n\nWindow: {before:%Y-%m}-01T00:00")
    assert "Tokens saved" not in performance
    assert LEFT_OUT.format(what="the Worker's /metrics (its last 30 days)") in performance
    resources = first[f"reports/{DAG_ID}/{day21}/resources.md"][1].decode()
    assert resources.count("- Left out: the resources as they are now.") == 4

    # The same backfill again, reprocessing the completed runs: the same runs run again and change nothing.
    output = backfill_create(slots[0], slots[-1], "--reprocess-behavior", "completed")
    again = run_backfill(dag, output)
    assert [r.run_id for r in again] == [r.run_id for r in runs], output
    for run in again:
        report_tries = [
            ti.try_number
            for ti in run.get_task_instances()
            if ti.task_id.endswith(("_report", "log_review", "resource_check")) and ti.state == "success"
        ]
        assert report_tries and min(report_tries) == 2, report_tries  # they really ran a second time
    assert bucket_state(s3, bucket) == first
