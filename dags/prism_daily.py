"""
### PRISM daily maintenance (09:00 UTC)

The guide's *Daily Maintenance Tasks*, its *Automated Daily Backups* and its *Log Rotation*, one
task group per procedure. A run at 09:00 on day D covers the data interval [D-1 09:00, D 09:00).

| group | what | in a backfill |
|---|---|---|
| `health_check` | Worker `/health`, D1 `SELECT 1`, Vectorize query and vector count (`services`); Workers AI neurons used today against `thresholds.free_tier_usage_percent` from the Worker's `/metrics` (`free_tier`) | skipped: they describe the present |
| `log_review` | for the run's window: Worker traffic from GraphQL Analytics (the real mechanism behind the guide's `wrangler tail --since 24h`, which does not exist) and D1 `security_events`; error rate, p95, failed auth and rate-limit violations against the thresholds; Markdown report `reports/prism_daily/YYYYMMDD/log_review.md` | runs for the window |
| `resource_usage` | D1 info (size, tables), KV namespaces, Vectorize indexes with their info, the latest Worker deployment | runs, labelled with the logical date and the capture time |
| `daily_backup` | a backup set: D1 (`d1.sql.gz`), Vectorize (`vectors.ndjson.gz`) and KV (`kv.ndjson.gz`) exported to staging, read back and hashed, promoted to `s3://<backups.bucket>/daily/YYYYMMDD/` with `manifest.json` written last, then **verified** by a test restore into scratch resources (`verify`, `drop_scratch`) | skipped (a live export cannot stand for a past date) |
| `backup_retention` | after `daily_backup` proved today's set restorable: daily sets older than `backups.daily_retention_days`, disaster recovery's safety sets older than `backups.safety_retention_days` and stale staging deleted; when today's backup failed or did not run it deletes nothing and refuses, saying why (so the run stays failed) | runs for the window (no backup is taken) |
| `log_rotation` | application logs in the bucket: `logs/*.log` older than `retention.log_gzip_after_days` gzipped to `logs/archive/`, archives older than `retention.log_archive_delete_after_days` deleted | runs for the window |

**Deletes are guarded.** `backup_retention` and `log_rotation` refuse a run whose window ends in
the future (more than `deletion_guard.CLOCK_SLACK`, 10 minutes, after the wall clock): such a date
would make every real backup and log "old". They run in the one-slot pool `prism_deletes`, so no two
runs (scheduled, manual or backfill) delete at the same time.

**Dates.** YYYYMMDD is the date of the end of the run's data interval (the time it stands for):
the 09:00 run on 1 Nov writes `daily/20261101/`, as the guide's `date +%Y%m%d` at 09:00 would.
Airflow's own logical date of that scheduled run may be the interval's start. A manual run without a logical date uses the time it was made to run.

**Thresholds** come from the config (`thresholds.*`, overridable through the `prism_config`
Variable). Crossing one sends an alert (log, Slack, e-mail) and does not fail the run; a check that
cannot be made (Worker down, API error) fails the task, which alerts too. Alerts carry the findings
of the guide's matching troubleshooting investigation, run at once: a high error rate or a failed
health check (recent errors, the Worker's status, dependency checks, recent deployments), a slow p95
(slow queries, cache hit rate), free-tier usage or rate-limit violations (usage against the limits,
rate-limit hits). Failed authentication and
rate-limit violations use `thresholds.failed_auth_per_day` and `thresholds.rate_limited_per_day`,
scaled to the window's length.

**Retention** keeps `backups.daily_retention_days` (30) counted back from the run's date: a set
`daily/YYYYMMDD/` more than that many days before it is deleted when it is complete (it has a
manifest). A set without a manifest (an interrupted backup) is left alone and reported, and the
newest **verified** set is never deleted, whatever its age. Only canonical names are sets
(`daily/YYYYMMDD/` of a real date); anything else under `daily/` is reported (`not_periods`), never
deleted nor counted. A set dated after the run's date is never deleted and never counts as the newest
verified one. The `dry_run` Param lists what would go and deletes nothing.

**Log rotation** compares against the window end, never now: a log is archived when its
LastModified is more than 7 days before the window end; an archive is deleted when the log it holds
was last modified more than 90 days before the window end (the archive keeps the original's time in
its metadata, as gzip keeps a file's mtime). Each archive is uploaded, read back and compared with
the original (SHA-256 and size) before the original is deleted.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta, timezone

from airflow.sdk import CronTriggerTimetable, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.alerts import PrismAlertNotifier
from prism.backups.tasks import backup_set
from prism.dag_factory import prism_dag
from prism.monitoring.health import CloudflareHealthCheckOperator
from prism.runtime import capture_labels, in_backfill, sql_time, window
from prism.settings.config import runtime_config, schedule
from prism.settings.pools import DELETES_POOL

DAG_ID = "prism_daily"
log = logging.getLogger(__name__)
CF = "{{ prism().cloudflare.%s }}"


def _day(context) -> date:
    """The day a run stands for: the date of the end of its data interval."""
    return window(context)[1].astimezone(timezone.utc).date()


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default")


with prism_dag(
    DAG_ID,
    schedule=CronTriggerTimetable(schedule(DAG_ID, "0 9 * * *"), timezone="UTC", interval=timedelta(days=1)),
    doc_md=__doc__,
    tags=["maintenance", "daily", "backup"],
    task_defaults={"execution_timeout": timedelta(hours=2)},
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run of the backup retention",
            description="List the daily backups retention would delete, and delete nothing.",
        ),
    },
) as dag:
    # ---- 1. Health checks (guide: Daily Maintenance Tasks / 1. Health Checks) ----------------
    with TaskGroup("health_check", tooltip="Worker /health, D1 SELECT 1, Vectorize, free-tier usage (live)"):
        CloudflareHealthCheckOperator(
            task_id="services",
            checks=("worker", "d1", "vectorize"),
            database=CF % "d1_database",
            index=CF % "vectorize_index",
            namespace=CF % "kv_namespace",
            doc_md="Worker `/health`, D1 `SELECT 1`, a Vectorize topK=1 query and its vector count (info). "
            "Skipped inside a backfill. A failure alerts with the high-error-rate investigation's findings.",
            on_failure_callback=PrismAlertNotifier(investigation="high_error_rate"),
        )

        @task
        def free_tier(**context) -> dict:
            """Workers AI neurons used today (UTC) against the daily free-tier limit, from the Worker's
            `/metrics`; alerts above `thresholds.free_tier_usage_percent`. Skipped inside a backfill."""
            from prism.monitoring.troubleshooting import alert
            from prism.monitoring.worker import PrismWorkerHook

            if in_backfill(context):
                raise AirflowSkipException("free-tier usage is today's live figure; skipped inside a backfill")
            resources = PrismWorkerHook().metrics("24h")["resources"]
            used, limit = resources["neurons_used"], resources["neurons_limit"]
            percent = round(100 * used / limit, 2) if limit else 100.0
            threshold = runtime_config()["thresholds"]["free_tier_usage_percent"]
            result = {
                "neurons_used": used,
                "neurons_limit": limit,
                "usage_percent": percent,
                "threshold_percent": threshold,
                "crossed": percent > threshold,
                **capture_labels(context),
            }
            if result["crossed"]:
                alert(
                    f"Free tier usage at {percent}% (threshold {threshold}%)",
                    f"Workers AI neurons used today: {used} of {limit}",
                    "warning",
                    ["resource_exhaustion"],
                )
            return result

        free_tier()

    # ---- 2. Log review for the run's window (guide: 2. Log Review) ----------------------------
    with TaskGroup("log_review", tooltip="Error rate, p95, failed auth, rate limits for the window"):

        @task
        def run_window(**context) -> dict:
            """The run's data interval, in the forms the other tasks bind."""
            start, end = window(context)
            return {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "start_sql": sql_time(start),
                "end_sql": sql_time(end),
                "period": _day(context).strftime("%Y%m%d"),
            }

        @task
        def traffic(**context) -> dict:
            """The Worker's requests, errors and wall-time quantiles in the window (GraphQL Analytics)."""
            from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook

            start, end = window(context)
            return WorkersAnalyticsHook().worker_traffic(runtime_config()["cloudflare"]["worker_name"], start, end)

        security = D1SqlOperator(
            task_id="security_events",
            sql="reports/security_events.sql",
            database=CF % "d1_database",
            parameters=[
                "{{ ti.xcom_pull(task_ids='log_review.run_window')['start_sql'] }}",
                "{{ ti.xcom_pull(task_ids='log_review.run_window')['end_sql'] }}",
            ],
            doc_md="Security events by type in the window (D1 `security_events`).",
        )

        @task
        def review(traffic: dict, security: dict, **context) -> dict:
            """Compare the window's figures with the thresholds, publish the report, alert on each
            threshold crossed."""
            from prism.monitoring.log_review import report_sections
            from prism.monitoring.log_review import review as review_window
            from prism.monitoring.troubleshooting import FOR_METRIC, alert
            from prism.reports.markdown import markdown, publish_report, report_key

            config = runtime_config()
            start, end = window(context)
            events = {row["type"]: row["events"] for row in security.get("rows", [])}
            result = review_window(traffic, events, config["thresholds"], start, end)
            period = _day(context).strftime("%Y%m%d")
            text = markdown(f"PRISM daily log review {period}", (start, end), report_sections(result, traffic))
            result["report"] = publish_report(
                config["backups"]["bucket"], report_key(DAG_ID, "log_review", period), text
            )
            for check in result["checks"]:
                if check["crossed"]:  # with the findings of the guide's matching troubleshooting
                    alert(
                        f"Daily log review {period}: {check['metric']} is {check['value']}, threshold {check['threshold']}",
                        f"window {start.isoformat()} to {end.isoformat()}; report {result['report']}",
                        "warning",
                        [FOR_METRIC[check["metric"]]] if check["metric"] in FOR_METRIC else [],
                    )
            return result

        win = run_window()
        win >> security
        review(traffic(), security.output)

    # ---- 3. Resource usage (guide: 3. Resource Usage Check) ------------------------------------
    with TaskGroup("resource_usage", tooltip="D1 info, KV namespaces, Vectorize indexes, latest deployment"):

        @task
        def summary(**context) -> dict:
            """`wrangler d1 info`, `kv:namespace list`, `vectorize list` and `deployments list --limit 1`,
            through the API. Live figures, labelled with the logical date and the capture time."""
            from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
            from airflow_provider_cloudflare.hooks.d1 import D1Hook
            from airflow_provider_cloudflare.hooks.kv import KVHook
            from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

            cf = runtime_config()["cloudflare"]
            d1 = D1Hook()
            db = d1.get_database(d1.find_database(cf["d1_database"]))
            vectorize = VectorizeHook()
            deployments = WorkersAnalyticsHook().deployments(cf["worker_name"])
            return {
                "d1": {k: db.get(k) for k in ("name", "uuid", "file_size", "num_tables", "version", "created_at")},
                "kv_namespaces": [{"id": ns["id"], "title": ns["title"]} for ns in KVHook().list_namespaces()],
                "vectorize_indexes": [
                    {"name": ix["name"], **ix.get("config", {}), **vectorize.info(ix["name"])}
                    for ix in vectorize.list_indexes()
                ],
                "latest_deployment": deployments[0] if deployments else None,
                **capture_labels(context),
            }

        summary()

    # ---- 4. Daily backup and retention (guide: Backup Procedures / Automated Daily Backups) ----
    backup = backup_set(
        "daily_backup", "daily", tooltip="D1, Vectorize and KV to daily/YYYYMMDD/, verified by a test restore"
    )

    # all_done: it runs whatever became of the backup; after a failed one it refuses (deletes nothing,
    # says why), which also keeps the run failed: Airflow judges a run by its last tasks.
    @task(task_id="backup_retention", trigger_rule="all_done", pool=DELETES_POOL)
    def retention(params=None, **context) -> dict:
        """Delete complete daily sets older than `backups.daily_retention_days` (from the run's date),
        never the newest verified one, and staging left by interrupted runs. `dry_run` deletes nothing.
        Refuses a window ending in the future; runs only after today's backup proved restorable."""
        from prism.backups.retention import apply_retention, expire_after_good_backup

        backups, dry_run = runtime_config()["backups"], bool((params or {}).get("dry_run"))
        result = expire_after_good_backup(
            context,
            _s3(),
            backups["bucket"],
            "daily",
            "daily_backup",
            window(context)[1],
            backups["daily_retention_days"],
            dry_run=dry_run,
            what="daily and safety backup sets and staging",
        )
        # disaster recovery's safety sets: the same rules, their own window
        result["safety"] = apply_retention(
            _s3(), backups["bucket"], "safety", _day(context), backups["safety_retention_days"], dry_run=dry_run
        )
        return result

    backup >> retention()

    # ---- 5. Log rotation in the bucket (guide: Log Rotation / Application Logs) ----------------
    with TaskGroup("log_rotation", tooltip="gzip logs/*.log into logs/archive/, delete old archives"):

        @task(pool=DELETES_POOL)
        def archive_logs(**context) -> dict:
            """Gzip each `logs/**.log` last modified more than `retention.log_gzip_after_days` before the
            window end into `logs/archive/<name>.gz`, verify the archive, then delete the original."""
            from prism.backups.deletion_guard import refuse_future_window
            from prism.maintenance.log_rotation import archive_logs as archive

            refuse_future_window("or archive logs", window(context)[1])
            config = runtime_config()
            cutoff = window(context)[1] - timedelta(days=config["retention"]["log_gzip_after_days"])
            return archive(_s3(), config["backups"]["bucket"], cutoff)

        @task(pool=DELETES_POOL)
        def delete_old_archives(**context) -> dict:
            """Delete `logs/archive/*.gz` whose log was last modified more than
            `retention.log_archive_delete_after_days` before the window end."""
            from prism.backups.deletion_guard import refuse_future_window
            from prism.maintenance.log_rotation import delete_old_archives as delete_old

            refuse_future_window("log archives", window(context)[1])
            config = runtime_config()
            cutoff = window(context)[1] - timedelta(days=config["retention"]["log_archive_delete_after_days"])
            return delete_old(_s3(), config["backups"]["bucket"], cutoff)

        archive_logs() >> delete_old_archives()
