"""The bundle on Airflow's distributed engine: CeleryExecutor on Redis, metadata in PostgreSQL, and the
api-server, scheduler, dag-processor, triggerer and a Celery worker as separate processes (see
scripts/e2e_stack.py), against localflare and the S3 stand-in.

The tests run in this order and share one deployment:

1. UI trigger: `prism_daily` and `prism_disaster_recovery` (Params) through the REST API v2 as the web
   UI calls it; both succeed and their effects are checked; bad Params are refused, nothing changes.
2. Schedule: `prism_health_monitor`, shortened to every minute by PRISM_SCHEDULES (config, not code),
   is run by the scheduler on that schedule; unpaused `prism_daily` gets its latest 09:00 run.
3. Backfill after an outage: `airflow backfill create` over missed days for `prism_daily` and
   `prism_weekly`, then again with reprocessing: idempotent.
4. A worker dies mid-backup: the Celery worker is killed while `daily_backup.vectorize` runs and
   started again; the task retries and the set completes; no half set is ever visible as complete.
5. Clean shutdown: only our processes are stopped; PostgreSQL and Redis keep running, without our
   database and keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest
from e2e import (
    Cloudflare,
    assert_success,
    backfill,
    exists,
    explain,
    latest_tick,
    objects,
    read,
    run_path,
    runs,
    states,
    task_instances,
    trigger,
    unpause,
    utc,
    wait_for_backfills,
    wait_for_run,
    window_line,
    xcom,
)

ROOT = Path(__file__).resolve().parents[2]
DAILY, WEEKLY, DR, MONITOR = "prism_daily", "prism_weekly", "prism_disaster_recovery", "prism_health_monitor"
CONFIG = json.loads((ROOT / "include" / "prism.config.json").read_text())


def now() -> datetime:
    return datetime.now(timezone.utc)


def sql_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def check_backup_set(s3, cadence_period: str, run_id: str) -> dict:
    """The set under `daily/<period>/` is complete: a verified manifest written by `run_id`, every
    object it lists present with its size and sha256."""
    manifest = json.loads(read(s3, f"{cadence_period}/manifest.json"))
    assert manifest["verification"]["status"] == "verified", manifest["verification"]
    assert manifest["sources"]["dag_run"] == run_id
    assert {o["kind"] for o in manifest["objects"]} == {"d1", "vectorize", "kv"}
    for obj in manifest["objects"]:
        body = read(s3, f"{cadence_period}/{obj['key']}")
        assert (len(body), hashlib.sha256(body).hexdigest()) == (obj["bytes"], obj["sha256"]), obj["key"]
    return manifest


# ---- 1. UI trigger ----------------------------------------------------------------------------


def test_ui_trigger_prism_daily(stack, facts):
    """The UI's toggle (unpause) and trigger button for prism_daily; the run backs up, verifies,
    reviews the logs and checks the resources, all through the Celery worker."""
    s3, cf = stack.s3_client(), Cloudflare(stack.lf)
    unpause(stack, DAILY)
    facts["daily_unpaused_at"] = now()
    resp = trigger(stack, DAILY, now(), {"dry_run": False})
    assert resp.status_code == 200, resp.text
    run = resp.json()
    assert (run["run_type"], run["triggered_by"], run["conf"]) == ("manual", "ui", {"dry_run": False})
    run = wait_for_run(stack, DAILY, run["dag_run_id"], timeout=420)
    assert_success(stack, run)
    run_id, period = run["dag_run_id"], utc(run["data_interval_end"]).strftime("%Y%m%d")

    assert set(states(stack, DAILY, run_id).values()) == {"success"}
    manifest = check_backup_set(s3, f"daily/{period}", run_id)
    assert manifest["vectorize"]["vector_count"] == cf.vector_count()
    assert manifest["kv"]["key_count"] > 0 and manifest["d1"]["tables"]["documents"] > 0
    assert "Status: **verified**" in read(s3, f"reports/backups/daily/{period}/verification.md").decode()
    assert cf.scratch_resources() == []  # the test restore's scratch database and index are gone
    review = read(s3, f"reports/prism_daily/{period}/log_review.md").decode()
    assert window_line(review) == (
        f"Window: {utc(run['data_interval_start']).isoformat()} to {utc(run['data_interval_end']).isoformat()} (UTC)"
    )
    summary = xcom(stack, DAILY, run_id, "resource_usage.summary")
    assert summary["in_backfill"] is False and summary["d1"]["name"] == CONFIG["cloudflare"]["d1_database"]
    assert xcom(stack, DAILY, run_id, "health_check.free_tier")["neurons_limit"] > 0
    facts["daily_period"] = period


# ---- 2. Schedule --------------------------------------------------------------------------------


def test_schedule_from_config(stack, facts):
    """prism_health_monitor's schedule comes from PRISM_SCHEDULES (every minute instead of the
    code's every five minutes); the scheduler runs the unpaused DAG on it, run after run."""
    sys.path.insert(0, str(ROOT / "plugins"))
    from prism.settings.config import schedule

    saved = os.environ.pop("PRISM_SCHEDULES", None)
    try:
        assert schedule(MONITOR, "*/5 * * * *") == "*/5 * * * *"  # what the code and the file say
    finally:
        if saved is not None:
            os.environ["PRISM_SCHEDULES"] = saved
    details = stack.get(f"/dags/{MONITOR}/details").json()
    assert details["timetable_summary"] == "* * * * *", details["timetable_summary"]

    deadline = time.monotonic() + 200
    while True:
        scheduled = runs(stack, MONITOR, run_type=["scheduled"])
        succeeded = [r for r in scheduled if r["state"] == "success"]
        if len(succeeded) >= 2:
            break
        assert time.monotonic() < deadline, f"scheduled runs of {MONITOR}: {scheduled}"
        time.sleep(3)
    unpause(stack, MONITOR, paused=True)  # the later scenarios kill workers and restore data
    ticks = sorted(utc(r["logical_date"]) for r in scheduled)
    assert all(t.second == 0 and t.microsecond == 0 for t in ticks)
    steps = [b - a for a, b in zip(ticks, ticks[1:])]
    # every minute (a busy scheduler may skip a tick: no catchup, one run at a time)
    assert timedelta(minutes=1) in steps and all(step % timedelta(minutes=1) == timedelta(0) for step in steps), ticks
    assert all(r["triggered_by"] == "timetable" and utc(r["run_after"]) == utc(r["logical_date"]) for r in scheduled)
    assert all(set(states(stack, MONITOR, r["dag_run_id"]).values()) == {"success"} for r in succeeded)

    # prism_daily keeps its default schedule (09:00 UTC): unpaused, the scheduler ran its latest interval.
    # (With a CronTriggerTimetable and an interval, Airflow's logical_date is the interval's start; the
    # run is made at its end, run_after, which is the date the bundle files the run's results under.)
    daily = runs(stack, DAILY, run_type=["scheduled"])
    assert [utc(r["run_after"]) for r in daily] == [latest_tick(facts["daily_unpaused_at"], 9)], daily
    assert daily[0]["state"] == "success", explain(stack, DAILY, daily[0]["dag_run_id"])
    assert utc(daily[0]["data_interval_end"]) == utc(daily[0]["run_after"])
    assert utc(daily[0]["data_interval_end"]) - utc(daily[0]["data_interval_start"]) == timedelta(days=1)


