"""prism_monthly: each calendar day runs only its own groups, end to end against localflare and the
S3 stand-in, and what each group writes or reports equals a direct query for the same window.

Dates are the most recent 1st, 7th, ... before now, or an hour ago with the Param run_day (a run at
its window's end, which reads point-in-time figures): the demo seed and GraphQL's lookback (92 days
of Workers analytics, 31 of D1/AI/KV) are anchored at today. Backfills: test_prism_monthly_backfill.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from dagtest import load_dag, recent, states, xcom

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.monitoring.analytics_windows import FREE_TIER_DAILY
from prism.monitoring.capacity import capacity_plan
from prism.reports.markdown import LEFT_OUT, code, number, percent
from prism.reports.periods import month_start, monthly_windows
from prism.runtime import sql_time

SQL = Path(__file__).resolve().parents[2] / "include" / "sql"
WORKER = "claudes-friend"
DAYS = (1, 7, 15, 21, 28)
BACKUP_FILES = ("d1.sql.gz", "vectors.ndjson.gz", "kv.ndjson.gz")


@pytest.fixture(scope="module")
def dag(airflow_db):
    return load_dag("prism_monthly")


@pytest.fixture
def conf_dag(airflow_db):
    """A DAG object of its own for runs with a conf: dag.test() runs tasks in-process, and the conf
    sticks to the DAG object's params for later runs."""
    return load_dag("prism_monthly")


def hour_ago() -> datetime:
    """A manual run's date at its window's end: it reads point-in-time figures (markdown.live_capture())."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def assert_only_day_ran(run, day: int) -> None:
    st = states(run)
    assert st["windows"] == st["calendar_day"] == "success"
    for other in DAYS:
        tasks = {k: v for k, v in st.items() if k.startswith(f"day_{other}.")}
        assert tasks, other
        if other != day:
            assert set(tasks.values()) == {"skipped"}, (other, tasks)


def context_for(end: datetime, run_type: str = "manual", xcoms: dict | None = None, **extra) -> dict:
    """A run's context; `ti.xcom_pull` answers from `xcoms` (default: its backup verified)."""
    xcoms = {"day_1.backup_verification.verify": {"status": "verified"}} if xcoms is None else xcoms
    return {
        "data_interval_start": end - timedelta(days=31),
        "data_interval_end": end,
        "dag_run": SimpleNamespace(run_type=run_type, run_after=end, logical_date=end),
        "run_id": "test",
        "ti": SimpleNamespace(xcom_pull=lambda task_ids: xcoms.get(task_ids)),
        **extra,
    }


# ---- day 1 ------------------------------------------------------------------------------------


def put_set(s3, bucket: str, period: str, status: str | None) -> str:
    """A fake monthly set: its objects, and a manifest unless `status` is None (an interrupted backup)."""
    prefix = f"monthly/{period}/"
    for name in BACKUP_FILES:
        s3.load_bytes(b"an older backup", key=prefix + name, bucket_name=bucket, replace=True)
    if status:
        manifest = {
            "format_version": 1,
            "cadence": "monthly",
            "period": period,
            "objects": [],
            "verification": {"status": status},
        }
        s3.load_string(json.dumps(manifest), key=prefix + "manifest.json", bucket_name=bucket, replace=True)
    return prefix


