"""prism_daily end to end against a private seeded localflare and the S3 stand-in.

Each test gets its own bucket (the config's `backups.bucket`, overridden through the `prism_config`
Variable), so retention and log rotation never touch objects of other tests. Tests about one group
run the whole DAG with the other tasks marked successful (`mark_success_pattern`), which is fast.
Only the end-to-end run uses a private localflare; the others only read Cloudflare (the shared `cf`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from dagtest import load_dag, run_only, states, xcom

from prism.reports.markdown import number

BACKUP_FILES = ("d1.sql.gz", "vectors.ndjson.gz", "kv.ndjson.gz")


@pytest.fixture(scope="module")
def dag():
    return load_dag("prism_daily")


def last_nine_utc() -> datetime:
    """The most recent 09:00 UTC: a scheduled run's logical date whose window has fully ended."""
    now = datetime.now(timezone.utc)
    nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
    return nine if nine <= now else nine - timedelta(days=1)


def put(s3, bucket: str, key: str, body: bytes = b"x", metadata: dict | None = None) -> None:
    s3.get_conn().put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})


def seed_backup(s3, bucket: str, day, status: str | None = "verified", cadence: str = "daily") -> str:
    """A backup set as the bucket would hold it: objects, and a manifest unless `status` is None."""
    period = f"{day:%Y%m%d}" if cadence == "daily" else f"{day:%Y%m}"
    prefix = f"{cadence}/{period}/"
    for name in BACKUP_FILES:
        put(s3, bucket, prefix + name, b"fake " + name.encode())
    if status:
        manifest = {
            "format_version": 1,
            "cadence": cadence,
            "period": period,
            "objects": [],
            "verification": {"status": status},
        }
        put(s3, bucket, prefix + "manifest.json", json.dumps(manifest).encode())
    return prefix


def prefixes(s3, bucket: str) -> set[str]:
    return set(s3.list_prefixes(bucket, prefix="daily/", delimiter="/") or [])


class RunXCom:
    """What a task's `ti.xcom_pull` answers, read from a finished run's real XComs."""

    def __init__(self, run):
        self.run = run

    def xcom_pull(self, task_ids: str):
        return xcom(self.run, task_ids)


# A run whose backup verified (its verify task's XCom), for calling retention as it runs then.
VERIFIED_TODAY = SimpleNamespace(
    xcom_pull=lambda task_ids: {"status": "verified"} if task_ids == "daily_backup.verify" else None
)


def manual_context(dag, logical: datetime, ti=None, **extra) -> dict:
    """A manual run's context for the window ending at `logical` (as dag.test() makes it)."""
    run = SimpleNamespace(run_type="manual", logical_date=logical, run_after=logical)
    return {
        "dag_run": run,
        "data_interval_start": logical - timedelta(days=1),
        "data_interval_end": logical,
        "params": {"dry_run": False},
        "dag": dag,
        "ti": ti,
        "run_id": "manual__test",
        **extra,
    }