# ---- 1 (continued). A manual DAG with Params ---------------------------------------------------


def test_ui_trigger_disaster_recovery_with_params(stack, facts):
    """The Param form of prism_disaster_recovery: restore everything from the set the UI run wrote."""
    s3, cf = stack.s3_client(), Cloudflare(stack.lf)
    period = facts["daily_period"]
    manifest = json.loads(read(s3, f"daily/{period}/manifest.json"))
    # Damage for the restore to repair: rows gone from a table, a KV key gone.
    intact = cf.snapshot()
    cf.query("DELETE FROM query_log WHERE rowid IN (SELECT rowid FROM query_log ORDER BY rowid LIMIT 10)")
    cf.api.delete(
        f"/accounts/{{acct}}/storage/kv/namespaces/{stack.lf.kv_id}/values/config%3Afeature-flags"
    ).raise_for_status()
    damaged = cf.snapshot()
    assert damaged["tables"]["query_log"] == intact["tables"]["query_log"] - 10
    assert damaged["kv_keys"] == intact["kv_keys"] - 1
    unpause(stack, DR)
    conf = {
        "source": "s3",
        "backup_date": period,
        "timestamp": None,
        "targets": ["d1", "vectorize", "kv"],
        "confirm": "RESTORE",
    }
    resp = trigger(stack, DR, None, conf)
    assert resp.status_code == 200, resp.text
    run = wait_for_run(stack, DR, resp.json()["dag_run_id"], timeout=420)
    assert_success(stack, run)
    run_id = run["dag_run_id"]

    result = xcom(stack, DR, run_id, "verify")
    assert result["worker_health"]["status"] == "healthy"
    assert {t: result["d1_tables"][t] for t in manifest["d1"]["tables"]} == manifest["d1"]["tables"]
    live = cf.snapshot()
    assert {t: live["tables"][t] for t in manifest["d1"]["tables"]} == manifest["d1"]["tables"]
    assert live["vectors"] == result["vectors"] == manifest["vectorize"]["vector_count"]
    assert live["kv_keys"] == result["kv_keys"] == intact["kv_keys"]
    # the undo: a safety set of the state before the restore, complete
    undo = result["undo"].removeprefix("safety-")
    safety = json.loads(read(s3, f"safety/{undo}/manifest.json"))
    assert {o["kind"] for o in safety["objects"]} == {"d1", "vectorize", "kv"}
    report = read(s3, result["report"].split(f"s3://{CONFIG['backups']['bucket']}/", 1)[1]).decode()
    assert f"safety-{undo}" in report
    facts["after_restore"] = live


