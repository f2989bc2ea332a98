"""
### PRISM monthly maintenance (the guide's Maintenance Calendar: days 1, 7, 15, 21 and 28 at 03:00 UTC)

One DAG for the whole monthly calendar. Each run does **only its calendar day's tasks**: the first
task (`calendar_day`, a branch) reads the run's date and follows that day's group; the other days'
groups are skipped, and its log says why for each of them. A manual run on another day does nothing
unless the Param `run_day` names the day whose tasks it should run.

| day | group | what it does |
|---|---|---|
| 1 | `day_1.backup_verification`, `day_1.monthly_retention` | a full backup set (backup_tasks.backup_set): `plan` names it `monthly/YYYYMM/` (the run's month); `d1` (in `backups.d1_export_mode`), `vectorize` and `kv` export to `staging/monthly/YYYYMM/<token>/`; `finalize` reads every staged object back (size, sha256, content counted), promotes the set to `s3://{bucket}/monthly/YYYYMM/` and writes `manifest.json` last (status `checksummed`); `verify` restores it into scratch resources (`prism-verify-<token>`) and compares, records `verified` or `failed` in the manifest and publishes `reports/backups/monthly/YYYYMM/verification.md`; a mismatch fails the run and alerts; `drop_scratch`, a teardown, deletes the scratch resources again. `monthly_retention` runs after `verify` proved this month's set restorable (after a failed backup it deletes nothing and refuses, saying why, so the run stays failed; in a backfill, where no backup is taken, it counts from the window) and deletes complete monthly sets older than `backups.monthly_retention_months` counted from the run's month, never the newest verified one; sets without a manifest, or not named as a real month, are left for a person. It refuses a window ending in the future and runs in the one-slot pool `prism_deletes`. |
| 1 | `day_1.performance_report` | the **previous calendar month**: requests, success rate, p95 (GraphQL Workers analytics, totals and per day), tokens saved and cost (the Worker's `/metrics?period=30d`, point-in-time, labelled with its capture time), recommendations → `reports/prism_monthly/YYYYMM/performance.md` and `.html` with charts of requests, errors and p95 per day (YYYYMM = the month covered). |
| 7 | `day_7.dependency_update` | off by default (Param `run_dependency_update`): the config's `npm.update_command`, `npm.audit_command`, `npm.test_command` in `npm.project_dir`, and `npm.deploy_command` only when the tests pass. The commands come only from the deployment's config, never from a trigger; each child gets PATH, HOME, LANG, LC_*, TMPDIR and the names in `npm.env`, nothing else (no AIRFLOW*, no AWS_*), and its output is redacted. |
| 7 | `day_7.security_audit` | the 30 days before the run: failed logins (alert above `thresholds.failed_logins_per_month`), API-key abuse, 401/403 events (`security_events` types `unauthorized`/`forbidden`, the real equivalent of `wrangler tail --since 30d \\| grep unauthorized`), `npm.audit_command` when `npm.project_dir` is set → `reports/prism_monthly/YYYYMMDD/security.md` and `.html` with a chart of events by type. |
| 15 | `day_15.index_optimization` | what D1 allows: `PRAGMA optimize`/`ANALYZE`, `PRAGMA quick_check`, and the query plan of the chunk lookup. D1 refuses VACUUM and does not document REINDEX: reported as unsupported, never run. |
| 15 | `day_15.performance_optimization` | slow queries (the 7 days before the run), cache effectiveness, index usage → `reports/prism_monthly/YYYYMMDD/optimization.md`. The calendar's day-15 cache cleanup is `prism_weekly`'s. |
| 21 | `day_21.log_review` | the month to date: error rate and p95 (GraphQL), failed auth and rate-limit events; alerts above the thresholds → `log_review.md`. |
| 21 | `day_21.resource_check` | D1 size and tables, vectors, KV namespaces, latest deployment (point-in-time, labelled) → `resources.md`. |
| 28 | `day_28.monthly_report` | the month to date: traffic, errors, D1/AI/KV usage (GraphQL) → `reports/prism_monthly/YYYYMM/monthly_report.md`. |
| 28 | `day_28.capacity_planning` | growth per resource over three 30-day windows and the date each free-tier daily limit (and what the paid plan includes) would be reached at that growth → `capacity.md` and `capacity.html` with each resource's trend, projection and limits charted; alerts, with the resource-exhaustion investigation's findings, when a resource is over `thresholds.free_tier_usage_percent` of its limit. |

**Windows.** The run's data interval is the month before the run (`CronTriggerTimetable` with a
one-month interval); every window is computed from its end (the run's date), never from now, so
reports can be re-made for past runs. GraphQL keeps 92 days of Workers analytics and 31 days of
D1/AI/KV analytics (localflare's limits; Cloudflare's depend on the plan): windows reaching further
back are cut to what is kept, and the report says so.

**Reports** are published by `@report_task`s: each task links its report (HTML and Markdown) in
the Airflow UI, and the dashboard lists it. Alerts carry the findings of the guide's matching
troubleshooting investigation (not inside a backfill, where they would describe the present).

**Backfills.** Backups, index optimization and the dependency update act on the present, so inside a
backfill they skip with that reason. Live figures (the Worker's `/metrics`, resource sizes) are
labelled with both the run's date and the capture time.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from dateutil.relativedelta import relativedelta

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.backups.tasks import backup_set
from prism.dag_factory import prism_dag
from prism.maintenance import commands
from prism.monitoring.analytics_windows import daily_traffic_in, traffic_in, usage_in
from prism.monitoring.capacity import capacity_figures
from prism.monitoring.resources import live_resources
from prism.refusals import refuse
from prism.reports import monthly as monthly_reports
from prism.reports.links import report_task
from prism.reports.markdown import deliver, pulled
from prism.reports.periods import MONTHLY_CALENDAR as CALENDAR
from prism.reports.periods import calendar_branch, from_iso, monthly_run_windows
from prism.runtime import capture_labels, in_backfill
from prism.settings.config import runtime_config, schedule
from prism.settings.pools import DELETES_POOL

DAG_ID = "prism_monthly"

D1 = "{{ prism().cloudflare.d1_database }}"


def s3_hook():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default")


def _cf() -> dict:
    return runtime_config()["cloudflare"]


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

    @task(multiple_outputs=True)
    def windows(**context) -> dict:
        """The run's windows, from the end of its data interval (the run's date)."""
        return monthly_run_windows(context)

    @task.branch
    def calendar_day(w: dict, **context):
        """Follow the groups of the run's calendar day; say why each other day's groups are skipped."""
        return calendar_branch(CALENDAR, w["day"], context["params"].get("run_day"), "run_day", w["run_date"], "day_%d")

    @task
    def live_only(what: str, **context) -> None:
        """A gate for tasks that act on the present: skip them inside a backfill."""
        if in_backfill(context):
            raise AirflowSkipException(f"{what} acts on the present, so it is skipped inside a backfill")

    w = windows()
    branch = calendar_day(w)

    # ---- day 1 -----------------------------------------------------------------------------
    with TaskGroup("day_1") as day_1:
        monthly_backup = backup_set(
            "backup_verification", "monthly", tooltip="a full backup set to monthly/YYYYMM/, verified by a test restore"
        )

        # all_done: it runs whatever became of the backup; after a failed one it refuses (deletes nothing,
        # says why, keeps the run failed). On another calendar day it skips, by the check below.
        @task(trigger_rule="all_done", pool=DELETES_POOL)
        def monthly_retention(**context) -> dict:
            """Delete complete monthly sets older than backups.monthly_retention_months (from the run's
            month), never the newest verified one. Refuses a window ending in the future; runs only
            after this month's backup proved restorable."""
            from prism.backups.retention import expire_after_good_backup

            w = monthly_run_windows(context)
            if ((context.get("params") or {}).get("run_day") or w["day"]) != 1:  # calendar_day's own rule
                raise AirflowSkipException("this run does not follow day 1 of the calendar: no monthly retention")
            cfg = runtime_config()["backups"]
            return expire_after_good_backup(
                context,
                s3_hook(),
                cfg["bucket"],
                "monthly",
                "day_1.backup_verification",
                from_iso(w["end"]),
                cfg["monthly_retention_months"],
                what="monthly backup sets and staging",
            )

        monthly_backup >> monthly_retention()

        with TaskGroup("performance_report"):

            @task
            def month_traffic(**context) -> dict:
                """The month's totals and its traffic per day (for the report's charts), from GraphQL."""
                win, hook, script = (
                    monthly_run_windows(context)["previous_month"],
                    WorkersAnalyticsHook(),
                    _cf()["worker_name"],
                )
                start, end = from_iso(win["start"]), from_iso(win["end"])
                return {**traffic_in(hook, script, start, end), "daily": daily_traffic_in(hook, script, start, end)}

            @task
            def worker_metrics(**context) -> dict:
                """The Worker's own 30-day figures: point-in-time, labelled with the capture time."""
                from prism.monitoring.worker import PrismWorkerHook

                return {**PrismWorkerHook().metrics("30d"), "labels": capture_labels(context)}

            @report_task
            def performance_report(traffic: dict, metrics: dict, **context) -> dict:
                month = monthly_run_windows(context)["previous_month"]
                return deliver(
                    DAG_ID, monthly_reports.performance(traffic, metrics, month, runtime_config()["thresholds"])
                )

            performance_report(month_traffic(), worker_metrics())

    # ---- day 7 -----------------------------------------------------------------------------
    with TaskGroup("day_7") as day_7:
        with TaskGroup("dependency_update"):

            @task
            def enabled(**context) -> str:
                """Off by default; on, it needs the config's npm project. Checked before anything changes."""
                params = context["params"]
                if not params["run_dependency_update"]:
                    raise AirflowSkipException(
                        "the dependency update is off (Param run_dependency_update is false, the "
                        "default): set npm.project_dir in the config and trigger a run with "
                        "run_dependency_update=true"
                    )
                if in_backfill(context):
                    raise AirflowSkipException(
                        "the dependency update deploys the present, so it is skipped inside a backfill"
                    )
                action = "to update the npm dependencies"
                directory = commands.npm_project(runtime_config(), action)
                if not directory:
                    raise refuse(
                        action,
                        "run_dependency_update is true but npm.project_dir is not set in the config "
                        "(include/prism.config.json or the prism_config Variable)",
                    )
                return directory

            @task(retries=0)
            def npm_step(project: str, step: str, gate: bool) -> dict:
                """The config's npm.<step>_command; with gate=True a non-zero exit fails it (and stops the deploy)."""
                result = commands.run_step(runtime_config(), step, project)
                if gate and result["returncode"] != 0:
                    raise AirflowException(
                        f"{' '.join(result['command'])} exited {result['returncode']}: "
                        f"{'tests failed after the dependency update; not deploying' if step == 'test' else 'stopping'}"
                        f"\n{result['output'][-1500:]}"
                    )
                return result

            npm_dir = enabled()
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

            @task
            def npm_audit() -> dict:
                return commands.npm_audit(runtime_config())

            @report_task(trigger_rule="none_failed_min_one_success")
            def security_report(**context) -> dict:
                group = "day_7.security_audit"
                return deliver(
                    DAG_ID,
                    monthly_reports.security(
                        monthly_run_windows(context),
                        runtime_config()["thresholds"],
                        pulled(context, f"{group}.security_events"),
                        pulled(context, f"{group}.api_key_abuse"),
                        pulled(context, f"{group}.npm_audit"),
                    ),
                )

            [events, abuse, npm_audit()] >> security_report()

    # ---- day 15 ----------------------------------------------------------------------------
    with TaskGroup("day_15") as day_15:
        with TaskGroup("index_optimization"):
            gate = live_only.override(task_id="not_in_backfill")("index optimization")
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

        @report_task(trigger_rule="none_failed_min_one_success")
        def optimization_report(**context) -> dict:
            io, po = "day_15.index_optimization", "day_15.performance_optimization"
            figures = {name: pulled(context, f"{io}.{name}") for name in ("analyze", "quick_check", "query_plan")}
            figures |= {
                name: pulled(context, f"{po}.{name}") for name in ("slow_queries", "cache_effectiveness", "index_usage")
            }
            return deliver(
                DAG_ID, monthly_reports.optimization(monthly_run_windows(context), runtime_config(), figures)
            )

        [quick_check, plan, slow, cache, index_usage] >> optimization_report()

    # ---- day 21 ----------------------------------------------------------------------------
    with TaskGroup("day_21") as day_21:
        with TaskGroup("log_review"):
            month_events = D1SqlOperator(
                task_id="security_events",
                sql="reports/security_events.sql",
                database=D1,
                parameters=w["sql_month_to_date"],
            )

            @task
            def month_to_date_traffic(**context) -> dict:
                win = monthly_run_windows(context)["month_to_date"]
                return traffic_in(
                    WorkersAnalyticsHook(), _cf()["worker_name"], from_iso(win["start"]), from_iso(win["end"])
                )

            @report_task
            def log_review(traffic: dict, events: dict, **context) -> dict:
                return deliver(
                    DAG_ID,
                    monthly_reports.log_review(
                        monthly_run_windows(context), runtime_config()["thresholds"], traffic, events
                    ),
                )

            log_review(month_to_date_traffic(), month_events.output)

        with TaskGroup("resource_check"):

            @report_task
            def resource_check(**context) -> dict:
                """D1, Vectorize, KV and the Worker as they are now: point-in-time, labelled."""
                cf, limit = _cf(), runtime_config()["thresholds"]["free_tier_usage_percent"]
                return deliver(
                    DAG_ID,
                    monthly_reports.resources(
                        monthly_run_windows(context), cf, limit, live_resources(cf), capture_labels(context)
                    ),
                )

            resource_check()

    # ---- day 28 ----------------------------------------------------------------------------
    with TaskGroup("day_28") as day_28:
        with TaskGroup("monthly_report"):

            @task
            def month_usage(**context) -> dict:
                win, cf, hook = monthly_run_windows(context)["month_to_date"], _cf(), WorkersAnalyticsHook()
                start, end = from_iso(win["start"]), from_iso(win["end"])
                return {
                    "traffic": traffic_in(hook, cf["worker_name"], start, end),
                    "usage": usage_in(hook, D1Hook().find_database(cf["d1_database"]), start, end),
                }

            @report_task
            def monthly_report(figures: dict, **context) -> dict:
                return deliver(DAG_ID, monthly_reports.month_usage(monthly_run_windows(context), figures))

            monthly_report(month_usage())

        with TaskGroup("capacity_planning"):

            @task
            def capacity_analytics(**context) -> dict:
                """Three 30-day windows of traffic and usage (and two 15-day halves of the last, for the
                datasets GraphQL keeps only 31 days of)."""
                win, cf = monthly_run_windows(context), _cf()
                return capacity_figures(
                    WorkersAnalyticsHook(),
                    cf["worker_name"],
                    D1Hook().find_database(cf["d1_database"]),
                    win["capacity"],
                    from_iso(win["end"]),
                )

            @report_task
            def capacity_report(analytics: dict, **context) -> dict:
                limit = runtime_config()["thresholds"]["free_tier_usage_percent"]
                return deliver(DAG_ID, monthly_reports.capacity(monthly_run_windows(context), analytics, limit))

            capacity_report(capacity_analytics())

    branch >> [day_1, day_7, day_15, day_21, day_28]
