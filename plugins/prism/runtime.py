"""What tasks need to know about the run they are in: its data window, and whether it is a backfill.

Interval tasks (reports, analytics, cleanups with cutoffs) work from the run's data interval, never
from now(). Point-in-time tasks (live health, live exports) say so when they run in a backfill.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.utils.types import DagRunType


def in_backfill(context) -> bool:
    """Whether the task runs inside a backfill (`airflow backfill create`, or the UI's backfill form)."""
    run = context.get("dag_run")
    return getattr(run, "run_type", None) == DagRunType.BACKFILL_JOB


def window(context, default: timedelta = timedelta(days=1)) -> tuple[datetime, datetime]:
    """The run's [start, end) data interval. A run without one (a manual run with no logical date)
    covers `default` up to when the run was made to run."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return start, end
    run = context.get("dag_run")
    anchor = end or getattr(run, "run_after", None) or getattr(run, "logical_date", None)
    if anchor is None:
        raise ValueError("the run has neither a data interval nor a run_after time")
    return anchor - default, anchor


def sql_time(value: datetime) -> str:
    """A datetime as D1 stores them ('YYYY-MM-DD HH:MM:SS', UTC)."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def capture_labels(context) -> dict:
    """Both times for a point-in-time result: what the run stands for (`logical_date`: the end of its
    data interval, which is not always Airflow's own logical date), and when it really ran."""
    start, end = window(context)
    return {
        "logical_date": end.isoformat(),
        "captured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "in_backfill": in_backfill(context),
    }