def test_ui_trigger_rejects_bad_params(stack, facts):
    """A backup date in the wrong form is refused by the Param schema when the run is triggered
    (HTTP 400 with the field, the value and the rule), and nothing runs or changes."""
    s3, cf = stack.s3_client(), Cloudflare(stack.lf)
    before = {"runs": [r["dag_run_id"] for r in runs(stack, DR)], "bucket": objects(s3), "data": cf.snapshot()}
    resp = trigger(stack, DR, None, {"source": "s3", "backup_date": "2026-11-28", "confirm": "RESTORE"})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "Invalid input for param backup_date" in detail and "'2026-11-28' does not match" in detail, detail
    time.sleep(5)  # long enough for a scheduler loop to start anything that had been created
    assert [r["dag_run_id"] for r in runs(stack, DR)] == before["runs"]
    assert objects(s3) == before["bucket"]
    assert cf.snapshot() == before["data"]


# ---- 3. Backfill after an outage ---------------------------------------------------------------


def expected_weekly(cf: Cloudflare, windows: list[tuple[datetime, datetime]]) -> list[dict]:
    """What each weekly run must find and delete, worked out from the data before the backfill, in
    the order the runs go (oldest first: a week deletes only what the weeks before it left)."""
    retention = CONFIG["retention"]
    cache = {r["key"]: r for r in cf.query("SELECT key, hit_count, created_at, expires_at FROM cache_metadata")}
    usage = {r["id"]: r["date"] for r in cf.query("SELECT rowid AS id, date FROM usage_log")}
    orphans = cf.query("SELECT id, vector_id FROM document_chunks WHERE document_id NOT IN (SELECT id FROM documents)")
    orphan_relationships = cf.scalar(
        "SELECT COUNT(*) FROM document_relationships WHERE source_document_id NOT IN (SELECT id FROM documents) "
        "OR target_document_id NOT IN (SELECT id FROM documents)"
    )
    out = []
    for i, (start, end) in enumerate(windows):
        created_before = sql_time(end - timedelta(days=retention["cache_low_hit_age_days"]))
        low = [
            k
            for k, r in cache.items()
            if r["hit_count"] < retention["cache_low_hit_count"] and r["created_at"] < created_before
        ]
        for k in low:
            del cache[k]
        expired = [k for k, r in cache.items() if r["expires_at"] is not None and r["expires_at"] < sql_time(end)]
        for k in expired:
            del cache[k]
        oldest_kept = (end - timedelta(days=retention["usage_log_days"])).date().isoformat()
        old_usage = [k for k, d in usage.items() if d < oldest_kept]
        for k in old_usage:
            del usage[k]
        first = i == 0
        out.append(
            {
                "cutoffs": {"start": sql_time(start), "end": sql_time(end), "period": end.strftime("%Y%m%d")},
                "new_documents": cf.scalar(
                    "SELECT COUNT(*) FROM documents WHERE created_at >= ? AND created_at < ?",
                    [sql_time(start), sql_time(end)],
                ),
                "cache": {"low_hits": len(low), "expired": len(expired)},
                "database": {
                    "orphan_chunks": len(orphans) if first else 0,
                    "orphan_vectors": len({o["vector_id"] for o in orphans if o["vector_id"]}) if first else 0,
                    "orphan_relationships": orphan_relationships if first else 0,
                    "expired_cache": 0,  # cache_cleanup ran first with the same cutoff
                    "usage_log": len(old_usage),
                },
            }
        )
    return out


