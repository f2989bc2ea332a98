"""Fill the dashboard with demo runs: the DAGs run once each (`dag.test()`) against the stand-ins the
environment points at (scripts/stack.airflow_env), so Airflow's metadata DB holds what they record.

Used by `make demo` (before the UI starts) and by the dashboard's browser test. Runs, in order:
the health monitor three times, then once through a simulated D1 outage (a localflare fault, so
the timeline has a failure and an alert with its diagnosis), prism_daily (a verified daily backup,
the log review), prism_monthly's days 1 (a verified monthly backup, the performance report), 7 (the
security audit) and 28 (capacity planning), and prism_quarterly's review of the last quarter that
ended (its latest scheduled run, which reviews the quarter its data interval covers). Prints one line per run.
Each run keeps its logical date and data interval, and carries the start and end it really had, so
the UI shows true durations (real_times).

    python scripts/dashboard_fill.py LOCALFLARE_ADMIN_URL [--every-dag]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import requests
from stack import ROOT

OUTAGE = "5xx:route=POST */d1/database/*/query,count=12,status=503"


def runs(now: datetime, every_dag: bool = False) -> list[tuple[str, dict | None, datetime | None, str | None]]:
    """(dag_id, conf, logical date, fault to inject first) for each demo run. `every_dag` (make demo)
    adds prism_weekly and prism_index_incremental; the destructive manual DAGs are left to the user."""
    nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
    nine = nine if nine <= now else nine - timedelta(days=1)
    hour = now.replace(minute=0, second=0, microsecond=0)
    # The monitor's runs need logical dates of their own (dag.test() reuses a run otherwise): the
    # last five 5-minute slots. They are manual runs, so they check the present all the same.
    slots = [now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5 + 5 * i) for i in range(4, -1, -1)]
    monitor = [("prism_health_monitor", None, t, OUTAGE if i == 3 else None) for i, t in enumerate(slots)]
    # Each calendar day's run gets its own logical date too (a minute apart), for the same reason.
    return (
        monitor[:4]
        + [("prism_daily", None, nine, None)]
        + [("prism_monthly", {"run_day": day}, hour - timedelta(minutes=i), None) for i, day in enumerate((1, 7, 28))]
        + [("prism_quarterly", None, last_quarter_run(now), None)]
        + monitor[4:]
        + (
            [
                ("prism_weekly", None, last_sunday_two(now), None),
                ("prism_index_incremental", None, hour - timedelta(minutes=10), None),
            ]
            if every_dag
            else []
        )
    )


def last_sunday_two(now: datetime) -> datetime:
    """The latest Sunday 02:00 UTC at or before now: prism_weekly's scheduled time."""
    t = now.replace(hour=2, minute=0, second=0, microsecond=0)
    t -= timedelta(days=(t.weekday() + 1) % 7)
    return t if t <= now else t - timedelta(days=7)


def last_quarter_run(now: datetime) -> datetime:
    """The latest 1 January, April, July or October 04:00 UTC at or before now: prism_quarterly's scheduled
    time. Its run reviews the quarter that ended then (a run may review only the quarter its interval covers)."""

    def start(t: datetime) -> datetime:
        return t.replace(month=3 * ((t.month - 1) // 3) + 1, day=1, hour=4, minute=0, second=0, microsecond=0)

    t = start(now)
    return t if t <= now else start(t - timedelta(days=1))


def unpaced(conn_json: str) -> str:
    """The Cloudflare connection without bulk pacing: localflare serves these runs alone, so they need
    not leave room for anyone (the scheduled runs after them keep the connection's pacing)."""
    conn = json.loads(conn_json)
    conn.setdefault("extra", {})["budget"] = {**conn["extra"].get("budget", {}), "bulk_rps": 0}
    return json.dumps(conn)


def real_times(run, began: datetime) -> None:
    """Give a finished dag.test() run the start it really had. dag.test() creates its run with
    start_date = the logical date (airflow/sdk/definitions/dag.py), so the UI showed a run dated last
    Sunday 02:00 as 15 hours long. The run started when its first task did (`began`, the moment the fill
    called dag.test(), when none ran); its end_date, and every task instance's times, are Airflow's own."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dr = session.scalars(select(DagRun).where(DagRun.dag_id == run.dag_id, DagRun.run_id == run.run_id)).one()
        starts = session.scalars(
            select(TaskInstance.start_date).where(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.start_date >= began,  # a task of an earlier attempt at this logical date is not this run's
            )
        ).all()
        dr.start_date = min(starts, default=began)


def fill(bag, plan: list[tuple[str, dict | None, datetime | None, str | None]], admin_url: str) -> list:
    """Run each (dag_id, conf, logical date, fault) of `plan` with dag.test(); prints one line per run and
    returns the runs (None for one that raised)."""
    done = []
    for dag_id, conf, logical, fault in plan:
        if fault:
            requests.post(f"{admin_url}/faults", json={"spec": fault}, timeout=10).raise_for_status()
        started, began, run = time.monotonic(), datetime.now(timezone.utc), None
        try:
            run = bag.dags[dag_id].test(logical_date=logical, run_conf=conf)
            state = str(run.state)
            real_times(run, began)
        except Exception as exc:  # noqa: BLE001 - reported, the fill goes on
            state = f"error: {type(exc).__name__}: {exc}"
        finally:
            if fault:
                requests.delete(f"{admin_url}/faults", timeout=10).raise_for_status()
        print(f"{dag_id:22s} {conf or ''!s:16s} {state:9s} {time.monotonic() - started:6.1f} s", flush=True)
        done.append(run)
    return done


def main(admin_url: str, every_dag: bool = False) -> int:
    if "AIRFLOW_CONN_CLOUDFLARE_DEFAULT" in os.environ:
        os.environ["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"] = unpaced(os.environ["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"])
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        print(bag.import_errors)
        return 1
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0  # a demo run shows what happened at once
    fill(bag, runs(datetime.now(timezone.utc), every_dag), admin_url)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PRISM_TASK_RETRIES", "0")
    sys.exit(main(sys.argv[1], every_dag="--every-dag" in sys.argv[2:]))