# ---------------------------------------------------------------------------------------------
def test_daily_run_end_to_end(server, s3, bucket, airflow_db, dag, alerts):
    from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    logical = last_nine_utc()
    day = logical.date()
    old = [seed_backup(s3, bucket, day - timedelta(days=n)) for n in (31, 45)]  # past retention, complete
    kept = [seed_backup(s3, bucket, day - timedelta(days=n)) for n in (1, 30)]  # inside retention
    partial = seed_backup(s3, bucket, day - timedelta(days=60), status=None)  # old, no manifest: incomplete
    put(s3, bucket, "daily/not-a-date/readme.txt")
    put(s3, bucket, "logs/fresh.log", b"just written\n")  # modified now: younger than 7 days, stays

    run = dag.test(logical_date=logical)
    assert run.state == "success", states(run)
    assert set(states(run).values()) == {"success"}, states(run)
    start, end = logical - timedelta(days=1), logical

    # health check: the live figures, with capture labels
    services = xcom(run, "health_check.services")
    assert all(v["ok"] for v in services.values()) and set(services) == {"worker", "d1", "vectorize"}
    vectors = VectorizeHook().info(server.index_name)["vectorCount"]
    assert f"{vectors} vectors" in services["vectorize"]["detail"]
    free = xcom(run, "health_check.free_tier")
    assert free["neurons_limit"] > 0
    assert free["usage_percent"] == round(100 * free["neurons_used"] / free["neurons_limit"], 2)
    assert free["crossed"] is False and free["in_backfill"] is False and free["logical_date"] == end.isoformat()

    # log review: the same figures as the analytics hook and D1 give for the same window
    review = xcom(run, "log_review.review")
    traffic = WorkersAnalyticsHook().worker_traffic("claudes-friend", start, end)
    assert traffic["requests"] > 0
    assert (review["requests"], review["errors"], review["error_rate_percent"], review["p95_ms"]) == (
        traffic["requests"],
        traffic["errors"],
        traffic["error_rate_percent"],
        traffic["wall_time_ms"]["p95"],
    )
    d1 = D1Hook()
    db = d1.find_database("claudes-friend-db")
    bounds = [start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S")]
    counted = {
        r["type"]: r["n"]
        for r in d1.rows(
            db,
            "SELECT type, COUNT(*) AS n FROM security_events WHERE created_at >= ? AND created_at < ? GROUP BY type",
            bounds,
        )
    }
    assert review["security_events"] == counted
    assert review["failed_auth"] == sum(counted.get(t, 0) for t in ("failed_login", "unauthorized", "forbidden"))
    assert review["rate_limited"] == counted.get("rate_limited", 0)
    assert not any(c["crossed"] for c in review["checks"])
    report_key = f"reports/prism_daily/{day:%Y%m%d}/log_review.md"
    assert review["report"] == f"s3://{bucket}/{report_key}"
    report = s3.read_key(report_key, bucket)
    assert f"Window: {start.isoformat()} to {end.isoformat()}" in report
    assert f"| error rate (%) | {number(traffic['error_rate_percent'])} | 0.5 | ok |" in report  # as people read it
    assert f"- requests: {number(traffic['requests'])}" in report and "{'" not in report  # no Python reprs

    # resource usage: live, labelled
    usage = xcom(run, "resource_usage.summary")
    info = d1.get_database(db)
    assert usage["d1"]["file_size"] == info["file_size"] and usage["d1"]["num_tables"] == info["num_tables"]
    assert "prism-cache" in [ns["title"] for ns in usage["kv_namespaces"]]
    assert [(ix["name"], ix["vectorCount"]) for ix in usage["vectorize_indexes"]] == [(server.index_name, vectors)]
    assert usage["latest_deployment"]["id"]
    assert usage["logical_date"] == end.isoformat() and "captured_at" in usage

    # backup: staged, promoted with a manifest, verified by a test restore, staging and scratch gone
    prefix = f"daily/{day:%Y%m%d}/"
    manifest = json.loads(s3.read_key(prefix + "manifest.json", bucket))
    assert manifest["verification"]["status"] == "verified", manifest["verification"]
    assert manifest["logical_date"] == end.isoformat() and manifest["in_backfill"] is False
    assert manifest["vectorize"]["vector_count"] == vectors and manifest["vectorize"]["dimensions"] == 384
    assert manifest["d1"]["export_mode"] == "logical" and "virtual table" in manifest["d1"]["fallback_reason"].lower()
    assert manifest["d1"]["time_travel_bookmark"]
    for obj in manifest["objects"]:
        body = s3.get_key(prefix + obj["key"], bucket).get()["Body"].read()
        assert (len(body), hashlib.sha256(body).hexdigest()) == (obj["bytes"], obj["sha256"])
    assert {o["key"] for o in manifest["objects"]} == set(BACKUP_FILES)
    assert not s3.list_keys(bucket, prefix="staging/")
    assert xcom(run, "daily_backup.drop_scratch") == []  # verify deleted its scratch resources itself
    assert not [db for db in d1.list_databases() if db["name"].startswith("prism-verify-")]
    assert s3.check_for_key(f"reports/backups/daily/{day:%Y%m%d}/verification.md", bucket)

    # retention: after today's set was verified (pgBackRest's order), only the old complete backups went
    kept_now = prefixes(s3, bucket)
    assert kept_now == {*kept, partial, prefix, "daily/not-a-date/"}
    ret = xcom(run, "backup_retention")
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert tis["backup_retention"].start_date >= tis["daily_backup.verify"].end_date
    assert ret["after"] == f"this run's backup {prefix} is verified" and ret["newest_verified"] == f"{day:%Y%m%d}"
    assert ret["deleted"] == sorted(old) and ret["not_periods"] == ["daily/not-a-date/"]
    assert ret["old_incomplete"] == [partial.split("/")[1]] and ret["dry_run"] is False
    assert sorted(s3.list_keys(bucket, prefix=kept[0])) == sorted(kept[0] + n for n in (*BACKUP_FILES, "manifest.json"))

    # log rotation: nothing is old enough yet
    assert xcom(run, "log_rotation.archive_logs")["archived"] == 0
    assert xcom(run, "log_rotation.delete_old_archives")["deleted"] == 0
    assert s3.check_for_key("logs/fresh.log", bucket)

    assert alerts == []  # no threshold crossed with the default config


def test_lowered_thresholds_alert(cf, s3, bucket, configure, airflow_db, dag, alerts):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    configure(
        {
            "backups": {"bucket": bucket},
            "thresholds": {
                "error_rate_percent": 0.01,
                "p95_latency_ms": 1,
                "free_tier_usage_percent": 0.001,
                "failed_auth_per_day": 0.001,
                "rate_limited_per_day": 0.001,
            },
        }
    )
    # a window with both failed logins and rate-limit events in it, so every threshold can be crossed
    d1 = D1Hook()
    db = d1.find_database("claudes-friend-db")
    logical = last_nine_utc()
    for _ in range(30):
        bounds = [(logical - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"), logical.strftime("%Y-%m-%d %H:%M:%S")]
        types = {
            r["type"]
            for r in d1.rows(
                db, "SELECT DISTINCT type FROM security_events WHERE created_at >= ? AND created_at < ?", bounds
            )
        }
        if {"failed_login", "rate_limited"} <= types:
            break
        logical -= timedelta(days=1)
    # Today's usage counts only hours that have ended (as Cloudflare's analytics do): in the first hour
    # of a UTC day no neuron is known yet, so the free-tier check has nothing to cross. Its arithmetic
    # is unit-tested in tests/plugins/prism/monitoring/test_daily_checks.py.
    from prism.monitoring.worker import PrismWorkerHook

    used_today = PrismWorkerHook().metrics("24h")["resources"]["neurons_used"] > 0
    run = run_only(dag, r"^health_check\.free_tier$", r"^log_review\.", logical_date=logical)
    assert run.state == "success", states(run)
    review = xcom(run, "log_review.review")
    assert all(c["crossed"] for c in review["checks"]), review["checks"]
    assert xcom(run, "health_check.free_tier")["crossed"] is used_today
    assert len(alerts) == 4 + used_today, alerts
    assert any("Free tier usage at" in a for a in alerts) is used_today
    for metric in ("error rate (%)", "p95 latency (ms)", "failed authentication attempts", "rate-limit violations"):
        assert sum(metric in a.partition("\n")[0] for a in alerts) == 1, (metric, alerts)
    assert all(a.startswith("[PRISM WARNING]") for a in alerts)
    # Each threshold's alert carries the findings of the guide's matching troubleshooting.
    diagnosis = {
        "error rate (%)": "Diagnosis: high error rate",
        "p95 latency (ms)": "Diagnosis: slow performance",
        "rate-limit violations": "Diagnosis: resource exhaustion",
        "Free tier usage at": "Diagnosis: resource exhaustion",
        "failed authentication attempts": None,
    }
    if not used_today:
        del diagnosis["Free tier usage at"]
    for subject, finding in diagnosis.items():
        (text,) = [a for a in alerts if subject in a.partition("\n")[0]]
        assert (finding in text) if finding else ("Diagnosis:" not in text), (subject, text)


def test_a_failed_verification_marks_the_set_fails_the_run_and_drops_the_scratch(
    server, s3, bucket, airflow_db, dag, alerts
):
    """A failed-backup day: retention still runs (all_done), deletes nothing, says why, and the run
    stays failed (Airflow judges a run by its last tasks, and retention now follows the backup)."""
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from prism.refusals import Refused

    logical = last_nine_utc()
    day = logical.date()
    old = [seed_backup(s3, bucket, day - timedelta(days=n)) for n in (45, 31)]  # old enough to go on a good day
    before = set(s3.list_keys(bucket))
    server.add_faults("5xx:route=*/import,count=1000,status=500")  # the scratch import cannot run
    run = run_only(dag, r"^daily_backup\.", r"^backup_retention$", logical_date=logical)
    server.clear_faults()
    assert run.state == "failed", states(run)
    assert states(run)["daily_backup.verify"] == "failed" and states(run)["daily_backup.drop_scratch"] == "success"
    assert states(run)["backup_retention"] == "failed"
    manifest = json.loads(s3.read_key(f"daily/{logical:%Y%m%d}/manifest.json", bucket))
    assert manifest["verification"]["status"] == "failed"
    assert manifest["verification"]["problems"][0].startswith("d1: the test restore failed")
    assert not [db for db in D1Hook().list_databases() if db["name"].startswith("prism-verify-")]
    assert any("FAILED verification" in a for a in alerts)
    # nothing went; only today's (failed) set and its verification report were added
    after = set(s3.list_keys(bucket))
    assert before <= after and set(old) <= prefixes(s3, bucket)
    assert {k for k in after - before if not k.startswith("reports/")} == {
        f"daily/{day:%Y%m%d}/{n}" for n in (*BACKUP_FILES, "manifest.json")
    }
    # why, in the task's own words (its XCom read from this run)
    with pytest.raises(Refused) as refused:
        dag.get_task("backup_retention").python_callable(**manual_context(dag, logical, ti=RunXCom(run)))
    assert str(refused.value) == (
        f"refusing to expire daily backup sets: this run's backup daily/{day:%Y%m%d}/ did not pass verification "
        "(daily_backup.verify failed, was skipped or did not run; its manifest: failed); sets are expired only after "
        "a good backup, so the next run with a verified backup expires them. Nothing was changed."
    )


def test_retention_keeps_the_newest_verified_and_dry_run_deletes_nothing(s3, bucket, airflow_db, dag):
    logical = last_nine_utc()
    day = logical.date()
    oldest = seed_backup(s3, bucket, day - timedelta(days=60))
    newest = seed_backup(s3, bucket, day - timedelta(days=50))  # every verified set is old: the newest stays
    failed = seed_backup(s3, bucket, day - timedelta(days=45), status="failed")  # newer, complete, not verified
    partial = seed_backup(s3, bucket, day - timedelta(days=40), status=None)
    for age in (60, 40):  # disaster recovery's safety sets: the newest stays
        put(
            s3,
            bucket,
            f"safety/{day - timedelta(days=age):%Y%m%d}T101500Z/manifest.json",
            json.dumps({"verification": {"status": "checksummed"}}).encode(),
        )
    # Retention runs only after today's backup verified: the task is called as it runs then.
    retention = dag.get_task("backup_retention").python_callable
    result = retention(**manual_context(dag, logical, ti=VERIFIED_TODAY, params={"dry_run": True}))
    assert result["would_delete"] == [oldest, failed] and result["deleted"] == [] and result["dry_run"] is True
    assert prefixes(s3, bucket) == {oldest, newest, failed, partial}

    result = retention(**manual_context(dag, logical, ti=VERIFIED_TODAY, params={"dry_run": False}))
    assert result["deleted"] == [oldest, failed] and result["kept_beyond_window"] == [newest.split("/")[1]]
    assert prefixes(s3, bucket) == {newest, partial}
    assert result["safety"]["deleted"] == [f"safety/{day - timedelta(days=60):%Y%m%d}T101500Z/"]
    assert s3.list_keys(bucket, prefix="safety/") == [f"safety/{day - timedelta(days=40):%Y%m%d}T101500Z/manifest.json"]


def seed_logs(s3, bucket: str, now: datetime) -> None:
    put(s3, bucket, "logs/fresh.log", b"just written <script>\xc3\xa9\n")
    for name, age in (("recent", 30), ("ancient", 100), ("very-ancient", 150)):
        put(
            s3,
            bucket,
            f"logs/archive/{name}.log.gz",
            gzip.compress(name.encode()),
            {"original-last-modified": (now - timedelta(days=age)).isoformat()},
        )


@pytest.mark.parametrize(
    "days_ago, gone", [(0, {"ancient", "very-ancient"}), (20, {"very-ancient"})], ids=["present", "past"]
)
def test_log_rotation_counts_from_the_window_end(s3, bucket, airflow_db, dag, days_ago, gone):
    """The present run and a run for 20 days ago: archives go by the age of their log at the window
    end (90 days); logs written now are not 7 days old at either window end. (Archiving itself is
    tested with explicit cutoffs in tests/plugins/prism/maintenance/test_log_rotation.py.)"""
    now = datetime.now(timezone.utc)
    seed_logs(s3, bucket, now)
    logical = last_nine_utc() - timedelta(days=days_ago)
    run = run_only(dag, r"^log_rotation\.", logical_date=logical)
    assert run.state == "success", states(run)
    archived, deleted = xcom(run, "log_rotation.archive_logs"), xcom(run, "log_rotation.delete_old_archives")
    assert archived["archived"] == 0 and archived["cutoff"] == (logical - timedelta(days=7)).isoformat()
    assert deleted["keys"] == sorted(f"logs/archive/{n}.log.gz" for n in gone)
    assert deleted["cutoff"] == (logical - timedelta(days=90)).isoformat()
    kept = {"recent", "ancient", "very-ancient"} - gone
    assert set(s3.list_keys(bucket, prefix="logs/")) == {"logs/fresh.log", *(f"logs/archive/{n}.log.gz" for n in kept)}
    # Run again for the same window: nothing left to do.
    run = run_only(dag, r"^log_rotation\.", logical_date=logical)
    assert xcom(run, "log_rotation.delete_old_archives")["deleted"] == 0


# ---- no date in the future deletes anything -------------------------------------------------
@pytest.mark.parametrize("ahead", [timedelta(days=90), timedelta(hours=2), "2099-12-31"])
def test_a_manual_run_dated_in_the_future_deletes_nothing(s3, bucket, airflow_db, dag, ahead):
    """A manual prism_daily run dated in the future: before the fix it deleted every daily and safety
    set but the newest verified one, every log archive and in-flight staging. Now every deleting task
    refuses, naming both dates, and the bucket is unchanged."""
    from prism.refusals import Refused

    now = datetime.now(timezone.utc)
    day = now.date()
    for age in (60, 45, 31, 2, 1):
        seed_backup(s3, bucket, day - timedelta(days=age))
    for age in (40, 3):  # a recovery's undo
        put(
            s3,
            bucket,
            f"safety/{day - timedelta(days=age):%Y%m%d}T101500Z/manifest.json",
            json.dumps({"verification": {"status": "checksummed"}}).encode(),
        )
    put(s3, bucket, f"staging/daily/{day:%Y%m%d}/0123456789/d1.sql.gz")  # in flight
    seed_logs(s3, bucket, now)
    before = set(s3.list_keys(bucket))

    if isinstance(ahead, str):
        logical = datetime.fromisoformat(ahead).replace(hour=9, tzinfo=timezone.utc)
    else:
        logical = (now + ahead).replace(second=0, microsecond=0)
    run = run_only(dag, r"^backup_retention$", r"^log_rotation\.", logical_date=logical)
    assert run.state == "failed", states(run)
    st = states(run)
    assert (st["backup_retention"], st["log_rotation.archive_logs"]) == ("failed", "failed"), st
    assert set(s3.list_keys(bucket)) == before

    # what each task says: both dates, and that nothing changed
    for task_id, what in (
        ("backup_retention", "daily and safety backup sets and staging"),
        ("log_rotation.archive_logs", "or archive logs"),
        ("log_rotation.delete_old_archives", "log archives"),
    ):
        with pytest.raises(Refused) as refused:
            dag.get_task(task_id).python_callable(**manual_context(dag, logical, ti=VERIFIED_TODAY))
        text = str(refused.value)
        assert text.startswith(
            f"refusing to delete {what}: the run's window ends {logical.isoformat()}, after now {day.isoformat()}T"
        ), text
        assert text.endswith(" (+10 min slack). Nothing was changed."), text
    assert set(s3.list_keys(bucket)) == before


def test_a_backup_dated_in_the_future_is_refused(s3, bucket, airflow_db, dag):
    """A backup named after a future date would never be the newest set and never expire: `plan`
    refuses it, naming both dates, before any export starts."""
    logical = (datetime.now(timezone.utc) + timedelta(days=30)).replace(second=0, microsecond=0)
    run = run_only(dag, r"^daily_backup\.", r"^backup_retention$", logical_date=logical)
    st = states(run)
    assert run.state == "failed" and st["daily_backup.plan"] == "failed", st
    assert st["backup_retention"] == "failed", st  # it refuses too: no good backup today, and a future window
    assert st["daily_backup.d1"] == "upstream_failed" and st["daily_backup.finalize"] == "upstream_failed", st
    assert s3.list_keys(bucket) == []


def test_deleting_tasks_share_the_one_slot_pool(dag):
    from prism.settings.pools import DELETES_POOL, pool_definitions

    deleting = {"backup_retention", "log_rotation.archive_logs", "log_rotation.delete_old_archives"}
    assert {t.task_id for t in dag.tasks if t.pool == DELETES_POOL} == deleting
    assert all(dag.get_task(t).pool_slots == 1 for t in deleting)
    assert pool_definitions()[DELETES_POOL]["slots"] == 1  # one at a time, across runs, backfills included
    monthly = load_dag("prism_monthly")
    assert monthly.get_task("day_1.monthly_retention").pool == DELETES_POOL
    weekly = load_dag("prism_weekly")  # its D1 cleanups delete rows by age
    assert {t.task_id for t in weekly.tasks if t.pool == DELETES_POOL} == {
        "cache_cleanup.low_hits",
        "cache_cleanup.expired",
        "database_cleanup.orphan_chunks",
        "database_cleanup.orphan_relationships",
        "database_cleanup.expired_cache",
        "database_cleanup.usage_log",
    }


def test_the_pool_file_imports_into_airflow(airflow_db, tmp_path):
    """`airflow pools import include/pools.json`, as every setup path runs it: both pools, their slots."""
    import os
    import subprocess
    import sys

    from prism.settings.pools import DELETES_POOL, HEAVY_POOL, POOLS_FILE

    env = os.environ.copy()
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "import", str(POOLS_FILE)], env=env, check=True, capture_output=True
    )
    out = tmp_path / "pools.json"
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "export", str(out)], env=env, check=True, capture_output=True
    )
    pools = json.loads(out.read_text())
    assert pools[DELETES_POOL]["slots"] == 1 and pools[HEAVY_POOL]["slots"] == 3