def backfill_runs(stack, dag_id: str) -> list[dict]:
    return [r for r in runs(stack, dag_id) if r["run_type"] == "backfill"]


def deleting_spans(stack, dag_ids: list[str]) -> list[tuple]:
    """(start, end, what) of every task instance that ran in the one-slot `prism_deletes` pool, in every
    run of `dag_ids` whatever its type, sorted by start."""
    spans = []
    for dag_id in dag_ids:
        for r in runs(stack, dag_id):
            for ti in task_instances(stack, dag_id, r["dag_run_id"]):
                if ti["pool"] == "prism_deletes" and ti["start_date"] and ti["end_date"]:
                    spans.append(
                        (utc(ti["start_date"]), utc(ti["end_date"]), f"{dag_id} {r['dag_run_id']} {ti['task_id']}")
                    )
    return sorted(spans)


def check_daily_backfill(stack, s3, cf, run: dict, started: datetime) -> dict:
    """One prism_daily backfill run: interval tasks for its window, point-in-time tasks skipped or
    labelled with their capture time, no backup for a past date."""
    run_id = run["dag_run_id"]
    start, end = utc(run["data_interval_start"]), utc(run["data_interval_end"])
    period = end.strftime("%Y%m%d")
    st = states(stack, DAILY, run_id)
    skipped = [
        "health_check.services",
        "health_check.free_tier",
        "daily_backup.plan",
        "daily_backup.d1",
        "daily_backup.vectorize",
        "daily_backup.kv",
        "daily_backup.finalize",
        "daily_backup.verify",
    ]
    ran = [
        "log_review.run_window",
        "log_review.traffic",
        "log_review.security_events",
        "log_review.review",
        "resource_usage.summary",
        "backup_retention",
        "log_rotation.archive_logs",
        "log_rotation.delete_old_archives",
    ]
    assert {t: st[t] for t in skipped} == dict.fromkeys(skipped, "skipped"), st
    assert {t: st[t] for t in ran} == dict.fromkeys(ran, "success"), st
    assert not objects(s3, f"daily/{period}/") and not objects(s3, f"staging/daily/{period}/")

    win = xcom(stack, DAILY, run_id, "log_review.run_window")
    assert (utc(win["start"]), utc(win["end"]), win["period"]) == (start, end, period)
    events = xcom(stack, DAILY, run_id, "log_review.security_events")["rows"]
    expected = cf.query(
        "SELECT type, COUNT(*) AS events, COUNT(DISTINCT ip) AS sources FROM security_events "
        "WHERE created_at >= ? AND created_at < ? GROUP BY type",
        [sql_time(start), sql_time(end)],
    )
    assert sorted(map(json.dumps, events)) == sorted(map(json.dumps, expected))
    report = read(s3, f"reports/prism_daily/{period}/log_review.md").decode()
    assert window_line(report) == f"Window: {start.isoformat()} to {end.isoformat()} (UTC)"

    labels = xcom(stack, DAILY, run_id, "resource_usage.summary")
    assert labels["in_backfill"] is True and utc(labels["logical_date"]) == end
    assert started - timedelta(seconds=5) <= utc(labels["captured_at"]) <= now()
    return {
        "period": period,
        "report": report,
        "events": events,
        "captured_at": labels["captured_at"],
        "try": {ti["task_id"]: ti["try_number"] for ti in task_instances(stack, DAILY, run_id)},
    }


