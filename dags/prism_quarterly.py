"""
### PRISM quarterly review (1 January, April, July and October at 04:00 UTC)

The guide's Quarterly Schedule as a **checklist report with figures**, one run per quarter:
`reports/prism_quarterly/YYYYQn/review.html` (with charts: items by outcome, the quarter's figures:
events by type, requests per month, backup sets by status) and `review.md` beside it, linked from
the review task (a `ReportOperator`) and the dashboard.

**One period per run.** A run reviews the quarter its data interval covers: the last calendar
quarter that ended by the interval's end (a `CronTriggerTimetable` with a three-month interval, so
the run of 1 October 04:00 reviews Q3, July to September). The title and key (`2026Q3`), the window,
which quarter's checklist it does (the branch `quarter` follows that group and skips the others,
saying why) and every figure come from that one quarter. The Param `quarter` may only confirm it: a
run given another quarter is refused by its first task (`windows`), before anything runs, with the
logical date that reviews the quarter asked for. To review another quarter, trigger a run with a
logical date at that quarter's end (e.g. `2026-07-01T04:00:00+00:00` for 2026Q2).

| quarter | group | checklist |
|---|---|---|
| Q1 | `q1.architecture_review`, `q1.security_audit` | D1 size, tables and rows; the Vectorize index against the config (dimensions, metric); KV namespaces; Worker versions deployed in the quarter. Security events by type; failed logins against `thresholds.failed_logins_per_month` × 3; the config's `npm.audit_command` when `npm.project_dir` is set (never from a Param). |
| Q2 | `q2.performance_optimization`, `q2.scaling_review` | Requests, error rate and p95 per month (GraphQL), slow queries over the quarter, cache effectiveness. The quarter's D1/AI/KV usage against the free-tier daily limits: its last 30 days, all that GraphQL keeps (31 days) a day after the quarter ends. |
| Q3 | `q3.dependency_audit`, `q3.backup_testing` | the config's `npm.audit_command` (skipped without `npm.project_dir`). The backup sets (`daily/YYYYMMDD/`, `monthly/YYYYMM/`) of the quarter in the bucket, each complete (it has its `manifest.json`) or not and its verification status, and the months without a complete monthly set. A **restore drill** of an existing backup: `pick_set` takes the newest complete daily set (else the newest monthly one); `restore_drill` reads its objects back against the manifest (size, sha256, content counted), restores it into scratch resources (`prism-verify-<token>`: a new D1 database and a new index) and compares them with the backup, and records the result in the set's manifest (`verified` or `failed`, method "quarterly restore drill"); a set that does not restore as its manifest says fails the drill and the run. `drop_scratch`, a teardown, deletes the scratch resources even when the drill fails, and does not decide the run's state. No complete set at all is flagged, not a crash. The review is written whatever became of the drill. |
| Q4 | `q4.yearly_review`, `q4.capacity_planning` | PRISM's usage log per month over the year ending with the quarter (D1), Worker traffic per month of the quarter (GraphQL). Growth per month of requests and neurons, and the date each would reach its free-tier daily limit. |

Items needing attention are marked `[!]` and alerted (one alert per review). GraphQL keeps 92 days
of Workers analytics and 31 of D1/AI/KV analytics (localflare's limits; Cloudflare's depend on the
plan): what a review reads is decided by the quarter alone (what GraphQL holds a day after it ends),
so a later run reads the same or, once GraphQL no longer holds it, nothing (and says so).

**Point-in-time figures** (the resources, the cache, the bucket's backup sets, the restore drill, npm
audit) describe the moment they are read. They are read only when the run is timely: not in a
backfill and within a day of the quarter's end. A later run (a backfill, a manual run for a past
quarter) leaves them out with a note, and a review already in the bucket keeps the ones it captured
first, so reprocessing a run rewrites no byte. The drill itself skips inside a backfill (it tests the
backups as they are now), and when the Param `run_restore_drill` is false.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, TaskGroup, task
from dateutil.relativedelta import relativedelta

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.backups import drill
from prism.backups.assets import DAILY_SETS, MONTHLY_SETS
from prism.dag_factory import prism_dag
from prism.maintenance import dependency_update
from prism.reports import quarterly_tasks as quarterly
from prism.reports.links import ReportOperator
from prism.settings.config import schedule

DAG_ID = quarterly.DAG_ID
D1 = "{{ prism().cloudflare.d1_database }}"
# Trigger rule of the reviews that gather several groups' figures: written when any of them ran.
ANY_RAN = "none_failed_min_one_success"
# What the drill reads: the newest complete daily set, else the newest monthly one.
BACKUP_SETS = [DAILY_SETS, MONTHLY_SETS]

with prism_dag(
    DAG_ID,
    schedule=CronTriggerTimetable(
        schedule(DAG_ID, "0 4 1 1,4,7,10 *"), timezone="UTC", interval=relativedelta(months=3)
    ),
    doc_md=__doc__,
    tags=["maintenance", "quarterly"],
    dagrun_timeout=timedelta(hours=8),
    params={
        "quarter": Param(
            None,
            type=["null", "integer"],
            enum=[None, 1, 2, 3, 4],
            description="The quarter this run reviews, as a check: it must be the one the run's data interval "
            "covers (a run of 1 October reviews Q3), or the run is refused before anything runs. Empty: that quarter.",
        ),
        "run_restore_drill": Param(
            True, type="boolean", description="Q3: run the restore drill into scratch resources."
        ),
    },
) as dag:
    w = task(quarterly.windows, multiple_outputs=True)()
    branch = task.branch(quarterly.quarter)(w)

    # ---- Q1 --------------------------------------------------------------------------------
    with TaskGroup("q1") as q1:
        with TaskGroup("architecture_review"):
            table_counts = D1SqlOperator(task_id="table_counts", sql="quarterly/table_counts.sql", database=D1)
            architecture_review = task(quarterly.inventory)()

        with TaskGroup("security_audit"):
            q1_events = D1SqlOperator(
                task_id="security_events",
                sql="reports/security_events.sql",
                database=D1,
                parameters=w["sql_window"],
            )
            q1_npm = task(dependency_update.npm_audit)()

        q1_review = ReportOperator(task_id="q1_review", python_callable=quarterly.q1_review, trigger_rule=ANY_RAN)
        [table_counts, architecture_review, q1_events, q1_npm] >> q1_review

    # ---- Q2 --------------------------------------------------------------------------------
    with TaskGroup("q2") as q2:
        with TaskGroup("performance_optimization"):
            q2_traffic = task(quarterly.monthly_traffic)()
            q2_slow = D1SqlOperator(
                task_id="slow_queries",
                sql="reports/slow_queries.sql",
                database=D1,
                parameters=w["sql_window"],
            )
            q2_cache = D1SqlOperator(task_id="cache_effectiveness", sql="reports/cache_effectiveness.sql", database=D1)

        with TaskGroup("scaling_review"):
            usage_q = task(quarterly.quarter_usage)()

        q2_review = ReportOperator(task_id="q2_review", python_callable=quarterly.q2_review, trigger_rule=ANY_RAN)
        [q2_traffic, q2_slow, q2_cache, usage_q] >> q2_review

    # ---- Q3 --------------------------------------------------------------------------------
    with TaskGroup("q3") as q3:
        with TaskGroup("dependency_audit"):
            q3_npm = task(dependency_update.npm_audit)()

        with TaskGroup("backup_testing"):
            inventory_of_backups = task(quarterly.backup_inventory)()
            chosen = task(drill.pick_set, inlets=BACKUP_SETS)()
            # A teardown: it runs when pick_set ran, even if the drill failed, and does not decide the
            # run's state (a failed drill does: it is a leaf but for the teardown).
            dropped = task(drill.drop_scratch)(chosen).as_teardown(setups=chosen)
            task(drill.restore_drill, retries=0, inlets=BACKUP_SETS)(chosen) >> dropped

        # all_done: the review is written whatever became of the drill. It hangs off the teardown, not
        # the drill, so the drill's failure still fails the run; the branch skips it directly in the
        # other quarters' runs (all_done alone would run it when everything above it was skipped).
        review_q3 = ReportOperator(task_id="q3_review", python_callable=quarterly.q3_review, trigger_rule="all_done")
        [q3_npm, inventory_of_backups, dropped] >> review_q3
        branch >> review_q3

    # ---- Q4 --------------------------------------------------------------------------------
    with TaskGroup("q4") as q4:
        with TaskGroup("yearly_review"):
            usage_by_month = D1SqlOperator(
                task_id="usage_by_month",
                sql="quarterly/usage_by_month.sql",
                database=D1,
                parameters=w["sql_year_dates"],
            )
            q4_traffic = task(quarterly.monthly_traffic)()

        with TaskGroup("capacity_planning"):
            plan = task(quarterly.growth_projection)(usage_by_month.output)

        q4_review = ReportOperator(task_id="q4_review", python_callable=quarterly.q4_review, trigger_rule=ANY_RAN)
        [usage_by_month, q4_traffic, plan] >> q4_review

    branch >> [q1, q2, q3, q4]