# ---- backfill: point-in-time tasks skip, interval tasks run from the window ------------------
def backfill_context(dag, **extra) -> dict:
    logical = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)
    run = SimpleNamespace(run_type="backfill", logical_date=logical, run_after=logical)
    return {
        "dag_run": run,
        "data_interval_start": logical - timedelta(days=1),
        "data_interval_end": logical,
        "params": {"dry_run": False},
        "dag": dag,
        **extra,
    }


@pytest.mark.parametrize("task_id", ["health_check.free_tier", "daily_backup.plan"])
def test_point_in_time_tasks_skip_in_a_backfill(dag, task_id):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="backfill"):
        dag.get_task(task_id).python_callable(**backfill_context(dag))


def test_health_services_skip_in_a_backfill(dag):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="backfill"):
        dag.get_task("health_check.services").execute(backfill_context(dag))


def test_backup_exports_follow_the_plan_and_retention_follows_the_verified_backup(dag):
    for task_id in ("d1", "vectorize", "kv"):
        task = dag.get_task(f"daily_backup.{task_id}")
        assert task.upstream_task_ids == {"daily_backup.plan"} and task.trigger_rule == "all_success"
    # after verify, whatever became of it: it refuses after a failed backup, which keeps the run failed
    retention = dag.get_task("backup_retention")
    assert retention.upstream_task_ids == {"daily_backup.verify"} and retention.trigger_rule == "all_done"
    assert dag.get_task("daily_backup.drop_scratch").is_teardown
    monthly = load_dag("prism_monthly").get_task("day_1.monthly_retention")
    assert monthly.upstream_task_ids == {"day_1.backup_verification.verify"} and monthly.trigger_rule == "all_done"