def check_weekly_backfill(stack, s3, run: dict, expected: dict) -> dict:
    run_id = run["dag_run_id"]
    start, end = utc(run["data_interval_start"]), utc(run["data_interval_end"])
    st = states(stack, WEEKLY, run_id)
    for task in (
        "index_update.repos",
        "optimize.live_database",
        "optimize.analyze",
        "optimize.quick_check",
        "optimize.query_plan",
        "optimize.result",
    ):
        assert st[task] == "skipped", (task, st)
    assert not [t for t in st if t.startswith("index_update.update_repo") and st[t] != "skipped"], st
    for task in (
        "cutoffs",
        "index_update.new_documents",
        "index_update.report",
        "cache_cleanup.summary",
        "database_cleanup.orphan_vectors",
        "database_cleanup.changes",
    ):
        assert st[task] == "success", (task, st)
    cutoffs = xcom(stack, WEEKLY, run_id, "cutoffs")
    assert {k: cutoffs[k] for k in ("start", "end", "period")} == expected["cutoffs"]
    assert cutoffs["in_backfill"] is True
    report = xcom(stack, WEEKLY, run_id, "index_update.report")
    assert report["new_documents"] == expected["new_documents"], (report, expected)
    text = read(s3, f"reports/prism_weekly/{expected['cutoffs']['period']}/index_update.md").decode()
    assert window_line(text) == f"Window: {start.isoformat()} to {end.isoformat()} (UTC)"
    assert f"{expected['new_documents']} documents were created in the window." in text
    cache, database = (
        xcom(stack, WEEKLY, run_id, "cache_cleanup.summary"),
        xcom(stack, WEEKLY, run_id, "database_cleanup.changes"),
    )
    return {
        "cache": cache,
        "database": database,
        "text": text,
        "new_documents": report["new_documents"],
        "try": {ti["task_id"]: ti["try_number"] for ti in task_instances(stack, WEEKLY, run_id) if ti["map_index"] < 0},
    }


