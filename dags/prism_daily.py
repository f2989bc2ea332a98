"""
### PRISM daily maintenance (09:00 UTC)

The guide's *Daily Maintenance Tasks*, its *Automated Daily Backups* and its *Log Rotation*, one
task group per procedure. A run at 09:00 on day D covers the data interval [D-1 09:00, D 09:00).

| group | what | in a backfill |
|---|---|---|
| `health_check` | Worker `/health`, D1 `SELECT 1`, Vectorize query and vector count (`services`); Workers AI neurons used today against `thresholds.free_tier_usage_percent` from the Worker's `/metrics` (`free_tier`) | skipped: they describe the present |
| `log_review` | for the run's window: Worker traffic from GraphQL Analytics (the real mechanism behind the guide's `wrangler tail --since 24h`, which does not exist) and D1 `security_events`; error rate, p95, failed auth and rate-limit violations against the thresholds; Markdown report `reports/prism_daily/YYYYMMDD/log_review.md` | runs for the window |
| `resource_usage` | D1 info (size, tables), KV namespaces, Vectorize indexes with their info, the latest Worker deployment | runs, labelled with the logical date and the capture time |
| `daily_backup` | D1 (`d1.sql.gz`), Vectorize (`vectors.ndjson.gz`) and KV (`kv.ndjson.gz`) to `s3://<backups.bucket>/daily/YYYYMMDD/`, then retention | the exports are skipped (a live export is not the past); retention runs for the window |
| `log_rotation` | application logs in the bucket: `logs/*.log` older than `retention.log_gzip_after_days` gzipped to `logs/archive/`, archives older than `retention.log_archive_delete_after_days` deleted | runs for the window |

**Dates.** YYYYMMDD is the date of the run's logical date, which for this timetable is the end of
its data interval: the 09:00 run on 1 Nov writes `daily/20261101/`, as the guide's `date +%Y%m%d`
at 09:00 would. A manual run without a logical date uses the time it was made to run.

**Thresholds** come from the config (`thresholds.*`, overridable through the `prism_config`
Variable). Crossing one sends an alert (log, Slack, e-mail) and does not fail the run; a check that
cannot be made (Worker down, API error) fails the task, which alerts too. Failed authentication and
rate-limit violations use `thresholds.failed_auth_per_day` and `thresholds.rate_limited_per_day`
(defaults 50 and 50 while the config does not name them), scaled to the window's length.

**Retention** keeps `backups.daily_retention_days` (30) counted back from the run's date: a backup
`daily/YYYYMMDD/` whose date is more than that many days before it is deleted when it is complete
(all three objects). An incomplete prefix is left alone and reported (it may be a backup still being
written), and the newest complete backup is never deleted. The `dry_run` Param lists what would go
and deletes nothing.

**Log rotation** compares against the window end, never now: a log is archived when its
LastModified is more than 7 days before the window end; an archive is deleted when the log it holds
was last modified more than 90 days before the window end (the archive keeps the original's time in
its metadata, as gzip keeps a file's mtime). Each archive is uploaded, read back and compared with
the original (SHA-256 and size) before the original is deleted.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG, CronTriggerTimetable, Param, TaskGroup, TriggerRule, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from prism_cloudflare.config import runtime_config, schedule
from prism_cloudflare.dags import MACROS, SQL_DIR, START, default_args
from prism_cloudflare.operators.backup import D1BackupOperator, KVBackupOperator, VectorizeBackupOperator
from prism_cloudflare.operators.checks import CloudflareHealthCheckOperator
from prism_cloudflare.operators.d1_sql import D1SqlOperator
from prism_cloudflare.runtime import capture_labels, in_backfill, sql_time, window

DAG_ID = "prism_daily"
log = logging.getLogger(__name__)
BACKUP_FILES = ("d1.sql.gz", "vectors.ndjson.gz", "kv.ndjson.gz")
DAILY_PREFIX = "daily/"
LOGS_PREFIX = "logs/"
ARCHIVE_PREFIX = "logs/archive/"
FAILED_AUTH_TYPES = ("failed_login", "unauthorized", "forbidden")
RATE_LIMIT_TYPES = ("rate_limited",)
# Daily thresholds the config file does not name yet; a `thresholds` entry of the same name wins.
DAILY_THRESHOLD_DEFAULTS = {"failed_auth_per_day": 50, "rate_limited_per_day": 50}
CF = "{{ prism().cloudflare.%s }}"
BUCKET = "{{ prism().backups.bucket }}"
BACKUP_PREFIX = "{{ ti.xcom_pull(task_ids='daily_backup.plan')['prefix'] }}"


def _day(context) -> date:
    """The day a run stands for: the date of its logical date (= the end of its data interval)."""
    return window(context)[1].astimezone(timezone.utc).date()


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default")


def retention_plan(backups: dict[str, tuple[date, set[str]]], today: date, keep_days: int) -> dict:
    """Which daily backups go. `backups` maps a prefix to (its date, the names of its objects).
    A backup goes when it is complete and its date is more than `keep_days` before `today`;
    incomplete ones and the newest complete one always stay."""
    complete = {p for p, (_, names) in backups.items() if set(BACKUP_FILES) <= names}
    newest = max(complete, key=lambda p: backups[p][0], default=None)
    old = {p for p, (day, _) in backups.items() if (today - day).days > keep_days}
    delete = sorted(p for p in old & complete if p != newest)
    return {"delete": delete, "keep": sorted(set(backups) - set(delete)), "newest": newest,
            "incomplete": sorted(set(backups) - complete), "old_incomplete": sorted(old - complete)}


def _archive_one(s3, client, bucket: str, obj: dict) -> dict:
    """Gzip one log object into logs/archive/, read the archive back and compare, then delete the log
    unless it was replaced meanwhile (then both stay and the next run archives the new version)."""
    key, modified, etag = obj["Key"], obj["LastModified"], obj["ETag"]
    name = key[len(LOGS_PREFIX):]
    with tempfile.TemporaryDirectory(prefix="prism-log-") as tmp:
        packed, check = Path(tmp) / "log.gz", Path(tmp) / "check.gz"
        digest, size = hashlib.sha256(), 0
        body = client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        with gzip.GzipFile(packed, "wb", mtime=int(modified.timestamp())) as out:  # gzip(1) keeps the mtime
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        # logs/archive/<name>.gz, unless that name holds another log (an earlier rotation of the same
        # name): then the original's time goes into the name. The same log again (a retry) reuses it.
        target = f"{ARCHIVE_PREFIX}{name}.gz"
        existing = s3.head_object(target, bucket)
        if existing and existing.get("Metadata", {}).get("original-sha256") != digest.hexdigest():
            target = f"{ARCHIVE_PREFIX}{name}.{modified.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.gz"
        client.upload_file(str(packed), bucket, target, ExtraArgs={"ContentType": "application/gzip", "Metadata": {
            "original-key": key, "original-last-modified": modified.astimezone(timezone.utc).isoformat(),
            "original-sha256": digest.hexdigest(), "original-bytes": str(size)}})
        client.download_file(bucket, target, str(check))
        again, again_size = hashlib.sha256(), 0
        with gzip.open(check, "rb") as fh:
            while chunk := fh.read(1 << 20):
                again.update(chunk)
                again_size += len(chunk)
        if (again.hexdigest(), again_size) != (digest.hexdigest(), size):
            client.delete_object(Bucket=bucket, Key=target)
            raise AirflowException(f"archive s3://{bucket}/{target} does not match {key}; the log is kept")
        archive_bytes = packed.stat().st_size
    now = s3.head_object(key, bucket)  # None: deleted meanwhile; another ETag: replaced meanwhile
    still = now is not None and now["ETag"] == etag
    if still:
        client.delete_object(Bucket=bucket, Key=key)
    return {"key": key, "archive": target, "bytes": size, "archive_bytes": archive_bytes, "sha256": digest.hexdigest(),
            "last_modified": modified.isoformat(), "original_deleted": still}


with DAG(
    dag_id=DAG_ID,
    schedule=CronTriggerTimetable(schedule(DAG_ID, "0 9 * * *"), timezone="UTC", interval=timedelta(days=1)),
    start_date=START,
    catchup=False,  # missed days are backfilled on purpose (`airflow backfill create`), not by default
    max_active_runs=1,  # retention and log rotation must not race another run
    dagrun_timeout=timedelta(hours=6),
    default_args=default_args(execution_timeout=timedelta(hours=2)),
    user_defined_macros=MACROS,
    template_searchpath=[SQL_DIR],
    params={
        "dry_run": Param(False, type="boolean", title="Dry run of the backup retention",
                         description="List the daily backups retention would delete, and delete nothing."),
    },
    tags=["prism", "maintenance", "daily", "backup"],
    doc_md=__doc__,
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
                   "Skipped inside a backfill.",
        )

        @task
        def free_tier(**context) -> dict:
            """Workers AI neurons used today (UTC) against the daily free-tier limit, from the Worker's
            `/metrics`; alerts above `thresholds.free_tier_usage_percent`. Skipped inside a backfill."""
            from prism_cloudflare.hooks.worker import PrismWorkerHook
            from prism_cloudflare.notifiers import send_alert

            if in_backfill(context):
                raise AirflowSkipException("free-tier usage is today's live figure; skipped inside a backfill")
            resources = PrismWorkerHook().metrics("24h")["resources"]
            used, limit = resources["neurons_used"], resources["neurons_limit"]
            percent = round(100 * used / limit, 2) if limit else 100.0
            threshold = runtime_config()["thresholds"]["free_tier_usage_percent"]
            result = {"neurons_used": used, "neurons_limit": limit, "usage_percent": percent,
                      "threshold_percent": threshold, "crossed": percent > threshold, **capture_labels(context)}
            if result["crossed"]:
                send_alert(f"Free tier usage at {percent}% (threshold {threshold}%)",
                           f"Workers AI neurons used today: {used} of {limit}", severity="warning")
            return result

        free_tier()

    # ---- 2. Log review for the run's window (guide: 2. Log Review) ----------------------------
    with TaskGroup("log_review", tooltip="Error rate, p95, failed auth, rate limits for the window"):

        @task
        def run_window(**context) -> dict:
            """The run's data interval, in the forms the other tasks bind."""
            start, end = window(context)
            return {"start": start.isoformat(), "end": end.isoformat(), "start_sql": sql_time(start),
                    "end_sql": sql_time(end), "period": _day(context).strftime("%Y%m%d")}

        @task
        def traffic(**context) -> dict:
            """The Worker's requests, errors and wall-time quantiles in the window (GraphQL Analytics)."""
            from prism_cloudflare.hooks.analytics import WorkersAnalyticsHook

            start, end = window(context)
            return WorkersAnalyticsHook().worker_traffic(runtime_config()["cloudflare"]["worker_name"], start, end)

        security = D1SqlOperator(
            task_id="security_events",
            sql="reports/security_events.sql",
            database=CF % "d1_database",
            parameters=["{{ ti.xcom_pull(task_ids='log_review.run_window')['start_sql'] }}",
                        "{{ ti.xcom_pull(task_ids='log_review.run_window')['end_sql'] }}"],
            doc_md="Security events by type in the window (D1 `security_events`).",
        )

        @task
        def review(traffic: dict, security: dict, **context) -> dict:
            """Compare the window's figures with the thresholds, publish the report, alert on each
            threshold crossed."""
            from prism_cloudflare.notifiers import send_alert
            from prism_cloudflare.reports import markdown, publish_report, report_key

            config = runtime_config()
            thresholds = {**DAILY_THRESHOLD_DEFAULTS, **config["thresholds"]}
            for name in DAILY_THRESHOLD_DEFAULTS:  # not in the config schema yet, so checked here
                if isinstance(thresholds[name], bool) or not isinstance(thresholds[name], (int, float)) \
                        or thresholds[name] <= 0:
                    raise AirflowException(f"invalid PRISM config: thresholds.{name} must be a number > 0, "
                                           f"not {thresholds[name]!r}")
            start, end = window(context)
            days = (end - start).total_seconds() / 86400
            events = {row["type"]: row["events"] for row in security.get("rows", [])}
            failed_auth = sum(events.get(t, 0) for t in FAILED_AUTH_TYPES)
            rate_limited = sum(events.get(t, 0) for t in RATE_LIMIT_TYPES)
            p95 = traffic["wall_time_ms"].get("p95", 0.0)
            checks = [  # (metric, value, threshold, crossed)
                ("error rate (%)", traffic["error_rate_percent"], thresholds["error_rate_percent"],
                 traffic["error_rate_percent"] >= thresholds["error_rate_percent"]),
                ("p95 latency (ms)", p95, thresholds["p95_latency_ms"], p95 >= thresholds["p95_latency_ms"]),
                ("failed authentication attempts", failed_auth, round(thresholds["failed_auth_per_day"] * days, 2),
                 failed_auth > thresholds["failed_auth_per_day"] * days),
                ("rate-limit violations", rate_limited, round(thresholds["rate_limited_per_day"] * days, 2),
                 rate_limited > thresholds["rate_limited_per_day"] * days),
            ]
            period = _day(context).strftime("%Y%m%d")
            text = markdown(f"PRISM daily log review {period}", (start, end), {
                "Checks": ["| metric | value | threshold | status |", "|---|---|---|---|"]
                          + [f"| {m} | {v} | {t} | {'CROSSED' if c else 'ok'} |" for m, v, t, c in checks],
                "Traffic (GraphQL Analytics)": [f"- requests: {traffic['requests']}", f"- errors: {traffic['errors']}",
                                                f"- by status: {traffic['status']}",
                                                f"- wall time (ms): {traffic['wall_time_ms']}"],
                "Security events (D1)": [f"- {t}: {n}" for t, n in sorted(events.items())] or ["- none"],
            })
            url = publish_report(config["backups"]["bucket"], report_key(DAG_ID, "log_review", period), text)
            for metric, value, threshold, crossed in checks:
                if crossed:
                    send_alert(f"Daily log review {period}: {metric} is {value}, threshold {threshold}",
                               f"window {start.isoformat()} to {end.isoformat()}; report {url}", severity="warning")
            return {"window": {"start": start.isoformat(), "end": end.isoformat()}, "requests": traffic["requests"],
                    "errors": traffic["errors"], "error_rate_percent": traffic["error_rate_percent"], "p95_ms": p95,
                    "failed_auth": failed_auth, "rate_limited": rate_limited, "security_events": events,
                    "checks": [{"metric": m, "value": v, "threshold": t, "crossed": c} for m, v, t, c in checks],
                    "report": url}

        win = run_window()
        win >> security
        review(traffic(), security.output)

    # ---- 3. Resource usage (guide: 3. Resource Usage Check) ------------------------------------
    with TaskGroup("resource_usage", tooltip="D1 info, KV namespaces, Vectorize indexes, latest deployment"):

        @task
        def summary(**context) -> dict:
            """`wrangler d1 info`, `kv:namespace list`, `vectorize list` and `deployments list --limit 1`,
            through the API. Live figures, labelled with the logical date and the capture time."""
            from prism_cloudflare.hooks.analytics import WorkersAnalyticsHook
            from prism_cloudflare.hooks.d1 import D1Hook
            from prism_cloudflare.hooks.kv import KVHook
            from prism_cloudflare.hooks.vectorize import VectorizeHook

            cf = runtime_config()["cloudflare"]
            d1 = D1Hook()
            db = d1.get_database(d1.find_database(cf["d1_database"]))
            vectorize = VectorizeHook()
            deployments = WorkersAnalyticsHook().deployments(cf["worker_name"])
            return {
                "d1": {k: db.get(k) for k in ("name", "uuid", "file_size", "num_tables", "version", "created_at")},
                "kv_namespaces": [{"id": ns["id"], "title": ns["title"]} for ns in KVHook().list_namespaces()],
                "vectorize_indexes": [{"name": ix["name"], **ix.get("config", {}), **vectorize.info(ix["name"])}
                                      for ix in vectorize.list_indexes()],
                "latest_deployment": deployments[0] if deployments else None,
                **capture_labels(context),
            }

        summary()

    # ---- 4. Daily backup and retention (guide: Backup Procedures / Automated Daily Backups) ----
    with TaskGroup("daily_backup", tooltip="D1, Vectorize and KV to daily/YYYYMMDD/, then retention"):

        @task
        def plan(**context) -> dict:
            """Where today's backup goes. A backup is a live export, so inside a backfill it is
            skipped (and the three exports with it) rather than filed under a past date."""
            if in_backfill(context):
                raise AirflowSkipException("a backup exports the data as it is now; it cannot stand for a past "
                                           "date, so it is skipped inside a backfill")
            day = _day(context).strftime("%Y%m%d")
            return {"bucket": runtime_config()["backups"]["bucket"], "date": day, "prefix": f"{DAILY_PREFIX}{day}/"}

        exports = [
            D1BackupOperator(task_id="d1", database=CF % "d1_database", mode="auto", bucket=BUCKET,
                             key=BACKUP_PREFIX + "d1.sql.gz"),
            VectorizeBackupOperator(task_id="vectorize", index=CF % "vectorize_index", bucket=BUCKET,
                                    key=BACKUP_PREFIX + "vectors.ndjson.gz"),
            KVBackupOperator(task_id="kv", namespace=CF % "kv_namespace", bucket=BUCKET,
                             key=BACKUP_PREFIX + "kv.ndjson.gz"),
        ]

        @task(trigger_rule=TriggerRule.NONE_FAILED)
        def retention(params=None, **context) -> dict:
            """Delete complete daily backups older than `backups.daily_retention_days`, counted from the
            run's date; never the newest complete one, never an incomplete one. `dry_run` deletes nothing."""
            config = runtime_config()
            bucket, keep_days = config["backups"]["bucket"], config["backups"]["daily_retention_days"]
            dry_run = bool((params or {}).get("dry_run"))
            s3 = _s3()
            backups, ignored = {}, []
            for prefix in s3.list_prefixes(bucket, prefix=DAILY_PREFIX, delimiter="/") or []:
                name = prefix[len(DAILY_PREFIX):].rstrip("/")
                try:
                    day = datetime.strptime(name, "%Y%m%d").date() if re.fullmatch(r"\d{8}", name) else None
                except ValueError:
                    day = None
                if day is None:
                    ignored.append(prefix)
                    continue
                backups[prefix] = (day, {k[len(prefix):] for k in s3.list_keys(bucket, prefix=prefix)})
            today = _day(context)
            result = retention_plan(backups, today, keep_days)
            for prefix in result["old_incomplete"]:
                log.warning("s3://%s/%s is older than %d days but incomplete: left for a person to check",
                                bucket, prefix, keep_days)
            for prefix in result["delete"]:
                keys = [f"{prefix}{name}" for name in sorted(backups[prefix][1])]
                if dry_run:
                    log.info("dry run: would delete s3://%s/%s (%d objects)", bucket, prefix, len(keys))
                else:
                    s3.delete_objects(bucket, keys)
                    log.info("deleted s3://%s/%s (%d objects)", bucket, prefix, len(keys))
            return {**result, "dry_run": dry_run, "deleted": [] if dry_run else result["delete"],
                    "would_delete": result["delete"] if dry_run else [], "ignored": ignored,
                    "reference_date": today.isoformat(), "keep_days": keep_days}

        plan() >> exports >> retention()

    # ---- 5. Log rotation in the bucket (guide: Log Rotation / Application Logs) ----------------
    with TaskGroup("log_rotation", tooltip="gzip logs/*.log into logs/archive/, delete old archives"):

        @task
        def archive_logs(**context) -> dict:
            """Gzip each `logs/**.log` last modified more than `retention.log_gzip_after_days` before the
            window end into `logs/archive/<name>.gz`, verify the archive, then delete the original."""
            config = runtime_config()
            bucket = config["backups"]["bucket"]
            cutoff = window(context)[1] - timedelta(days=config["retention"]["log_gzip_after_days"])
            s3 = _s3()
            client = s3.get_conn()
            due = [obj for obj in s3.iter_file_metadata(LOGS_PREFIX, bucket)  # listed first: archiving adds keys
                   if obj["Key"].endswith(".log") and not obj["Key"].startswith(ARCHIVE_PREFIX)
                   and obj["LastModified"] < cutoff]
            archived, kept_changed = [], []
            for obj in due:
                entry = _archive_one(s3, client, bucket, obj)
                (archived if entry["original_deleted"] else kept_changed).append(entry)
            return {"cutoff": cutoff.isoformat(), "archived": len(archived), "objects": archived[:100],
                    "changed_during_archive": kept_changed,
                    "bytes_in": sum(e["bytes"] for e in archived), "bytes_out": sum(e["archive_bytes"] for e in archived)}

        @task
        def delete_old_archives(**context) -> dict:
            """Delete `logs/archive/*.gz` whose log was last modified more than
            `retention.log_archive_delete_after_days` before the window end."""
            config = runtime_config()
            bucket = config["backups"]["bucket"]
            cutoff = window(context)[1] - timedelta(days=config["retention"]["log_archive_delete_after_days"])
            s3 = _s3()
            client = s3.get_conn()
            doomed = []
            for obj in s3.iter_file_metadata(ARCHIVE_PREFIX, bucket):
                if not obj["Key"].endswith(".gz"):
                    continue
                when = obj["LastModified"]  # an archive is never older than the log it holds
                if when >= cutoff:
                    meta = client.head_object(Bucket=bucket, Key=obj["Key"]).get("Metadata", {})
                    if "original-last-modified" in meta:
                        when = datetime.fromisoformat(meta["original-last-modified"])
                if when < cutoff:
                    doomed.append(obj["Key"])
            if doomed:
                s3.delete_objects(bucket, doomed)
            return {"cutoff": cutoff.isoformat(), "deleted": len(doomed), "keys": doomed[:100]}

        archive_logs() >> delete_old_archives()

