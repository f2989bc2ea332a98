"""What every PRISM DAG shares: default arguments, the SQL template path, and the config macro."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from prism.alerts import PrismAlertNotifier
from prism.refusals import refuse
from prism.settings.config import runtime_config
from prism.settings.paths import SQL_DIR

START = pendulum.datetime(2026, 1, 1, tz="UTC")
# `{{ prism().cloudflare.d1_database }}` in any templated field: the config as the task runs
# (file + Variable), read at render time, never at parse time.
MACROS = {"prism": runtime_config}


def _shown(keys: list[str], limit: int = 20, width: int = 60) -> str:
    # A key is whatever the trigger sent: cut long ones and long lists so the refusal stays one line.
    cut = [k if len(k) <= width else k[:width] + "..." for k in keys[:limit]]
    return repr(cut) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def refuse_unknown_conf(context) -> None:
    """Every PRISM task's pre_execute: a run whose conf has a key the DAG declares no Param for runs nothing.

    Airflow 3.3 merges each conf key into `params` (an undeclared key becomes a Param with no schema, so
    trigger-time validation passes it) and offers no hook to refuse it when the run is made. So the check
    is the first thing every task does, before its code runs. Every task, not one guard task: a task whose
    trigger rule runs it after a failure (all_done, none_failed) refuses too."""
    dag, run = context["dag"], context.get("dag_run")
    conf = (getattr(run, "conf", None) or {}) if run is not None else {}
    declared = set(dag.params)
    unknown = sorted(str(k) for k in conf if k not in declared)
    if unknown:
        takes = f"its Params are {sorted(declared)}" if declared else "it takes no conf"
        raise refuse("to run", f"unknown conf keys {_shown(unknown)} ({dag.dag_id} does not declare them; {takes})")


def default_args(**overrides) -> dict:
    """Task defaults. Retries come from PRISM_TASK_RETRIES (2) and PRISM_TASK_RETRY_DELAY_SECONDS (120,
    doubled on each retry), read at parse time, so a deployment tunes them without a code change."""
    args = {
        "owner": "prism-devops",
        "retries": int(os.environ.get("PRISM_TASK_RETRIES", "2")),
        "retry_delay": timedelta(seconds=float(os.environ.get("PRISM_TASK_RETRY_DELAY_SECONDS", "120"))),
        "retry_exponential_backoff": 2.0,
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": PrismAlertNotifier(),
        "pre_execute": refuse_unknown_conf,
    }
    args.update(overrides)
    return args


class PrismDAG(DAG):
    """Airflow's DAG, with one fix for dag.test() (and `airflow dags test`)."""

    def test(self, *args, **kwargs):
        """dag.test() without the DAG's Deadline Alerts. Airflow 3.3.2's test run crashes after a run of a DAG
        with a deadline succeeds (apache/airflow#73428), and a test run has no triggerer to fire one anyway.
        The scheduler's runs keep their deadlines."""
        deadline, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = deadline


def prism_dag(
    dag_id: str,
    *,
    doc_md: str,
    tags: list[str],
    dagrun_timeout: timedelta = timedelta(hours=6),
    task_defaults: dict | None = None,
    **kwargs,
):
    """A DAG with the bundle's shared settings: start date, no catchup (missed runs are backfilled on
    purpose), one run at a time (cleanups and retention must not race), the config macro and the SQL
    templates. Every task refuses a run whose conf has keys the DAG declares no Param for
    (refuse_unknown_conf). `task_defaults` override default_args(); `kwargs` go to DAG as they are (schedule, params, deadline)."""
    kwargs.setdefault("schedule", None)
    return PrismDAG(
        dag_id=dag_id,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dagrun_timeout,
        default_args=default_args(**(task_defaults or {})),
        user_defined_macros=MACROS,
        template_searchpath=[SQL_DIR],
        tags=["prism", *tags],
        doc_md=doc_md,
        **kwargs,
    )
