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

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, TaskGroup, task

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.alerts import PrismAlertNotifier
from prism.backups.retention import daily_retention
from prism.backups.tasks import backup_set
from prism.dag_factory import prism_dag
from prism.maintenance.log_rotation import archive_logs_due, delete_archives_due
from prism.monitoring.daily_checks import free_tier_usage, resource_summary
from prism.monitoring.health import CloudflareHealthCheckOperator
from prism.monitoring.log_review import review_and_report, window_bounds, window_traffic
from prism.settings.config import schedule
from prism.settings.pools import DELETES_POOL

DAG_ID = "prism_daily"
CF = "{{ prism().cloudflare.%s }}"


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
        task(free_tier_usage, task_id="free_tier")()

    # ---- 2. Log review for the run's window (guide: 2. Log Review) ----------------------------
    with TaskGroup("log_review", tooltip="Error rate, p95, failed auth, rate limits for the window"):
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
        task(window_bounds, task_id="run_window")() >> security
        traffic = task(window_traffic, task_id="traffic")()
        task(review_and_report, task_id="review")(traffic, security.output)

    # ---- 3. Resource usage (guide: 3. Resource Usage Check) ------------------------------------
    with TaskGroup("resource_usage", tooltip="D1 info, KV namespaces, Vectorize indexes, latest deployment"):
        task(resource_summary, task_id="summary")()

    # ---- 4. Daily backup and retention (guide: Backup Procedures / Automated Daily Backups) ----
    backup = backup_set(
        "daily_backup", "daily", tooltip="D1, Vectorize and KV to daily/YYYYMMDD/, verified by a test restore"
    )

    # all_done: it runs whatever became of the backup; after a failed one it refuses (deletes nothing,
    # says why), which also keeps the run failed: Airflow judges a run by its last tasks.
    backup >> task(daily_retention, task_id="backup_retention", trigger_rule="all_done", pool=DELETES_POOL)()

    # ---- 5. Log rotation in the bucket (guide: Log Rotation / Application Logs) ----------------
    with TaskGroup("log_rotation", tooltip="gzip logs/*.log into logs/archive/, delete old archives"):
        archive = task(archive_logs_due, task_id="archive_logs", pool=DELETES_POOL)()
        archive >> task(delete_archives_due, task_id="delete_old_archives", pool=DELETES_POOL)()
