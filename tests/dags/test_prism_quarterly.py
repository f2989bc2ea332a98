"""prism_quarterly: each run reviews the quarter its data interval covers (title, key, window, checklist,
figures), as a checklist with figures; Q3's restore drill tests the newest backup set (a real one, made
by prism_daily's backup group) in scratch resources, records the result in its manifest, and always
deletes the scratch resources. A `quarter` Param naming another quarter is refused before anything runs."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from dagtest import load_dag, run_only, states, xcom

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.backups.verification import SCRATCH_PREFIX, scratch_name
from prism.monitoring.capacity import monthly_growth
from prism.refusals import Refused
from prism.reports import markdown
from prism.reports import quarterly as quarterly_reviews
from prism.reports.charts import short_number
from prism.reports.markdown import number
from prism.reports.periods import quarterly_windows

SQL = Path(__file__).resolve().parents[2] / "include" / "sql"


def recent_quarter(q: int) -> datetime:
    """The latest first day of quarter q at 04:00 UTC that ended at least an hour ago (its run reviews
    the quarter before: reviewing(q))."""
    now = datetime.now(timezone.utc) - timedelta(hours=1)
    year = now.year
    while True:
        d = datetime(year, 3 * (q - 1) + 1, 1, 4, tzinfo=timezone.utc)
        if d <= now:
            return d
        year -= 1


def reviewing(q: int) -> datetime:
    """The latest scheduled run that reviews quarter q: the first day of the next quarter, 04:00 UTC."""
    return recent_quarter(q % 4 + 1)


@pytest.fixture(scope="module")
def dag(airflow_db):
    return load_dag("prism_quarterly")


def assert_only_quarter_ran(run, q: int) -> dict[str, str]:
    st = states(run)
    assert st["windows"] == st["quarter"] == "success"
    for other in (1, 2, 3, 4):
        tasks = {k: v for k, v in st.items() if k.startswith(f"q{other}.")}
        assert tasks, other
        if other != q:
            assert set(tasks.values()) == {"skipped"}, (other, tasks)
    return {k: v for k, v in st.items() if k.startswith(f"q{q}.")}


def context_for(end: datetime, xcoms: dict | None = None, run_type: str = "manual", **params) -> dict:
    ti = SimpleNamespace(xcom_pull=lambda task_ids: (xcoms or {}).get(task_ids))
    return {
        "data_interval_start": end - timedelta(days=92),
        "data_interval_end": end,
        "run_id": "test-run",
        "ti": ti,
        "dag_run": SimpleNamespace(run_type=run_type, run_after=end, logical_date=end),
        "params": {"run_restore_drill": True, **params},
    }


def put_set(s3, bucket: str, cadence: str, period: str, status: str | None) -> None:
    """A fake backup set: its objects, and a manifest unless `status` is None (an interrupted backup)."""
    for name in ("d1.sql.gz", "vectors.ndjson.gz", "kv.ndjson.gz"):
        s3.load_bytes(b"x", key=f"{cadence}/{period}/{name}", bucket_name=bucket)
    if status:
        manifest = {"cadence": cadence, "period": period, "objects": [], "verification": {"status": status}}
        s3.load_string(json.dumps(manifest), key=f"{cadence}/{period}/manifest.json", bucket_name=bucket)


def scratch_left() -> list[str]:
    """The scratch databases and indexes of test restores still in the account."""
    return [db["name"] for db in D1Hook().list_databases() if db["name"].startswith(SCRATCH_PREFIX)] + [
        ix["name"] for ix in VectorizeHook().list_indexes() if ix["name"].startswith(SCRATCH_PREFIX)
    ]


def test_q3_drills_the_newest_daily_set_and_reviews_the_quarters_sets(
    lf_fresh, connect, s3, bucket, airflow_db, dag, alerts, monkeypatch
):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    day = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    seeded = run_only(load_dag("prism_daily"), r"^daily_backup\.", logical_date=day)
    assert seeded.state == "success", states(seeded)
    tested = f"daily/{day:%Y%m%d}/"
    manifest = json.loads(s3.read_key(tested + "manifest.json", bucket))
    end = reviewing(3)
    label, year = f"{end.year}Q3", end.year
    for cadence, period, status in (
        ("monthly", f"{year}07", "verified"),
        ("monthly", f"{year}09", "failed"),
        ("daily", f"{year}0930", "verified"),
        ("daily", f"{year}0929", None),
    ):
        put_set(s3, bucket, cadence, period, status)
    # As the scheduled run at the quarter's end: point-in-time figures (the sets, the drill) go in the review.
    monkeypatch.setattr(markdown, "LIVE_GRACE", datetime.now(timezone.utc) - end + timedelta(days=1))

    run = dag.test(logical_date=end)

    assert run.state == "success", states(run)
    q3 = assert_only_quarter_ran(run, 3)
    assert q3.pop("q3.dependency_audit.npm_audit") == "skipped"  # no npm project configured
    assert set(q3.values()) == {"success"}, q3

    # The drill tested the daily set just made, and its figures are the manifest's.
    chosen = xcom(run, "q3.backup_testing.pick_set")
    assert (chosen["cadence"], chosen["period"]) == ("daily", f"{day:%Y%m%d}")
    drill = xcom(run, "q3.backup_testing.restore_drill", key="drill")
    assert drill == xcom(run, "q3.backup_testing.restore_drill")
    assert drill["status"] == "verified" and drill["problems"] == []
    assert {t: n for t, n in drill["d1"]["tables"].items() if n} == manifest["d1"]["tables"]
    assert drill["d1"]["quick_check"] == ["ok"]
    assert drill["vectorize"]["vector_count"] == manifest["vectorize"]["vector_count"] > 0
    assert drill["kv_keys"] == manifest["kv"]["key_count"] > 0
    assert drill["captured_at"] == manifest["captured_at"]
    recorded = json.loads(s3.read_key(tested + "manifest.json", bucket))["verification"]
    assert (recorded["status"], recorded["method"], recorded["dag_run"]) == (
        "verified",
        "quarterly restore drill",
        run.run_id,
    )
    assert recorded["d1"] == drill["d1"]

    # The scratch resources are gone: the drill deleted them, the teardown found nothing left.
    assert chosen["scratch"].startswith(SCRATCH_PREFIX) and xcom(run, "q3.backup_testing.drop_scratch") == []
    assert scratch_left() == []

    review = s3.read_key(f"reports/prism_quarterly/{label}/review.md", bucket)
    assert f"# PRISM Quarterly Review {label}: dependency audit, backup testing" in review
    rows = sum(drill["d1"]["tables"].values())
    assert (
        f"- [x] Restore drill of {tested[:-1]}: verified (recorded in its manifest); captured {manifest['captured_at']}; "
        f"D1: {len(drill['d1']['tables'])} tables, {rows:,} rows restored, quick_check ok"
    ) in review
    assert f"Vectorize: {manifest['vectorize']['vector_count']:,} vectors restored" in review
    assert f"KV: {manifest['kv']['key_count']:,} keys in the set" in review
    assert f"- [x] Scratch resources {chosen['scratch']}: none left" in review
    # The quarter's sets: each with its state, and the month without a complete monthly set.
    assert f"- [!] Months without a complete monthly set: {year}08\n" in review
    assert f"- [x] monthly/{year}07: verified" in review and f"- [!] monthly/{year}09: failed" in review
    assert (
        f"- [!] Daily sets of the quarter: 2 ({year}0929 to {year}0930); not verified: {year}0929 incomplete "
        "(objects without a manifest: an interrupted backup)"
    ) in review
    assert "- Sets by status: failed 1, incomplete 1, verified 2" in review
    html = s3.read_key(f"reports/prism_quarterly/{label}/review.html", bucket)
    assert f"<title>PRISM Quarterly Review {label}: dependency audit, backup testing</title>" in html
    assert "- [ ] npm audit: skipped, no npm project configured" in review
    assert len(alerts) == 1 and "3 item(s) need attention" in alerts[0] and "Restore drill" not in alerts[0]

    # An object of the set corrupted in the bucket: the drill fails, records it, and a review made anew
    # (its objects deleted first: a review keeps what it captured first) flags it.
    alerts.clear()
    s3.delete_objects(
        bucket, [f"reports/prism_quarterly/{label}/review.md", f"reports/prism_quarterly/{label}/review.html"]
    )
    kv_key = tested + "kv.ndjson.gz"
    raw = gzip.decompress(s3.get_key(kv_key, bucket).get()["Body"].read())
    s3.load_bytes(gzip.compress(raw.split(b"\n", 1)[1]), kv_key, bucket, replace=True)  # one key fewer

    run = dag.test(logical_date=end)

    assert run.state == "failed"
    st = states(run)
    assert st["q3.backup_testing.restore_drill"] == "failed"
    assert st["q3.backup_testing.drop_scratch"] == st["q3.q3_review"] == "success"  # teardown and review ran anyway
    drill = xcom(run, "q3.backup_testing.restore_drill", key="drill")
    assert drill["status"] == "failed" and drill["d1"] is None  # not restored: the objects do not match
    assert any(p.startswith(f"kv: s3://{bucket}/{kv_key} has sha256") for p in drill["problems"])
    assert not any(p.startswith(("d1:", "vectorize:")) for p in drill["problems"])
    recorded = json.loads(s3.read_key(tested + "manifest.json", bucket))["verification"]
    assert recorded["status"] == "failed" and recorded["problems"] == drill["problems"]
    review = s3.read_key(f"reports/prism_quarterly/{label}/review.md", bucket)
    assert f"- [!] Restore drill of {tested[:-1]}: FAILED (recorded in its manifest)" in review
    assert f"  - problem: kv: s3://{bucket}/{kv_key} has sha256" in review
    assert scratch_left() == []
    assert any("4 item(s) need attention" in a and "Restore drill" in a for a in alerts)  # the review's
    assert any("restore_drill" in a for a in alerts)  # the failed task's


def test_the_teardown_deletes_what_a_dead_drill_left(lf_fresh, connect, dag):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    chosen = {
        "bucket": "b",
        "cadence": "daily",
        "period": "20261129",
        "token": "deadbeef00",
        "scratch": scratch_name("deadbeef00"),
    }
    D1Hook().create_database(chosen["scratch"])
    VectorizeHook().create_index(chosen["scratch"], 384, "cosine")
    teardown = dag.get_task("q3.backup_testing.drop_scratch")
    assert teardown.is_teardown and teardown.upstream_task_ids >= {
        "q3.backup_testing.pick_set",
        "q3.backup_testing.restore_drill",
    }
    assert dag.get_task("q3.backup_testing.pick_set").is_setup
    assert sorted(teardown.python_callable(chosen)) == [f"d1:{chosen['scratch']}", f"vectorize:{chosen['scratch']}"]
    assert scratch_left() == [] and teardown.python_callable(chosen) == []


def test_the_drill_reads_the_daily_and_monthly_backup_sets(dag):
    """Lineage in the UI: the drill's tasks read the backup sets the daily and monthly backups produce."""
    from prism.backups.assets import DAILY_SETS, MONTHLY_SETS

    for task_id in ("q3.backup_testing.pick_set", "q3.backup_testing.restore_drill"):
        assert dag.get_task(task_id).inlets == [DAILY_SETS, MONTHLY_SETS], task_id