def test_retention_in_a_backfill_counts_from_the_window(s3, bucket, dag):
    context = backfill_context(dag)
    day = context["data_interval_end"].date()
    old = seed_backup(s3, bucket, day - timedelta(days=31))
    inside = seed_backup(s3, bucket, day - timedelta(days=30))
    later = seed_backup(s3, bucket, day + timedelta(days=20))  # newer than the window: not this run's business
    result = dag.get_task("backup_retention").python_callable(**context)
    assert result["deleted"] == [old] and result["reference_date"] == day.isoformat()
    assert prefixes(s3, bucket) == {inside, later}


def test_log_review_in_a_backfill_reads_the_window(cf, dag):
    from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook

    context = backfill_context(dag)
    logical = last_nine_utc() - timedelta(days=3)
    context.update(data_interval_start=logical - timedelta(days=1), data_interval_end=logical)
    traffic = dag.get_task("log_review.traffic").python_callable(**context)
    assert traffic == WorkersAnalyticsHook().worker_traffic("claudes-friend", logical - timedelta(days=1), logical)
    assert traffic["requests"] > 0


def test_resource_usage_in_a_backfill_is_labelled(cf, dag):
    context = backfill_context(dag)
    usage = dag.get_task("resource_usage.summary").python_callable(**context)
    assert usage["in_backfill"] is True and usage["logical_date"] == context["data_interval_end"].isoformat()
    assert usage["captured_at"] > usage["logical_date"]  # captured now, not on the logical date
    assert usage["d1"]["name"] == "claudes-friend-db" and usage["d1"]["file_size"] > 0


def test_a_bad_daily_threshold_fails_with_a_clear_message(configure, dag):
    from prism.settings.config import PrismConfigError

    configure({"thresholds": {"failed_auth_per_day": "lots"}})
    traffic = {"requests": 0, "errors": 0, "error_rate_percent": 0.0, "status": {}, "wall_time_ms": {}}
    with pytest.raises(PrismConfigError, match="thresholds.failed_auth_per_day: 'lots' is not of type 'number'"):
        dag.get_task("log_review.review").python_callable(traffic, {"rows": []}, **backfill_context(dag))