def test_day_1_backs_up_a_verified_set_applies_retention_and_reports(
    lf_fresh, connect, s3, bucket, airflow_db, dag, alerts
):
    from dateutil.relativedelta import relativedelta

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    end = recent(1)
    month = end.strftime("%Y%m")
    # Outside the 12 months: complete sets go, an interrupted one stays; inside: a verified set stays.
    # This month's own set, or the recent one, is the newest verified whichever task runs first.
    old_verified, old_failed = put_set(s3, bucket, "202001", "verified"), put_set(s3, bucket, "202002", "failed")
    old_partial = put_set(s3, bucket, "202003", None)
    recent_set = put_set(s3, bucket, f"{end - relativedelta(months=3):%Y%m}", "verified")

    run = dag.test(logical_date=end)

    assert run.state == "success", states(run)
    assert_only_day_ran(run, 1)
    assert {k: v for k, v in states(run).items() if k.startswith("day_1.")} == dict.fromkeys(
        [
            f"day_1.backup_verification.{t}"
            for t in ("plan", "d1", "vectorize", "kv", "finalize", "verify", "drop_scratch")
        ]
        + ["day_1.monthly_retention"]
        + [f"day_1.performance_report.{t}" for t in ("month_traffic", "worker_metrics", "performance_report")],
        "success",
    )

    # The set at monthly/YYYYMM/: its objects are what the manifest says, and it was verified.
    prefix = f"monthly/{month}/"
    assert sorted(s3.list_keys(bucket, prefix=prefix)) == sorted(prefix + n for n in (*BACKUP_FILES, "manifest.json"))
    manifest = json.loads(s3.read_key(prefix + "manifest.json", bucket))
    assert (manifest["cadence"], manifest["period"]) == ("monthly", month)
    assert manifest["verification"]["status"] == "verified", manifest["verification"]
    assert manifest["verification"]["problems"] == [] and manifest["logical_date"] == end.isoformat()
    assert {o["key"] for o in manifest["objects"]} == set(BACKUP_FILES)
    for obj in manifest["objects"]:
        body = s3.get_key(prefix + obj["key"], bucket).get()["Body"].read()
        assert (len(body), hashlib.sha256(body).hexdigest()) == (obj["bytes"], obj["sha256"]), obj["key"]
    assert s3.check_for_key(f"reports/backups/monthly/{month}/verification.md", bucket)
    assert not s3.list_keys(bucket, prefix="staging/")

    # What the set holds is what D1, Vectorize and KV hold, and so did the test restore.
    d1 = D1Hook()
    for table in ("documents", "document_chunks", "document_relationships", "repos", "security_events", "usage_log"):
        live = d1.rows(server.d1_id, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
        assert manifest["d1"]["tables"][table] == manifest["verification"]["d1"]["tables"][table] == live, table
    vectors = VectorizeHook().info(server.index_name)["vectorCount"]
    assert manifest["vectorize"]["vector_count"] == manifest["verification"]["vectorize"]["vector_count"] == vectors > 0
    assert manifest["kv"]["key_count"] == len(list(KVHook().list_keys(server.kv_id))) > 0

    # The scratch resources of the test restore are gone.
    assert not [db for db in d1.list_databases() if db["name"].startswith("prism-verify-")]
    assert not [ix for ix in VectorizeHook().list_indexes() if ix["name"].startswith("prism-verify-")]
    # KV was test-restored too (every key of the demo, compared), into a namespace that is gone as well.
    assert not [ns for ns in KVHook().list_namespaces() if ns["title"].startswith("prism-verify-")]
    assert manifest["verification"]["kv"]["keys_restored"] == manifest["kv"]["key_count"]
    assert manifest["verification"]["kv"]["compared_every_key"]
    assert manifest["restorable"] == {"d1": True, "vectorize": True, "kv": True}

    # Retention: only the complete sets outside the window went.
    kept = set(s3.list_prefixes(bucket, prefix="monthly/", delimiter="/"))
    assert kept == {old_partial, recent_set, prefix}
    retention = xcom(run, "day_1.monthly_retention")
    assert retention["deleted"] == [old_verified, old_failed] and retention["old_incomplete"] == ["202003"]
    assert retention["newest_verified"] in (month, recent_set.split("/")[1])

    # The performance report covers the previous calendar month, with GraphQL's figures for it.
    prev_start = month_start(month_start(end) - timedelta(days=1))
    traffic = WorkersAnalyticsHook().worker_traffic(WORKER, prev_start, month_start(end))
    text = s3.read_key(f"reports/prism_monthly/{prev_start:%Y%m}/performance.md", bucket)
    assert text.startswith(
        f"# PRISM Performance Report - {prev_start:%Y-%m}\n\nWindow: {prev_start.isoformat()} to "
        f"{month_start(end).isoformat()} (UTC)\n"
    )
    assert f"Total requests: {traffic['requests']:,}" in text
    assert f"Success rate: {percent(100 - traffic['error_rate_percent'])}" in text
    assert f"P95 latency: {number(traffic['wall_time_ms']['p95'])} ms" in text
    # The Worker's /metrics are point-in-time: read only by a run within a day of the month's end.
    metrics = xcom(run, "day_1.performance_report.worker_metrics")
    if metrics["capture"]["timely"]:
        assert "Tokens saved: " in text and f"Captured at {metrics['capture']['captured_at']}" in text
    else:
        assert set(metrics) == {"capture"} and "Tokens saved" not in text and "Captured at" not in text
        assert LEFT_OUT.format(what="the Worker's /metrics (its last 30 days)") in text
    assert "No action needed" in text  # the demo's p95 and error rate are within the targets
    report = xcom(run, "day_1.performance_report.performance_report")
    assert report["requests"] == traffic["requests"] and report["p95_ms"] == traffic["wall_time_ms"]["p95"]
    assert alerts == []
    # ... and as HTML with charts of the month's days, each day's figures GraphQL's for that day.
    html = s3.read_key(f"reports/prism_monthly/{prev_start:%Y%m}/performance.html", bucket)
    assert report["report_html"].endswith("performance.html") and html.count("<svg") == 2
    days = WorkersAnalyticsHook().worker_daily(WORKER, prev_start, month_start(end))
    assert sum(d["requests"] for d in days) == traffic["requests"]
    for d in (days[0], days[-1]):
        assert f"| {d['date']} | {number(d['requests'])} requests, {number(d['errors'])} errors |" in text
        assert f"| {d['date']} | {number(d['p95_ms'])} ms |" in text
    assert f"Total requests: {traffic['requests']:,}" in html
    assert f"<title>PRISM Performance Report - {prev_start:%Y-%m}</title>" in html
    # The task links its report in the UI (through the dashboard's app).
    assert xcom(run, "day_1.performance_report.performance_report", key="_link_HtmlReportLink").endswith(
        f"/prism-dashboard/reports/reports/prism_monthly/{prev_start:%Y%m}/performance.html"
    )


def test_monthly_retention_keeps_the_newest_verified_set_however_old(s3, bucket, dag):
    """Every recent monthly set failed: the last verified one stays, whatever its age."""
    end = recent(1)
    sets = {
        "202001": "verified",
        "202002": "verified",
        "202003": "failed",
        "202004": None,
        f"{end:%Y%m}": "failed",
        f"{month_start(end) - timedelta(days=1):%Y%m}": "checksummed",
    }
    for period, status in sets.items():
        put_set(s3, bucket, period, status)
    retention = dag.get_task("day_1.monthly_retention").python_callable
    out = retention(**context_for(end))
    assert out["deleted"] == ["monthly/202001/", "monthly/202003/"]
    assert out["newest_verified"] == "202002" and out["kept_beyond_window"] == ["202002"]
    assert out["old_incomplete"] == ["202004"] and out["reference_date"] == end.date().isoformat()
    left = {p.split("/")[1] for p in s3.list_prefixes(bucket, prefix="monthly/", delimiter="/")}
    assert left == set(sets) - {"202001", "202003"}
    assert s3.check_for_key("monthly/202002/manifest.json", bucket)
    assert retention(**context_for(end))["deleted"] == []  # nothing more to do


def test_monthly_retention_follows_a_verified_backup_and_refuses_the_future(s3, bucket, dag):
    """A failed backup, another calendar day, a window in the future: nothing is deleted. A backfill,
    which takes no backup, still counts from its window."""
    from airflow.sdk.exceptions import AirflowSkipException

    from prism.refusals import Refused

    end = recent(1)
    for period in ("201901", "201902"):
        put_set(s3, bucket, period, "verified")
    put_set(s3, bucket, f"{end:%Y%m}", "failed")
    before = set(s3.list_keys(bucket))
    retention = dag.get_task("day_1.monthly_retention").python_callable
    with pytest.raises(
        Refused,
        match=f"refusing to expire monthly backup sets: this run's backup monthly/{end:%Y%m}/ did "
        "not pass verification .*its manifest: failed",
    ):
        retention(**context_for(end, xcoms={}))
    with pytest.raises(AirflowSkipException, match="does not follow day 1"):
        retention(**context_for(end + timedelta(days=6)))  # day 7
    with pytest.raises(AirflowSkipException, match="does not follow day 1"):
        retention(**context_for(end, params={"run_day": 7}))
    future = datetime(2099, 12, 1, 3, tzinfo=timezone.utc)
    with pytest.raises(
        Refused,
        match=r"refusing to delete monthly backup sets and staging: the run's window ends "
        r"2099-12-01T03:00:00\+00:00, after now .* \(\+10 min slack\)\. Nothing was changed\.",
    ):
        retention(**context_for(future))
    assert set(s3.list_keys(bucket)) == before
    out = retention(**context_for(end, run_type="backfill", xcoms={}))
    assert out["deleted"] == ["monthly/201901/"] and out["after"].startswith("a backfill takes no backup")


# ---- day 7 ------------------------------------------------------------------------------------


def test_day_7_security_audit_alerts_above_the_threshold_and_tests_gate_the_deploy(
    cf, s3, bucket, configure, airflow_db, dag, conf_dag, alerts, tmp_path
):
    end = hour_ago()
    window = [sql_time(end - timedelta(days=30)), sql_time(end)]
    counts = {
        r["type"]: r["n"]
        for r in D1Hook().rows(
            cf.d1_id,
            "SELECT type, COUNT(*) AS n FROM security_events WHERE created_at >= ? AND created_at < ? GROUP BY type",
            window,
        )
    }
    failed = counts["failed_login"]
    assert failed >= 2

    # Above the threshold: alert. The dependency update runs (harmless commands, from the config); the tests
    # fail, so no deploy.
    configure(
        {
            "backups": {"bucket": bucket},
            "thresholds": {"failed_logins_per_month": failed - 1},
            "npm": {
                "project_dir": str(tmp_path),
                "update_command": ["true"],
                "audit_command": ["true"],
                "test_command": ["false"],
                "deploy_command": ["touch", "deployed"],
            },
        }
    )
    run = conf_dag.test(logical_date=end, run_conf={"run_day": 7, "run_dependency_update": True})
    assert run.state == "failed"
    assert_only_day_ran(run, 7)
    st = states(run)
    assert [
        st[f"day_7.dependency_update.{t}"] for t in ("enabled", "npm_update", "npm_audit", "npm_test", "deploy")
    ] == ["success", "success", "success", "failed", "upstream_failed"]
    assert not (tmp_path / "deployed").exists()
    assert st["day_7.security_audit.npm_audit"] == st["day_7.security_audit.security_report"] == "success"
    assert any(f"{failed} failed logins" in a and f"(threshold {failed - 1})" in a for a in alerts)
    assert any("day_7.dependency_update.npm_test failed" in a for a in alerts)
    assert len(alerts) == 2

    report = s3.read_key(f"reports/prism_monthly/{end:%Y%m%d}/security.md", bucket)
    assert f"Failed logins: {failed} (threshold {failed - 1}) - ABOVE THE THRESHOLD" in report
    assert f"<title>PRISM Security Audit - {end.date().isoformat()}</title>" in s3.read_key(
        f"reports/prism_monthly/{end:%Y%m%d}/security.html", bucket
    )
    assert f"API-key abuse events: {counts.get('api_key_abuse', 0)}" in report
    assert f"Unauthorized (401): {counts.get('unauthorized', 0)}" in report
    assert f"Forbidden (403): {counts.get('forbidden', 0)}" in report
    assert "`true` exited 0 (no findings)" in report
    # The HTML report charts the events by type with the same counts.
    html = s3.read_key(f"reports/prism_monthly/{end:%Y%m%d}/security.html", bucket)
    assert f"failed_login: {failed}</title>" in html and f"forbidden: {counts.get('forbidden', 0)}</title>" in html
    assert f"| failed_login | {failed} |" in report

    # At the threshold: no alert; with the default Params the update and npm audit skip. The report of
    # the same window keeps the npm audit it captured first (point-in-time), and follows the new threshold.
    alerts.clear()
    configure({"backups": {"bucket": bucket}, "thresholds": {"failed_logins_per_month": failed}})
    run = conf_dag.test(logical_date=end, run_conf={"run_day": 7, "run_dependency_update": False})
    assert run.state == "success"
    st = states(run)
    assert {
        st[f"day_7.dependency_update.{t}"] for t in ("enabled", "npm_update", "npm_audit", "npm_test", "deploy")
    } == {"skipped"}
    assert st["day_7.security_audit.npm_audit"] == "skipped" and st["day_7.security_audit.security_report"] == "success"
    assert alerts == []
    report = s3.read_key(f"reports/prism_monthly/{end:%Y%m%d}/security.md", bucket)
    assert f"Failed logins: {failed} (threshold {failed})\n" in report
    assert "`true` exited 0 (no findings)" in report and "Skipped: no npm project configured" not in report
    assert xcom(run, "day_7.security_audit.security_report")["failed_login"] == failed


def test_dependency_update_gate_config_and_deploy_order(dag, configure, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    enabled = dag.get_task("day_7.dependency_update.enabled").python_callable
    on = {"run_dependency_update": True}
    with pytest.raises(AirflowSkipException, match="off"):
        enabled(params={"run_dependency_update": False}, **context_for(recent(7)))
    # The shipped config has no npm project: turned on, the update refuses, naming the config key.
    with pytest.raises(
        AirflowFailException,
        match=r"^refusing to update the npm dependencies: run_dependency_update is "
        r"true but npm.project_dir is not set in the config .*Nothing was changed\.$",
    ):
        enabled(params=on, **context_for(recent(7)))
    configure({"npm": {"project_dir": str(tmp_path / "absent")}})
    with pytest.raises(AirflowFailException, match="not a directory"):
        enabled(params=on, **context_for(recent(7)))
    configure({"npm": {"project_dir": str(tmp_path), "deploy_command": ["touch", "deployed"]}})
    with pytest.raises(AirflowSkipException, match="backfill"):
        enabled(params=on, **context_for(recent(7), "backfill"))
    assert enabled(params=on, **context_for(recent(7))) == str(tmp_path)

    # The deploy follows the tests, and only when they succeed; it runs the configured command.
    deploy = dag.get_task("day_7.dependency_update.deploy")
    assert deploy.upstream_task_ids >= {"day_7.dependency_update.npm_test"} and deploy.trigger_rule == "all_success"
    deploy.python_callable(str(tmp_path), "deploy", True)
    assert (tmp_path / "deployed").exists()


def test_no_param_names_a_command_a_directory_or_an_environment(dag):
    """Params only switch work on or off or pick a day: anyone allowed to trigger can set them."""
    assert set(dag.params) == {"run_day", "run_dependency_update"}


def test_bad_params_fail_before_anything_runs(cf, airflow_db, conf_dag):
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):  # the run is refused: no task starts
        conf_dag.test(logical_date=recent(7), run_conf={"run_dependency_update": "yes"})
    for conf in ({"run_day": 3}, {"run_day": "1"}):
        params = copy.deepcopy(conf_dag.params)  # what Airflow validates a trigger's conf against
        with pytest.raises(ParamValidationError):
            params.update(conf)
            params.validate()
    params = copy.deepcopy(conf_dag.params)
    params.update({"run_day": 15, "run_dependency_update": True})
    assert params.validate()["run_day"] == 15


# ---- day 15 -----------------------------------------------------------------------------------


def test_day_15_optimizes_and_reports_slow_queries_cache_and_indexes(
    lf_fresh, connect, s3, bucket, airflow_db, conf_dag, alerts
):
    end = hour_ago()
    # Seeded as of the run's day, so the query log covers the 7 days before the run.
    server = lf_fresh("--seed-anchor", end.date().isoformat())
    connect(server, budget={"bulk_rps": 0})
    d1 = D1Hook()
    assert d1.rows(server.d1_id, "SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'")[0]["n"] == 0

    run = conf_dag.test(logical_date=end, run_conf={"run_day": 15})

    assert run.state == "success"
    assert_only_day_ran(run, 15)
    assert {v for k, v in states(run).items() if k.startswith("day_15.")} == {"success"}
    assert d1.rows(server.d1_id, "SELECT COUNT(*) AS n FROM sqlite_stat1")[0]["n"] > 0  # ANALYZE ran
    out = xcom(run, "day_15.optimization_report")
    assert out["quick_check"] == ["ok"] and out["chunk_lookup_uses_index"] is True

    slow = d1.rows(
        server.d1_id, (SQL / "reports/slow_queries.sql").read_text(), [sql_time(end - timedelta(days=7)), sql_time(end)]
    )
    cache = d1.rows(server.d1_id, (SQL / "reports/cache_effectiveness.sql").read_text())
    indexes = d1.rows(server.d1_id, (SQL / "reports/index_usage.sql").read_text())
    assert slow and out["slow_queries"] == len(slow) and out["slowest_avg_ms"] == slow[0]["avg_duration_ms"]
    assert out["cache_types"] == {r["type"]: r["total_hits"] for r in cache}
    assert out["indexes"] == len(indexes)
    text = s3.read_key(f"reports/prism_monthly/{end:%Y%m%d}/optimization.md", bucket)
    for r in slow:
        assert (
            f"{number(r['avg_duration_ms'], 1)} ms average, {number(r['max_duration_ms'], 1)} ms max, "
            f"{number(r['runs'])} runs: {code(r['query'])}"
        ) in text
    assert "`VACUUM`: unsupported on D1" in text and "`REINDEX`: not documented for D1" in text
    assert all(f"- {code(r['name'])} on {code(r['tbl_name'])}" in text for r in indexes)
    assert alerts == []


# ---- day 21 -----------------------------------------------------------------------------------


def test_day_21_log_review_and_resource_check(cf, s3, bucket, configure, airflow_db, dag, conf_dag, alerts):
    end = hour_ago()
    run = conf_dag.test(logical_date=end, run_conf={"run_day": 21})

    assert run.state == "success"
    assert_only_day_ran(run, 21)
    start = month_start(end)
    traffic = WorkersAnalyticsHook().worker_traffic(WORKER, start, end)
    review = xcom(run, "day_21.log_review.log_review")
    assert (review["requests"], review["error_rate_percent"], review["p95_ms"]) == (
        traffic["requests"],
        traffic["error_rate_percent"],
        traffic["wall_time_ms"]["p95"],
    )
    counts = {
        r["type"]: r["n"]
        for r in D1Hook().rows(
            cf.d1_id,
            "SELECT type, COUNT(*) AS n FROM security_events WHERE created_at >= ? AND created_at < ? GROUP BY type",
            [sql_time(start), sql_time(end)],
        )
    }
    assert review["failed_auth"] == sum(counts.get(t, 0) for t in ("failed_login", "unauthorized", "forbidden"))
    assert review["rate_limited"] == counts.get("rate_limited", 0)
    assert review["findings"] == [] and alerts == []
    text = s3.read_key(f"reports/prism_monthly/{end:%Y%m%d}/log_review.md", bucket)
    assert f"Total requests: {traffic['requests']:,}" in text
    assert f"Rate-limit violations (429): {counts.get('rate_limited', 0)}" in text

    resources = xcom(run, "day_21.resource_check.resource_check")
    d1 = D1Hook()
    db = d1.get_database(cf.d1_id)
    assert (resources["d1_bytes"], resources["d1_tables"]) == (db["file_size"], db["num_tables"])
    assert resources["vectors"] == VectorizeHook().info(cf.index_name)["vectorCount"]
    assert "prism-cache" in resources["kv_namespaces"]
    assert resources["latest_deployment"] == WorkersAnalyticsHook().deployments(WORKER)[0]["id"]
    text = s3.read_key(f"reports/prism_monthly/{end:%Y%m%d}/resources.md", bucket)
    assert resources["captured"] is True and f"Captured at {resources['captured_at']}: point-in-time" in text
    assert f"- `{db['name']}` (`{db['uuid']}`): {number(db['file_size'])} bytes" in text

    # The month to date's review made later (a day-21 run long past): the same traffic, no resources.
    late = recent(21)
    gone = dag.get_task("day_21.resource_check.resource_check").python_callable(**context_for(late))
    assert gone == {
        "report": f"s3://{bucket}/reports/prism_monthly/{late:%Y%m%d}/resources.md",
        "report_html": f"s3://{bucket}/reports/prism_monthly/{late:%Y%m%d}/resources.html",
        "captured": False,
    }

    # The same month with a p95 target under the measured p95: the review alerts.
    configure({"backups": {"bucket": bucket}, "thresholds": {"p95_latency_ms": 1}})
    log_review = dag.get_task("day_21.log_review.log_review").python_callable
    out = log_review(
        xcom(run, "day_21.log_review.month_to_date_traffic"),
        xcom(run, "day_21.log_review.security_events"),
        **context_for(end),
    )
    assert out["findings"] == [f"p95 latency {traffic['wall_time_ms']['p95']} ms is above 1 ms"]
    assert len(alerts) == 1 and "monthly log review" in alerts[0] and "p95 latency" in alerts[0]


# ---- day 28 -----------------------------------------------------------------------------------


def test_day_28_monthly_report_and_capacity_planning(cf, s3, bucket, configure, airflow_db, dag, conf_dag, alerts):
    end = hour_ago()
    run = conf_dag.test(logical_date=end, run_conf={"run_day": 28})

    assert run.state == "success"
    assert_only_day_ran(run, 28)
    hook = WorkersAnalyticsHook()
    report = xcom(run, "day_28.monthly_report.monthly_report")
    start = datetime.fromisoformat(report["usage_window"]["start"].replace("Z", "+00:00"))
    stop = datetime.fromisoformat(report["usage_window"]["end"].replace("Z", "+00:00"))
    assert stop == end and start >= month_start(end)  # the month to date (cut to GraphQL's 31 days if need be)
    usage = hook.usage(cf.d1_id, start, stop)
    traffic = hook.worker_traffic(WORKER, month_start(end), end)
    assert report["totals"] == {
        "worker_requests": traffic["requests"],
        "ai_neurons": usage["ai"]["neurons"],
        "d1_rows_read": usage["d1"]["rowsRead"],
        "d1_rows_written": usage["d1"]["rowsWritten"],
        **{f"kv_{a}s": usage["kv"].get(a, 0) for a in ("read", "write", "delete", "list")},
    }
    text = s3.read_key(f"reports/prism_monthly/{end:%Y%m}/monthly_report.md", bucket)
    assert (
        f"Total requests: {traffic['requests']:,}" in text and f"ai_neurons: {number(usage['ai']['neurons'])} (" in text
    )

    capacity = xcom(run, "day_28.capacity_planning.capacity_report")
    analytics = xcom(run, "day_28.capacity_planning.capacity_analytics")
    plan = capacity["plan"]
    # Each window's figures are GraphQL's for that window, and the plan is the projection of them.
    for win in analytics["windows"]:
        if win["traffic"]["available"]:
            s, e = (
                datetime.fromisoformat(win["traffic"]["window"][k].replace("Z", "+00:00")) for k in ("start", "end")
            )
            assert hook.worker_traffic(WORKER, s, e)["requests"] == win["traffic"]["requests"]
    assert plan == capacity_plan(analytics, end) and set(plan) == set(FREE_TIER_DAILY)
    assert plan["worker_requests"]["windows"] >= 2  # Workers analytics go back 92 days
    assert plan["worker_requests"]["growth_30d_percent"] > 0  # the demo traffic grows
    if datetime.now(timezone.utc) - end < timedelta(days=15):  # D1/AI/KV: 31 days, so the halves of the last 30 days
        assert plan["ai_neurons"]["windows"] == 2 and plan["ai_neurons"]["growth_30d_percent"] is not None
    assert capacity["alerted"] == [] and alerts == []
    cap_text = s3.read_key(f"reports/prism_monthly/{end:%Y%m}/capacity.md", bucket)
    assert "GraphQL keeps only 31 days" in cap_text and "| worker_requests |" in cap_text
    # Each resource's trend and the projected date it reaches each limit, charted in the HTML report.
    cap_html = s3.read_key(f"reports/prism_monthly/{end:%Y%m}/capacity.html", bucket)
    assert cap_html.count("<svg") == len(FREE_TIER_DAILY)
    requests_limit_date = plan["worker_requests"]["reaches_limit"]
    assert f"| free-tier limit reached | {requests_limit_date} |" in cap_text
    assert plan["d1_rows_read"]["paid"]["limit"] == 25_000_000_000 / 30.44
    assert f"paid plan's amount reached | {plan['d1_rows_read']['paid']['reaches_limit']} |" in cap_text
    if requests_limit_date.startswith("20"):
        assert f"({requests_limit_date}, in" in " ".join(re.sub(r"<[^>]+>", " ", cap_html).split())  # in words
    assert xcom(run, "day_28.capacity_planning.capacity_report", key="_link_MarkdownReportLink").endswith("capacity.md")

    # With a lower free-tier threshold the same figures alert.
    configure({"backups": {"bucket": bucket}, "thresholds": {"free_tier_usage_percent": 1}})
    capacity_report = dag.get_task("day_28.capacity_planning.capacity_report").python_callable
    out = capacity_report(xcom(run, "day_28.capacity_planning.capacity_analytics"), **context_for(end))
    assert "kv_writes" in out["alerted"] and len(alerts) == 1 and "free-tier daily usage" in alerts[0]


# ---- other days, backfills -------------------------------------------------------------------


def test_a_day_off_the_calendar_runs_nothing(cf, airflow_db, dag):
    run = dag.test(logical_date=recent(10))
    assert run.state == "success"
    st = states(run)
    assert st.pop("windows") == st.pop("calendar_day") == "success"
    assert set(st.values()) == {"skipped"}


def test_run_day_runs_another_days_tasks(dag):
    """A manual run on any date can run one calendar day's tasks (Param run_day); windows still follow the run's date."""
    branch = dag.get_task("calendar_day").python_callable
    w = monthly_windows(recent(10))
    assert branch(w, params={"run_day": None}) == []
    assert branch(w, params={"run_day": 21}) == ["day_21"]
    assert branch(monthly_windows(recent(15)), params={"run_day": None}) == ["day_15"]


def test_tasks_acting_on_the_present_skip_inside_a_backfill(dag):
    for task_id in ("day_1.backup_verification.plan", "day_15.index_optimization.not_in_backfill"):
        gate = dag.get_task(task_id)
        with pytest.raises(AirflowSkipException, match="skipped inside a backfill"):
            gate.python_callable(*gate.op_args, **context_for(recent(1), "backfill"))
    gate = dag.get_task("day_15.index_optimization.not_in_backfill")
    assert gate.python_callable(*gate.op_args, **context_for(recent(1))) is None
