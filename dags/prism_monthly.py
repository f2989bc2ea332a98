"""
### PRISM monthly maintenance (the guide's Maintenance Calendar: days 1, 7, 15, 21 and 28 at 03:00 UTC)

One DAG for the whole monthly calendar. Each run does **only its calendar day's tasks**: the first
task (`calendar_day`, a branch) reads the run's date and follows that day's group; the other days'
groups are skipped, and its log says why for each of them. A manual run on another day does nothing
unless the Param `run_day` names the day whose tasks it should run.

| day | group | what it does |
|---|---|---|
| 1 | `day_1.backup_verification`, `day_1.monthly_retention` | a full backup set (backup_tasks.backup_set): `plan` names it `monthly/YYYYMM/` (the run's month); `d1` (in `backups.d1_export_mode`), `vectorize` and `kv` export to `staging/monthly/YYYYMM/<token>/`; `finalize` reads every staged object back (size, sha256, content counted), promotes the set to `s3://{bucket}/monthly/YYYYMM/` and writes `manifest.json` last (status `checksummed`); `verify` restores it into scratch resources (`prism-verify-<token>`) and compares, records `verified` or `failed` in the manifest and publishes `reports/backups/monthly/YYYYMM/verification.md`; a mismatch fails the run and alerts; `drop_scratch`, a teardown, deletes the scratch resources again. `monthly_retention` runs after `verify` proved this month's set restorable (after a failed backup it deletes nothing and refuses, saying why, so the run stays failed; in a backfill, where no backup is taken, it counts from the window) and deletes complete monthly sets older than `backups.monthly_retention_months` counted from the run's month, never the newest verified one; sets without a manifest, or not named as a real month, are left for a person. It refuses a window ending in the future and runs in the one-slot pool `prism_deletes`. |
| 1 | `day_1.performance_report` | the **previous calendar month**: requests, success rate, p95 (GraphQL Workers analytics, totals and per day), recommendations, and tokens saved and cost (the Worker's `/metrics?period=30d`: point-in-time, see below) → `reports/prism_monthly/YYYYMM/performance.html` with charts of requests, errors and p95 per day, and `.md` (YYYYMM = the month covered). |
| 7 | `day_7.dependency_update` | off by default (Param `run_dependency_update`): the config's `npm.update_command`, `npm.audit_command`, `npm.test_command` in `npm.project_dir`, and `npm.deploy_command` only when the tests pass. The commands come only from the deployment's config, never from a trigger; each child gets PATH, HOME, LANG, LC_*, TMPDIR and the names in `npm.env`, nothing else (no AIRFLOW*, no AWS_*), and its output is redacted. |
| 7 | `day_7.security_audit` | the 30 days before the run: failed logins (alert above `thresholds.failed_logins_per_month`), API-key abuse, 401/403 events (`security_events` types `unauthorized`/`forbidden`, the real equivalent of `wrangler tail --since 30d \\| grep unauthorized`), `npm.audit_command` when `npm.project_dir` is set → `reports/prism_monthly/YYYYMMDD/security.md` and `.html` with a chart of events by type. |
| 15 | `day_15.index_optimization` | what D1 allows: `PRAGMA optimize`/`ANALYZE`, `PRAGMA quick_check`, and the query plan of the chunk lookup. D1 refuses VACUUM and does not document REINDEX: reported as unsupported, never run. |
| 15 | `day_15.performance_optimization` | slow queries (the 7 days before the run), cache effectiveness, index usage → `reports/prism_monthly/YYYYMMDD/optimization.md`. The calendar's day-15 cache cleanup is `prism_weekly`'s. |
| 21 | `day_21.log_review` | the month to date: error rate and p95 (GraphQL), failed auth and rate-limit events; alerts above the thresholds → `log_review.md`. |
| 21 | `day_21.resource_check` | D1 size and tables, vectors, KV namespaces, latest deployment (point-in-time, labelled) → `resources.md`. |
| 28 | `day_28.monthly_report` | the month to date: traffic, errors, D1/AI/KV usage (GraphQL) → `reports/prism_monthly/YYYYMM/monthly_report.md`. |
| 28 | `day_28.capacity_planning` | growth per resource over three 30-day windows and the date each free-tier daily limit (and what the paid plan includes) would be reached at that growth → `capacity.md` and `capacity.html` with each resource's trend, projection and limits charted; alerts, with the resource-exhaustion investigation's findings, when a resource is over `thresholds.free_tier_usage_percent` of its limit. |

**Windows.** The run's data interval is the month before the run (`CronTriggerTimetable` with a
one-month interval); every window is computed from its end (the run's date), never from now, and
each report states its window once, in its title and its `Window:` line. GraphQL keeps 92 days of
Workers analytics and 31 days of D1/AI/KV analytics (localflare's limits; Cloudflare's depend on the
plan): what a report reads is decided by its window alone (what GraphQL holds a day after the
window ends; a longer window is cut to that, and the report says so), never by when it runs.

**Reports** are one HTML page each (`<name>.html`, titled, rendered from the same text as the
`<name>.md` beside it), published by `ReportOperator`s: each task links its report (HTML and
Markdown) in the Airflow UI, and the dashboard lists it. Alerts carry the findings of the guide's
matching troubleshooting investigation (not inside a backfill, where they would describe the present).

**Backfills and re-runs.** A report depends on its window alone, so making it again rewrites no byte
(same keys, same ETags). Backups, index optimization and the dependency update act on the present,
so inside a backfill they skip with that reason. Point-in-time figures (the Worker's `/metrics`,
resource sizes, the cache and indexes, npm audit) are read only when the run is timely: not in a
backfill, and within a day of its report's window's end. A later run leaves them out with a note,
and a report already in the bucket keeps the ones it captured first. Once GraphQL no longer holds
what a report read, a report already in the bucket is kept as it is; a new one says the figures are
unavailable. To make a report anew, delete its two objects first.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, Param, TaskGroup, task
from dateutil.relativedelta import relativedelta

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.backups.tasks import backup_set
from prism.dag_factory import prism_dag
from prism.maintenance import dependency_update
from prism.reports import monthly_tasks as monthly
from prism.reports.links import ReportOperator
from prism.reports.periods import MONTHLY_CALENDAR as CALENDAR
from prism.settings.config import schedule
from prism.settings.pools import DELETES_POOL

DAG_ID = monthly.DAG_ID
D1 = "{{ prism().cloudflare.d1_database }}"
# Trigger rule of the reports that gather several groups' figures: written when any of them ran.
ANY_RAN = "none_failed_min_one_success"

with prism_dag(
    DAG_ID,
    schedule=CronTriggerTimetable(
        schedule(DAG_ID, "0 3 1,7,15,21,28 * *"), timezone="UTC", interval=relativedelta(months=1)
    ),
    doc_md=__doc__,
    tags=["maintenance", "monthly"],
    params={
        "run_day": Param(
            None,
            type=["null", "integer"],
            enum=[None, *CALENDAR],
            description="Run this calendar day's tasks instead of the run date's (a manual re-run). "
            "Empty: the run's own day; a day not on the calendar runs nothing.",
        ),
        "run_dependency_update": Param(
            False,
            type="boolean",
            description="Day 7: update the npm dependencies, test, and deploy when the tests pass. Off by default.",
        ),
    },
) as dag:
    w = task(monthly.windows, multiple_outputs=True)()
    branch = task.branch(monthly.calendar_day)(w)

    # ---- day 1 -----------------------------------------------------------------------------
    with TaskGroup("day_1") as day_1:
        monthly_backup = backup_set(
            "backup_verification", "monthly", tooltip="a full backup set to monthly/YYYYMM/, verified by a test restore"
        )
        # all_done: it runs whatever became of the backup; after a failed one it refuses (deletes nothing,
        # says why, keeps the run failed). On another calendar day it skips, by its own check.
        monthly_backup >> task(monthly.monthly_retention, trigger_rule="all_done", pool=DELETES_POOL)()

        with TaskGroup("performance_report"):
            ReportOperator(
                task_id="performance_report",
                python_callable=monthly.performance_report,
                op_args=[task(monthly.month_traffic)(), task(monthly.worker_metrics)()],
            )

    # ---- day 7 -----------------------------------------------------------------------------
    with TaskGroup("day_7") as day_7:
        with TaskGroup("dependency_update"):
            npm_dir = task(dependency_update.enabled)()
            npm_step = task(dependency_update.npm_step, retries=0)
            update = npm_step.override(task_id="npm_update")(npm_dir, "update", True)
            audit = npm_step.override(task_id="npm_audit")(npm_dir, "audit", False)
            tests = npm_step.override(task_id="npm_test")(npm_dir, "test", True)
            deploy = npm_step.override(task_id="deploy")(npm_dir, "deploy", True)
            update >> audit >> tests >> deploy

        with TaskGroup("security_audit"):
            events = D1SqlOperator(
                task_id="security_events",
                sql="reports/security_events.sql",
                database=D1,
                parameters=w["sql_last_30_days"],
            )
            abuse = D1SqlOperator(
                task_id="api_key_abuse", sql="monthly/api_key_abuse.sql", database=D1, parameters=w["sql_last_30_days"]
            )
            security_report = ReportOperator(
                task_id="security_report", python_callable=monthly.security_report, trigger_rule=ANY_RAN
            )
            [events, abuse, task(dependency_update.npm_audit)()] >> security_report

    # ---- day 15 ----------------------------------------------------------------------------
    with TaskGroup("day_15") as day_15:
        with TaskGroup("index_optimization"):
            gate = task(monthly.live_only, task_id="not_in_backfill")("index optimization")
            analyze = D1SqlOperator(task_id="analyze", sql="optimize/analyze.sql", database=D1)
            quick_check = D1SqlOperator(task_id="quick_check", sql="optimize/quick_check.sql", database=D1)
            plan = D1SqlOperator(
                task_id="query_plan",
                sql="monthly/explain_chunks_by_document.sql",
                database=D1,
                parameters=["plan-probe"],
            )
            gate >> analyze >> [quick_check, plan]

        with TaskGroup("performance_optimization"):
            slow = D1SqlOperator(
                task_id="slow_queries", sql="reports/slow_queries.sql", database=D1, parameters=w["sql_last_7_days"]
            )
            cache = D1SqlOperator(task_id="cache_effectiveness", sql="reports/cache_effectiveness.sql", database=D1)
            index_usage = D1SqlOperator(task_id="index_usage", sql="reports/index_usage.sql", database=D1)

        optimization_report = ReportOperator(
            task_id="optimization_report", python_callable=monthly.optimization_report, trigger_rule=ANY_RAN
        )
        [quick_check, plan, slow, cache, index_usage] >> optimization_report

    # ---- day 21 ----------------------------------------------------------------------------
    with TaskGroup("day_21") as day_21:
        with TaskGroup("log_review"):
            month_events = D1SqlOperator(
                task_id="security_events",
                sql="reports/security_events.sql",
                database=D1,
                parameters=w["sql_month_to_date"],
            )
            ReportOperator(
                task_id="log_review",
                python_callable=monthly.log_review,
                op_args=[task(monthly.month_to_date_traffic)(), month_events.output],
            )

        with TaskGroup("resource_check"):
            ReportOperator(task_id="resource_check", python_callable=monthly.resource_check)

    # ---- day 28 ----------------------------------------------------------------------------
    with TaskGroup("day_28") as day_28:
        with TaskGroup("monthly_report"):
            ReportOperator(
                task_id="monthly_report", python_callable=monthly.monthly_report, op_args=[task(monthly.month_usage)()]
            )

        with TaskGroup("capacity_planning"):
            ReportOperator(
                task_id="capacity_report",
                python_callable=monthly.capacity_report,
                op_args=[task(monthly.capacity_analytics)()],
            )

    branch >> [day_1, day_7, day_15, day_21, day_28]