def test_with_no_complete_set_the_drill_is_flagged_not_crashed(s3, bucket, dag):
    put_set(s3, bucket, "daily", "20261101", None)  # an interrupted backup is not a set to drill
    chosen = dag.get_task("q3.backup_testing.pick_set").python_callable(**context_for(recent_quarter(3)))
    assert (chosen["bucket"], chosen["cadence"], chosen["period"]) == (bucket, None, None)
    ti = SimpleNamespace(xcom_push=lambda **kw: pytest.fail("nothing to record"))
    assert dag.get_task("q3.backup_testing.restore_drill").python_callable(chosen, ti=ti, run_id="r") is None
    assert quarterly_reviews.restore_drill_items(chosen, None, []) == [
        "- [!] Restore drill: no complete daily or monthly backup set in the bucket to test"
    ]


def test_quarter_branch_and_params(dag):
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    branch = dag.get_task("quarter").python_callable
    w = quarterly_windows(datetime(2026, 7, 1, 4, tzinfo=timezone.utc))
    assert (w["label"], w["window"]["label"], [m["label"] for m in w["months"]]) == (
        "2026Q2",
        "2026Q2",
        ["2026-04", "2026-05", "2026-06"],
    )
    assert w["sql_year_dates"] == ["2025-07-01", "2026-07-01"]
    assert branch(w, params={"quarter": None}) == ["q2"]
    assert branch(w, params={"quarter": 1}) == ["q2"]  # the Param never picks the checklist: `windows` checks it
    windows = dag.get_task("windows").python_callable
    end = datetime(2026, 7, 1, 4, tzinfo=timezone.utc)
    assert windows(**context_for(end, quarter=2)) == windows(**context_for(end, quarter=None)) == w
    with pytest.raises(Refused, match=r"^refusing to run the quarterly review: quarter=1 was given, but this run's"):
        windows(**context_for(end, quarter=1))
    assert set(dag.params) == {"quarter", "run_restore_drill"}  # no command, directory or environment
    for conf in ({"quarter": 5}, {"run_restore_drill": "no"}):
        params = copy.deepcopy(dag.params)
        with pytest.raises(ParamValidationError):
            params.update(conf)
            params.validate()


