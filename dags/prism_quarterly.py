"""
### PRISM quarterly review (1 January, April, July and October at 04:00 UTC)

The guide's Quarterly Schedule as a **checklist report with figures**, one run per quarter:
`reports/prism_quarterly/YYYYQn/review.md`, and `review.html` with charts (items by outcome, and the
quarter's figures: events by type, requests per month, backup sets by status), linked from the review
task (`@report_task`) and the dashboard. A run on the first day of a quarter does that quarter's
items (the branch `quarter` follows one group and skips the others, saying why); the figures cover
the quarter before (the run's data interval, a `CronTriggerTimetable` with a three-month interval).

| quarter | group | checklist |
|---|---|---|
| Q1 | `q1.architecture_review`, `q1.security_audit` | D1 size, tables and rows; the Vectorize index against the config (dimensions, metric); KV namespaces; Worker versions deployed in the quarter. Security events by type; failed logins against `thresholds.failed_logins_per_month` × 3; the config's `npm.audit_command` when `npm.project_dir` is set (never from a Param). |
| Q2 | `q2.performance_optimization`, `q2.scaling_review` | Requests, error rate and p95 per month (GraphQL), slow queries over the quarter, cache effectiveness. The last 30 days of D1/AI/KV usage against the free-tier daily limits. |
| Q3 | `q3.dependency_audit`, `q3.backup_testing` | the config's `npm.audit_command` (skipped without `npm.project_dir`). The backup sets (`daily/YYYYMMDD/`, `monthly/YYYYMM/`) of the quarter in the bucket, each complete (it has its `manifest.json`) or not and its verification status, and the months without a complete monthly set. A **restore drill** of an existing backup: `pick_set` takes the newest complete daily set (else the newest monthly one); `restore_drill` reads its objects back against the manifest (size, sha256, content counted), restores it into scratch resources (`prism-verify-<token>`: a new D1 database and a new index) and compares them with the backup, and records the result in the set's manifest (`verified` or `failed`, method "quarterly restore drill"); a set that does not restore as its manifest says fails the drill and the run. `drop_scratch`, a teardown, deletes the scratch resources even when the drill fails, and does not decide the run's state. No complete set at all is flagged, not a crash. The review is written whatever became of the drill. |
| Q4 | `q4.yearly_review`, `q4.capacity_planning` | PRISM's usage log per month over the year (D1), Worker traffic per month where GraphQL still has it (92 days). Growth per month of requests and neurons, and the date each would reach its free-tier daily limit. |

Items needing attention are marked `[!]` and alerted (one alert per review). GraphQL keeps 92 days
of Workers analytics and 31 of D1/AI/KV analytics (localflare's limits; Cloudflare's depend on the
plan): older windows are cut or reported as unavailable. The Param `quarter` runs another
quarter's items in a manual run; the drill skips inside a backfill (it tests the backups as they are
now), and when the Param `run_restore_drill` is false.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from dateutil.relativedelta import relativedelta

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.backups import sets as backup_sets
from prism.backups import verification as scratch_restore
from prism.backups.inventory import backups_of_quarter, bucket_sets, newest_complete
from prism.backups.sets import run_token
from prism.dag_factory import prism_dag
from prism.maintenance import commands
from prism.monitoring.analytics_windows import totals_in, traffic_in
from prism.monitoring.capacity import monthly_growth
from prism.monitoring.dashboard_records import backup_snapshot, record
from prism.monitoring.resources import architecture
from prism.reports import quarterly as quarterly_reviews
from prism.reports.links import report_task
from prism.reports.markdown import deliver, pulled, result_rows
from prism.reports.periods import QUARTERLY_CALENDAR as QUARTERS
from prism.reports.periods import calendar_branch, from_iso, quarterly_run_windows
from prism.runtime import capture_labels, in_backfill
from prism.settings.config import runtime_config, schedule

DAG_ID = "prism_quarterly"
log = logging.getLogger(__name__)
D1 = "{{ prism().cloudflare.d1_database }}"
DRILL_RESULT = "drill"  # the XCom key of the restore drill's result, pushed before a failure too


def s3_hook():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # boto3: not at DAG parse time

    return S3Hook(aws_conn_id="aws_default")


def _cf() -> dict:
    return runtime_config()["cloudflare"]


def _review(context, title: str, sections: dict[str, list[str]], figures: dict | None = None) -> dict:
    """Publish the quarter's review (Markdown and HTML with charts of `figures`); one alert when items need attention."""
    report = quarterly_reviews.checklist(
        quarterly_run_windows(context), title, sections, capture_labels(context), figures
    )
    return deliver(DAG_ID, report)


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
            description="Run this quarter's review items instead of the run date's (a manual run). Empty: the run's own quarter.",
        ),
        "run_restore_drill": Param(
            True, type="boolean", description="Q3: run the restore drill into scratch resources."
        ),
    },
) as dag:

    @task(multiple_outputs=True)
    def windows(**context) -> dict:
        return quarterly_run_windows(context)

    @task.branch
    def quarter(w: dict, **context):
        """Follow the groups of the run's quarter; say why each other quarter's groups are skipped."""
        log.info("figures for %s", w["previous_quarter"]["label"])
        return calendar_branch(
            QUARTERS, w["quarter"], context["params"].get("quarter"), "quarter", w["run_date"], "q%d"
        )

    @task
    def npm_audit() -> dict:
        """The config's npm.audit_command in npm.project_dir; skipped when there is none. Never from a Param."""
        return commands.npm_audit(runtime_config())

    @task
    def monthly_traffic(**context) -> list[dict]:
        """Worker traffic per month of the quarter before, as far as GraphQL keeps it."""
        hook = WorkersAnalyticsHook()
        return [
            {"label": m["label"], **traffic_in(hook, _cf()["worker_name"], from_iso(m["start"]), from_iso(m["end"]))}
            for m in quarterly_run_windows(context)["months"]
        ]

    w = windows()
    branch = quarter(w)

    # ---- Q1 --------------------------------------------------------------------------------
    with TaskGroup("q1") as q1:
        with TaskGroup("architecture_review"):
            table_counts = D1SqlOperator(task_id="table_counts", sql="quarterly/table_counts.sql", database=D1)

            @task
            def inventory(**context) -> dict:
                """D1, Vectorize, KV and the Worker as they are now (point-in-time, labelled)."""
                reviewed = quarterly_run_windows(context)["previous_quarter"]
                return {
                    **architecture(_cf(), from_iso(reviewed["start"]), from_iso(reviewed["end"])),
                    "labels": capture_labels(context),
                }

            architecture_review = inventory()

        with TaskGroup("security_audit"):
            q1_events = D1SqlOperator(
                task_id="security_events",
                sql="reports/security_events.sql",
                database=D1,
                parameters=w["sql_previous_quarter"],
            )
            q1_npm = npm_audit()

        @report_task(trigger_rule="none_failed_min_one_success")
        def q1_review(**context) -> dict:
            events = pulled(context, "q1.security_audit.security_events")
            return _review(
                context,
                "architecture review, security audit",
                quarterly_reviews.q1_items(
                    _cf(),
                    runtime_config()["thresholds"],
                    pulled(context, "q1.architecture_review.inventory"),
                    pulled(context, "q1.architecture_review.table_counts"),
                    events,
                    pulled(context, "q1.security_audit.npm_audit"),
                ),
                {"security_events": events},
            )

        [table_counts, architecture_review, q1_events, q1_npm] >> q1_review()

    # ---- Q2 --------------------------------------------------------------------------------
    with TaskGroup("q2") as q2:
        with TaskGroup("performance_optimization"):
            q2_traffic = monthly_traffic()
            q2_slow = D1SqlOperator(
                task_id="slow_queries",
                sql="reports/slow_queries.sql",
                database=D1,
                parameters=w["sql_previous_quarter"],
            )
            q2_cache = D1SqlOperator(task_id="cache_effectiveness", sql="reports/cache_effectiveness.sql", database=D1)

        with TaskGroup("scaling_review"):

            @task
            def recent_usage(**context) -> dict:
                """The last 30 days' usage per free-tier resource (GraphQL keeps 31 days of it)."""
                last, cf = quarterly_run_windows(context)["last_30_days"], _cf()
                return totals_in(
                    WorkersAnalyticsHook(),
                    cf["worker_name"],
                    D1Hook().find_database(cf["d1_database"]),
                    from_iso(last["start"]),
                    from_iso(last["end"]),
                    quarterly_reviews.SCALING_RESOURCES,
                )

            usage_30d = recent_usage()

        @report_task(trigger_rule="none_failed_min_one_success")
        def q2_review(**context) -> dict:
            months = pulled(context, "q2.performance_optimization.monthly_traffic") or []
            return _review(
                context,
                "performance optimization, scaling review",
                quarterly_reviews.q2_items(
                    runtime_config(),
                    months,
                    pulled(context, "q2.performance_optimization.slow_queries"),
                    pulled(context, "q2.performance_optimization.cache_effectiveness"),
                    pulled(context, "q2.scaling_review.recent_usage") or {},
                ),
                {"monthly_traffic": months},
            )

        [q2_traffic, q2_slow, q2_cache, usage_30d] >> q2_review()

    # ---- Q3 --------------------------------------------------------------------------------
    with TaskGroup("q3") as q3:
        with TaskGroup("dependency_audit"):
            q3_npm = npm_audit()

        with TaskGroup("backup_testing"):

            @task
            def backup_inventory(**context) -> dict:
                """The daily and monthly backup sets of the reviewed quarter: complete or not, and how far verified."""
                reviewed = quarterly_run_windows(context)["previous_quarter"]
                return backups_of_quarter(
                    s3_hook(),
                    runtime_config()["backups"]["bucket"],
                    from_iso(reviewed["start"]),
                    from_iso(reviewed["end"]),
                )

            inventory_of_backups = backup_inventory()

            @task
            def pick_set(**context) -> dict:
                """The set the drill tests: the newest complete daily set, else the newest complete monthly
                one (cadence None: there is none). Its scratch token derives from the run, so the
                teardown finds what a drill that died left behind."""
                if not context["params"]["run_restore_drill"]:
                    raise AirflowSkipException("the restore drill is off (Param run_restore_drill is false)")
                if in_backfill(context):
                    raise AirflowSkipException(
                        "the restore drill tests the backups as they are now, so it is skipped inside a backfill"
                    )
                bucket = runtime_config()["backups"]["bucket"]
                cadence, period = newest_complete(bucket_sets(s3_hook(), bucket)) or (None, None)
                token = run_token(f"{DAG_ID}/{context['run_id']}")
                return {
                    "bucket": bucket,
                    "cadence": cadence,
                    "period": period,
                    "token": token,
                    "scratch": scratch_restore.scratch_name(token),
                }

            @task(retries=0)
            def restore_drill(chosen: dict, **context) -> dict | None:
                """Read the set's objects back against its manifest (size, sha256, content counted), then
                restore it into scratch resources and compare (scratch_restore). The result goes into
                the set's manifest, and the task fails when the set does not restore as it says."""
                if chosen["cadence"] is None:
                    log.warning(
                        "no complete daily or monthly backup set in s3://%s: nothing to drill", chosen["bucket"]
                    )
                    return None
                s3, bucket, cadence, period = s3_hook(), chosen["bucket"], chosen["cadence"], chosen["period"]
                manifest = backup_sets.load_manifest(s3, bucket, cadence, period)
                if manifest is None:
                    raise AirflowException(f"{cadence}/{period} lost its manifest after it was picked (retention?)")
                base = backup_sets.prefix(cadence, period)
                problems = backup_sets.check_objects(s3, bucket, base, manifest)
                if problems:
                    result = {"problems": problems, "notes": ["not restored: the objects do not match the manifest"]}
                else:
                    cf = _cf()
                    result = scratch_restore.restore_and_compare(
                        s3,
                        bucket,
                        base,
                        manifest,
                        chosen["token"],
                        source_db=D1Hook().find_database(cf["d1_database"]),
                        source_index=cf["vectorize_index"],
                        source_namespace=KVHook().find_namespace(cf["kv_namespace"]),
                    )
                status = result.get("status") or (
                    "failed" if result["problems"] else "verified"
                )  # partial: KV not restorable
                figures = {k: result.get(k) for k in ("problems", "notes", "d1", "vectorize", "kv")}
                backup_sets.set_verification(
                    s3,
                    bucket,
                    cadence,
                    period,
                    status,
                    {
                        "method": "quarterly restore drill",
                        "dag_run": context["run_id"],
                        **figures,
                        **{k: result[k] for k in ("restorable", "restorable_reasons") if k in result},
                    },
                )
                outcome = {
                    **backup_sets.summary(manifest),
                    "cadence": cadence,
                    "status": status,
                    "kv_keys": manifest.get("kv", {}).get("key_count"),
                    **figures,
                }
                # Pushed before a failure too: the review reports what the drill found either way.
                context["ti"].xcom_push(key=DRILL_RESULT, value=outcome)
                record(
                    "backup",
                    backup_snapshot(cadence, manifest, status, "quarterly restore drill", problems=result["problems"]),
                )
                if status == "failed":
                    raise AirflowException(
                        f"restore drill of {cadence}/{period} FAILED (recorded in its manifest):\n  "
                        + "\n  ".join(result["problems"])
                    )
                return outcome

            @task
            def drop_scratch(chosen: dict) -> list[str]:
                """Delete the drill's scratch database and index, whatever became of the drill."""
                return scratch_restore.cleanup(chosen["token"])

            chosen = pick_set()
            # A teardown: it runs when pick_set ran, even if the drill failed, and does not decide the
            # run's state (a failed drill does: it is a leaf but for the teardown).
            dropped = drop_scratch(chosen).as_teardown(setups=chosen)
            restore_drill(chosen) >> dropped

        # all_done: the review is written whatever became of the drill. It hangs off the teardown, not
        # the drill, so the drill's failure still fails the run; the branch skips it directly in the
        # other quarters' runs (all_done alone would run it when everything above it was skipped).
        @report_task(trigger_rule="all_done")
        def q3_review(**context) -> dict:
            ti, testing = context["ti"], "q3.backup_testing"
            backups = pulled(context, f"{testing}.backup_inventory")
            return _review(
                context,
                "dependency audit, backup testing",
                quarterly_reviews.q3_items(
                    backups,
                    pulled(context, f"{testing}.pick_set"),
                    ti.xcom_pull(task_ids=f"{testing}.restore_drill", key=DRILL_RESULT),
                    pulled(context, f"{testing}.drop_scratch"),
                    pulled(context, "q3.dependency_audit.npm_audit"),
                ),
                {"backups": backups},
            )

        review_q3 = q3_review()
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
            q4_traffic = monthly_traffic()

        with TaskGroup("capacity_planning"):

            @task
            def growth_projection(usage: dict, **context) -> dict:
                """Growth per month of requests and neurons (complete months of PRISM's usage log) and the
                date each would reach its free-tier daily limit."""
                return monthly_growth(result_rows(usage), from_iso(quarterly_run_windows(context)["end"]))

            plan = growth_projection(usage_by_month.output)

        @report_task(trigger_rule="none_failed_min_one_success")
        def q4_review(**context) -> dict:
            plan = pulled(context, "q4.capacity_planning.growth_projection") or {"months": []}
            usage, months = (
                pulled(context, "q4.yearly_review.usage_by_month"),
                pulled(context, "q4.yearly_review.monthly_traffic") or [],
            )
            sections = quarterly_reviews.q4_items(
                runtime_config()["thresholds"]["free_tier_usage_percent"], usage, months, plan
            )
            figures = {"usage_by_month": usage, "monthly_traffic": months}
            return {**_review(context, "yearly review, capacity planning", sections, figures), "plan": plan}

        [usage_by_month, q4_traffic, plan] >> q4_review()

    branch >> [q1, q2, q3, q4]