def test_backfill_after_outage(stack, facts):
    """The deployment was down: prism_daily missed three days and prism_weekly two weeks. An operator
    backfills them with `airflow backfill create`, then runs the same backfill again with reprocessing."""
    s3, cf = stack.s3_client(), Cloudflare(stack.lf)
    started = now()
    daily_latest, weekly_latest = latest_tick(started, 9), latest_tick(started, 2, weekday=6)
    # The ends of the missed intervals (the runs' run_after, as `backfill create` bounds them); the day
    # before the latest is left to the worker test.
    daily_days = [daily_latest - timedelta(days=d) for d in (4, 3, 2)]
    weekly_weeks = [weekly_latest - timedelta(days=7), weekly_latest]
    expected = expected_weekly(cf, [(w - timedelta(days=7), w) for w in weekly_weeks])
    assert expected[0]["database"]["orphan_chunks"] > 0 and expected[0]["database"]["usage_log"] > 0
    assert all(e["new_documents"] > 0 for e in expected)  # the weeks have real work to do

    # prism_weekly is still paused, as during the outage: the backfill is created first and takes in
    # the newest week, so the scheduler has no interval of its own to add when the DAG is unpaused.
    backfill(stack, DAILY, daily_days[0], daily_days[-1])
    backfill(stack, WEEKLY, weekly_weeks[0], weekly_weeks[-1])
    unpause(stack, WEEKLY)
    wait_for_backfills(stack, [DAILY, WEEKLY], timeout=600)

    daily_runs, weekly_runs = backfill_runs(stack, DAILY), backfill_runs(stack, WEEKLY)
    assert [utc(r["data_interval_end"]) for r in daily_runs] == daily_days
    assert [utc(r["data_interval_end"]) for r in weekly_runs] == weekly_weeks
    assert not runs(stack, WEEKLY, run_type=["scheduled"])
    for r, period in [(r, timedelta(days=1)) for r in daily_runs] + [(r, timedelta(days=7)) for r in weekly_runs]:
        assert_success(stack, r)
        assert utc(r["data_interval_end"]) - utc(r["data_interval_start"]) == period
        assert utc(r["run_after"]) == utc(r["data_interval_end"])
    first_daily = [check_daily_backfill(stack, s3, cf, r, started) for r in daily_runs]
    # The backfill runs (and any scheduled run) ran at once, but their deletes took turns: one slot.
    spans = deleting_spans(stack, [DAILY, WEEKLY])
    assert len(spans) >= 3 * len(daily_runs), spans  # retention and both log rotation tasks of every run
    for before, after in zip(spans, spans[1:]):
        assert before[1] <= after[0], f"{before[2]} overlapped {after[2]}"
    first_weekly = [check_weekly_backfill(stack, s3, r, e) for r, e in zip(weekly_runs, expected)]
    for got, want in zip(first_weekly, expected):
        assert (got["cache"], got["database"]) == (want["cache"], want["database"])
    assert [d["period"] for d in first_daily] == [d.strftime("%Y%m%d") for d in daily_days]
    bucket, data = objects(s3), cf.snapshot()
    reports = {k for k in bucket if k.startswith(("reports/prism_daily/", "reports/prism_weekly/"))}
    # Each report is one HTML page and its Markdown twin.
    assert {k for k in reports if k.split("/")[2] in {d["period"] for d in first_daily}} == {
        f"reports/prism_daily/{d['period']}/log_review.{ext}" for d in first_daily for ext in ("md", "html")
    }
    assert {k for k in reports if k.startswith("reports/prism_weekly/")} == {
        f"reports/prism_weekly/{e['cutoffs']['period']}/index_update.{ext}" for e in expected for ext in ("md", "html")
    }

    # The same backfill again, reprocessing the completed runs: the same runs are cleared and run
    # again, and change nothing: no new objects, nothing deleted twice, the same reports.
    rerun_started = now()
    backfill(stack, DAILY, daily_days[0], daily_days[-1], "--reprocess-behavior", "completed")
    backfill(stack, WEEKLY, weekly_weeks[0], weekly_weeks[-1], "--reprocess-behavior", "completed")
    wait_for_backfills(stack, [DAILY, WEEKLY], timeout=600)
    again_daily_runs, again_weekly_runs = backfill_runs(stack, DAILY), backfill_runs(stack, WEEKLY)
    assert [r["dag_run_id"] for r in again_daily_runs] == [r["dag_run_id"] for r in daily_runs]
    assert [r["dag_run_id"] for r in again_weekly_runs] == [r["dag_run_id"] for r in weekly_runs]
    for r in again_daily_runs + again_weekly_runs:
        assert_success(stack, r)
    second_daily = [check_daily_backfill(stack, s3, cf, r, rerun_started) for r in again_daily_runs]
    second_weekly = [check_weekly_backfill(stack, s3, r, e) for r, e in zip(again_weekly_runs, expected)]
    for first, second in zip(first_daily, second_daily):
        assert second["try"]["log_review.review"] == first["try"]["log_review.review"] + 1  # it really ran again
        assert (second["report"], second["events"]) == (first["report"], first["events"])
        assert second["captured_at"] > first["captured_at"]  # live figures say when they were captured
    for first, second in zip(first_weekly, second_weekly):
        assert second["try"]["cutoffs"] == first["try"]["cutoffs"] + 1
        assert (second["text"], second["new_documents"]) == (first["text"], first["new_documents"])
        assert set(second["cache"].values()) == {0} and set(second["database"].values()) == {0}, second
    assert objects(s3) == bucket  # same keys, same contents (ETags)
    assert cf.snapshot() == data
    facts["backfill"] = {
        "daily": [d["period"] for d in first_daily],
        "weekly": [e["cutoffs"]["period"] for e in expected],
    }


# ---- 4. A worker dies mid-backup ---------------------------------------------------------------


class ManifestWatch(threading.Thread):
    """Polls the set's manifest; records when it first appears and whether the set was complete."""

    def __init__(self, stack, prefix: str):
        super().__init__(daemon=True)
        self.s3, self.prefix = stack.s3_client(), prefix
        self.sightings: list[tuple[float, bool]] = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            if exists(self.s3, f"{self.prefix}manifest.json"):
                manifest = json.loads(read(self.s3, f"{self.prefix}manifest.json"))
                listing = objects(self.s3, self.prefix)
                self.sightings.append(
                    (time.time(), all(self.prefix + o["key"] in listing for o in manifest["objects"]))
                )
            time.sleep(0.25)

    def stop(self):
        self.stop_event.set()
        self.join(10)


def get_by_ids_calls(lf) -> int:
    return sum(n for k, n in lf.counters().items() if k.endswith("/get_by_ids"))


def ti_of(stack, run_id: str, task_id: str) -> dict:
    return next(t for t in task_instances(stack, DAILY, run_id) if t["task_id"] == task_id)