def test_drill_skips_when_off_or_inside_a_backfill(s3, bucket, dag):
    pick = dag.get_task("q3.backup_testing.pick_set").python_callable
    end = recent_quarter(3)
    with pytest.raises(AirflowSkipException, match="off"):
        pick(**context_for(end, run_restore_drill=False))
    with pytest.raises(AirflowSkipException, match="backfill"):
        pick(**context_for(end, run_type="backfill"))
    put_set(s3, bucket, "monthly", "202610", "failed")
    assert pick(**context_for(end))["period"] == "202610"  # no daily set: the newest monthly one


def test_q4_yearly_review_and_capacity_planning(lf_fresh, connect, s3, bucket, configure, airflow_db, dag, alerts):
    end = reviewing(4)  # 1 January: the year's last quarter, and the year
    label = f"{end.year - 1}Q4"
    # Seeded as of the run's day, so PRISM's usage log holds the year reviewed.
    server = lf_fresh("--seed-anchor", end.date().isoformat())
    connect(server, budget={"bulk_rps": 0})
    run = dag.test(logical_date=end)

    assert run.state == "success"
    assert set(assert_only_quarter_ran(run, 4).values()) == {"success"}
    q_start = end.replace(hour=0)
    year = [q_start.replace(year=q_start.year - 1).date().isoformat(), q_start.date().isoformat()]
    direct = D1Hook().rows(server.d1_id, (SQL / "quarterly/usage_by_month.sql").read_text(), year)
    assert xcom(run, "q4.yearly_review.usage_by_month")["rows"] == direct and direct
    review = s3.read_key(f"reports/prism_quarterly/{label}/review.md", bucket)
    for m in direct:
        assert f"- [x] {m['month']}: {m['requests']:,} requests, {m['tokens_saved']:,} tokens saved" in review
    assert f"<title>PRISM Quarterly Review {label}: yearly review, capacity planning</title>" in s3.read_key(
        f"reports/prism_quarterly/{label}/review.html", bucket
    )
    hook = WorkersAnalyticsHook()
    for month in xcom(run, "q4.yearly_review.monthly_traffic"):
        if month["available"]:
            s, e = (datetime.fromisoformat(month["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
            assert hook.worker_traffic("claudes-friend", s, e)["requests"] == month["requests"]
            assert f"- [x] {month['label']} Worker traffic: {month['requests']:,} requests" in review
        else:
            assert f"- [ ] {month['label']} Worker traffic: unavailable: GraphQL keeps 92 days" in review
    full = [m for m in direct if m["days"] >= 28]
    plan = xcom(run, "q4.capacity_planning.growth_projection")
    assert plan == monthly_growth(direct, end.replace(hour=0))  # projected from the year's end
    assert plan["months"] == [m["month"] for m in full]
    assert f"ai_neurons: {number(plan['ai_neurons']['daily'])} a day" in review
    assert alerts == []

    # A free-tier threshold under today's usage flags the capacity items and alerts once.
    configure({"backups": {"bucket": bucket}, "thresholds": {"free_tier_usage_percent": 1}})
    xcoms = {
        t: xcom(run, t)
        for t in (
            "q4.yearly_review.usage_by_month",
            "q4.yearly_review.monthly_traffic",
            "q4.capacity_planning.growth_projection",
        )
    }
    out = dag.get_task("q4.q4_review").python_callable(**context_for(end, xcoms))
    assert len(out["flagged"]) == 2 and all("[!]" in f for f in out["flagged"])
    assert len(alerts) == 1 and "2 item(s) need attention" in alerts[0]


def test_q1_and_q2_reviews(cf, s3, bucket, airflow_db, dag, alerts):
    for q, title in ((1, "architecture review, security audit"), (2, "performance optimization, scaling review")):
        end = reviewing(q)  # long past: its point-in-time figures are left out, its window's are there
        run = dag.test(logical_date=end)
        assert run.state == "success"
        ran = assert_only_quarter_ran(run, q)
        assert ran.pop("q1.security_audit.npm_audit", "skipped") == "skipped"
        assert set(ran.values()) == {"success"}, ran
        review = s3.read_key(f"reports/prism_quarterly/{end.year}Q{q}/review.md", bucket)
        assert f"# PRISM Quarterly Review {end.year}Q{q}: {title}" in review
        assert review.startswith(
            f"# PRISM Quarterly Review {end.year}Q{q}: {title}\n\nWindow: "
            f"{quarterly_windows(end)['window']['start']} to {end.replace(hour=0).isoformat()} (UTC)\n"
        )
        if q == 1:
            counts = {
                r["type"]: r["n"]
                for r in D1Hook().rows(
                    cf.d1_id,
                    "SELECT type, COUNT(*) AS n FROM security_events WHERE created_at >= ? AND created_at < ? GROUP BY type",
                    quarterly_windows(end)["sql_window"],
                )
            }
            assert f"Failed logins in the quarter: {counts.get('failed_login', 0)} (threshold 300" in review, review
            assert xcom(run, "q1.architecture_review.inventory") is None  # not read, so not shown
            assert "## Architecture review\n\n- Left out: the resources and their row counts" in review
            assert "## npm audit\n\n- Left out: npm audit" in review
            html = s3.read_key(f"reports/prism_quarterly/{end.year}Q1/review.html", bucket)
            for kind, n in counts.items():  # the security events charted with the quarter's counts
                assert f"{kind}: {short_number(n)}</title>" in html and f"| {kind} | {n} |" in review
        else:
            html = s3.read_key(f"reports/prism_quarterly/{end.year}Q2/review.html", bucket)
            for month in xcom(run, "q2.performance_optimization.monthly_traffic"):
                assert (
                    f"{month['label']}: {month['requests']:,} requests"
                    if month["available"]
                    else f"- [ ] {month['label']}: traffic unavailable"
                ) in review
                if month["available"]:
                    assert f"{month['label']}: {short_number(month['requests'])}</title>" in html
            usage = xcom(run, "q2.scaling_review.quarter_usage")
            if usage["available"]:
                assert f"- Window: {usage['window']['start']} to {usage['window']['end']}" in review
            else:  # the quarter's last 30 days have left GraphQL's 31 days of D1/AI/KV analytics
                assert "- [ ] Usage of the quarter: unavailable: GraphQL keeps 31 days" in review
        items = review.count("- [x]"), review.count("- [!]"), review.count("- [ ]")
        assert f"| done | {items[0]} |" in review and f"| needs attention | {items[1]} |" in review
        assert f"| not done | {items[2]} |" in review and "<svg" in html
    assert alerts == []


def test_the_scaling_review_reads_the_quarters_last_30_days_whenever_it_runs(cf, dag):
    """The part of the quarter the scaling review reads follows the quarter alone: its last 30 days (all
    GraphQL keeps of D1/AI/KV a day after it ends); made later than that, it is unavailable, never a
    shorter, different window."""
    end = reviewing(2)
    usage = dag.get_task("q2.scaling_review.quarter_usage").python_callable(**context_for(end))
    stop = end.replace(hour=0)
    if datetime.now(timezone.utc) - stop < timedelta(hours=23):  # the scheduled run, at the quarter's end
        assert usage["available"] and usage["days"] == 30 and usage["note"].startswith("partial")
    else:
        assert usage == {
            "available": False,
            "expired": True,
            "note": "unavailable: GraphQL keeps 31 days of usage analytics, and this window's figures (from "
            f"{stop - timedelta(days=30):%Y-%m-%d %H:%M} UTC) had left them when this report was made",
        }


def test_a_quarter_param_naming_another_quarter_is_refused_before_anything_runs(cf, s3, bucket, airflow_db, alerts):
    dag = load_dag("prism_quarterly")  # its own: a run's conf sticks to the DAG object's params
    end = reviewing(2)
    run = dag.test(logical_date=end, run_conf={"quarter": 3})
    assert run.state == "failed"
    st = states(run)
    assert st.pop("windows") == "failed" and set(st.values()) <= {"upstream_failed", "skipped"}, {
        k: v for k, v in st.items() if v not in ("upstream_failed", "skipped")
    }
    assert not s3.list_keys(bucket)
    assert len(alerts) == 1 and "refusing to run the quarterly review: quarter=3 was given" in alerts[0]
    assert f"{end.year}Q2" in alerts[0] and "Nothing was changed." in alerts[0]