def test_worker_dies_mid_backup(stack, facts):
    """Kill the Celery worker (the whole process tree, SIGKILL: a node that dies) while
    daily_backup.vectorize is exporting; start it again. The task is retried and the set completes;
    at no point is a half set visible as complete (its manifest is written last)."""
    s3, lf = stack.s3_client(), stack.lf
    # A manual backup run for the day before the latest 09:00 tick, logical date 10:00: 09:00 of that
    # day is already the logical date (its interval's start) of the scheduled run of the latest tick.
    logical = latest_tick(now(), 9) - timedelta(hours=23)
    prefix = f"daily/{logical:%Y%m%d}/"
    assert not objects(s3, prefix)
    watch = ManifestWatch(stack, prefix)
    watch.start()
    try:
        lf.add_faults("latency:route=*/get_by_ids,ms=1500")  # ~100 vectors per call: a slow export
        calls_before = get_by_ids_calls(lf)
        resp = trigger(stack, DAILY, logical)
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["dag_run_id"]
        deadline = time.monotonic() + 300
        while not (
            ti_of(stack, run_id, "daily_backup.vectorize")["state"] == "running"
            and get_by_ids_calls(lf) - calls_before >= 2
        ):
            assert time.monotonic() < deadline, explain(stack, DAILY, run_id)
            time.sleep(0.3)
        killed_try = ti_of(stack, run_id, "daily_backup.vectorize")["try_number"]
        killed = stack.components["worker"].kill()
        killed_at = time.time()
        assert len(killed) >= 3  # the worker, its pool process, the task's supervisor and task process
        assert not exists(s3, prefix + "manifest.json")
        lf.clear_faults()

        # The scheduler notices the missing heartbeats and puts the task up for retry.
        deadline = time.monotonic() + 120
        while True:
            ti = ti_of(stack, run_id, "daily_backup.vectorize")
            if ti["state"] != "running" or ti["try_number"] != killed_try:
                break
            assert time.monotonic() < deadline, explain(stack, DAILY, run_id)
            assert not exists(s3, prefix + "manifest.json")
            time.sleep(1)
        assert not exists(s3, prefix + "manifest.json")
        stack.restart_worker()
        run = wait_for_run(stack, DAILY, run_id, timeout=300)
    finally:
        lf.clear_faults()
        watch.stop()
    assert_success(stack, run)
    vectorize = ti_of(stack, run_id, "daily_backup.vectorize")
    assert vectorize["try_number"] >= 2
    tries = stack.get(f"{run_path(DAILY, run_id)}/taskInstances/daily_backup.vectorize/tries").json()["task_instances"]
    assert tries[0]["state"] in ("failed", "up_for_retry"), tries
    check_backup_set(s3, prefix.rstrip("/"), run_id)
    finalize = ti_of(stack, run_id, "daily_backup.finalize")
    assert watch.sightings, "the watcher never saw the manifest"
    first_seen = watch.sightings[0][0]
    assert first_seen > killed_at and first_seen >= utc(finalize["start_date"]).timestamp()
    assert all(complete for _, complete in watch.sightings)
    facts["worker_kill"] = {"killed": len(killed), "tries": vectorize["try_number"]}


# ---- 5. Clean shutdown -------------------------------------------------------------------------


def test_clean_shutdown(stack):
    """Stop exactly the processes the suite started, by their ids; PostgreSQL and Redis keep running,
    without our database and our keys."""
    import psycopg2
    import redis
    from e2e_stack import PG_URL, REDIS_URL

    def databases() -> set[str]:
        conn = psycopg2.connect(f"{PG_URL}/postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database")
                return {r[0] for r in cur.fetchall()}
        finally:
            conn.close()

    ours = []
    for pid in stack.started_pids():
        try:
            ours.append((pid, psutil.Process(pid).create_time()))
        except psutil.NoSuchProcess:
            pass
    assert len(ours) >= 7
    others = {d for d in databases() if not d.startswith("prism_e2e_")}
    assert stack.name in databases() and stack.redis_keys()

    stack.stop()

    for pid, created in ours:
        alive = (
            psutil.pid_exists(pid)
            and psutil.Process(pid).create_time() == created
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        )
        assert not alive, f"process {pid} we started is still running"
    after = databases()
    assert stack.name not in after and others <= after
    client = redis.Redis.from_url(REDIS_URL)
    assert client.ping()
    assert stack.redis_keys() == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(stack.api_url.rsplit(":", 1)[1])), timeout=2)
