"""The quarterly review's checklists from given figures: [x] done, [!] needs attention, [ ] not done."""

from __future__ import annotations

from datetime import datetime, timezone

from prism.reports import quarterly as reviews
from prism.reports.periods import quarterly_windows

WIN = quarterly_windows(datetime(2026, 7, 1, 4, tzinfo=timezone.utc))
THRESHOLDS = {
    "error_rate_percent": 0.5,
    "p95_latency_ms": 1000,
    "free_tier_usage_percent": 80,
    "failed_logins_per_month": 100,
}
CFG = {"thresholds": THRESHOLDS, "retention": {"cache_low_hit_count": 5}}
CF = {
    "d1_database": "db",
    "vectorize_index": "idx",
    "vectorize_dimensions": 384,
    "vectorize_metric": "cosine",
    "kv_namespace": "prism-cache",
    "worker_name": "w",
}
LABELS = {"logical_date": "2026-07-01T04:00:00+00:00", "captured_at": "2026-07-01T04:10:00+00:00", "in_backfill": False}


def rows(*items: dict) -> dict:
    return {"rows": list(items)}


def test_the_review_alerts_once_for_all_flagged_items():
    sections = {"A": ["- [x] fine", "- [!] broken one"], "B": ["- [ ] skipped", "- [!] broken two", "- note"]}
    report = reviews.checklist(WIN, "things", sections, LABELS)
    assert (report.name, report.period) == ("review", "2026Q3")
    assert report.summary == {"flagged": ["- [!] broken one", "- [!] broken two"], "items": 5}
    assert report.alerts == [
        {
            "subject": "quarterly review 2026Q3: 2 item(s) need attention",
            "body": "- [!] broken one\n- [!] broken two",
            "severity": "warning",
        }
    ]
    assert report.text.startswith(
        "# PRISM Quarterly Review 2026Q3: things\n\nWindow: 2026-04-01T00:00:00+00:00 to 2026-07-01"
    )
    assert reviews.checklist(WIN, "things", {"A": ["- [x] fine"]}, LABELS).alerts == []


def test_q1_checks_the_architecture_against_the_config_and_failed_logins_against_three_months():
    inventory = {
        "d1": {"name": "db", "bytes": 1_000_000, "tables": 9},
        "vectorize": {"dimensions": 768, "metric": "cosine", "vectors": 5000, "metadata_indexes": ["repo"]},
        "kv": ["prism-cache"],
        "worker": {"versions_in_quarter": 4, "latest_deployment": "dep1"},
    }
    items = reviews.q1_items(
        CF,
        THRESHOLDS,
        inventory,
        rows({"table_name": "documents", "row_count": 1200}),
        rows({"type": "failed_login", "events": 301}),
        None,
    )
    architecture, security = items["Architecture review"], items["Security audit"]
    assert architecture[0] == "- [x] D1 db: 1,000,000 bytes, 9 tables; rows: documents 1,200"
    assert architecture[1].startswith("- [!] Vectorize idx: 5,000 vectors, 768 dimensions")  # the config says 384
    assert architecture[2].startswith("- [x] KV namespaces")
    assert security[0] == "- [!] Failed logins in the quarter: 301 (threshold 300: 3 x 100 a month)"
    assert security[-1] == "- [ ] npm audit: skipped, no npm project configured (npm.project_dir in the config)"


def test_q2_flags_slow_months_and_resources_near_the_free_tier():
    months = [
        {"label": "2026-04", "available": False, "note": "unavailable: too old"},
        {
            "label": "2026-05",
            "available": True,
            "note": "",
            "requests": 9000,
            "error_rate_percent": 0.1,
            "wall_time_ms": {"p95": 1200.0},
        },
    ]
    usage = {
        "available": True,
        "note": "",
        "days": 30.0,
        "window": {"start": "s", "end": "e"},
        "totals": {
            "worker_requests": 2_700_000,
            "ai_neurons": 3000,
            "d1_rows_read": 0,
            "d1_rows_written": 0,
            "kv_reads": 0,
            "kv_writes": 0,
        },
    }
    items = reviews.q2_items(
        CFG, months, None, rows({"type": "embedding", "hits_per_entry": 9.0, "total_entries": 2}), usage
    )
    perf, scaling = items["Performance optimization"], items["Scaling review"]
    assert perf[0] == "- [ ] 2026-04: traffic unavailable: too old"
    assert perf[1] == "- [!] 2026-05: 9,000 requests, error rate 0.1%, p95 1200.0 ms"
    assert perf[2] == "- [x] No queries logged in the quarter" and perf[3].startswith("- [x] Cache embedding: 9.00")
    assert scaling[0] == "- [!] worker_requests: 90,000 a day, 90.0% of the free tier's 100,000"
    assert scaling[1].startswith("- [x] ai_neurons: 100 a day, 1.0%")
    assert [line.split(":")[0][6:] for line in scaling[:-1]] == list(reviews.SCALING_RESOURCES)
    assert scaling[-1] == "- Window: s to e"
    gone = reviews.q2_items(CFG, [], None, None, {"available": False, "note": "unavailable: old"})["Scaling review"]
    assert gone == ["- [ ] Usage of the last 30 days: unavailable: old"]


def test_q3_lists_the_quarters_sets_and_flags_what_is_missing_incomplete_or_unverified():
    inventory = {
        "daily": [
            {"period": "20260401", "complete": True, "status": "verified"},
            {"period": "20260415", "complete": False, "status": None},
            {"period": "20260630", "complete": True, "status": "failed"},
        ],
        "monthly": [
            {"period": "202604", "complete": True, "status": "verified"},
            {"period": "202606", "complete": True, "status": "checksummed"},
        ],
        "missing_monthly": ["202605"],
    }
    npm = {"command": ["npm", "audit"], "returncode": 0}
    items = reviews.q3_items(inventory, None, None, None, npm)
    assert items["Dependency audit"] == ["- [x] npm audit: `npm audit` exited 0"]
    assert items["Backup testing"] == [
        "- [!] Months without a complete monthly set: 202605",
        "- [x] monthly/202604: verified",
        "- [!] monthly/202606: checksummed",
        "- [!] Daily sets of the quarter: 3 (20260401 to 20260630); not verified: 20260415 incomplete (objects without a "
        "manifest: an interrupted backup); 20260630 failed",
        "- [ ] Restore drill: not run (Param run_restore_drill is off, or inside a backfill)",
    ]
    good = {"daily": inventory["daily"][:1], "monthly": inventory["monthly"][:1], "missing_monthly": []}
    assert reviews.backup_inventory_items(good) == [
        "- [x] Every month of the quarter has a complete monthly set",
        "- [x] monthly/202604: verified",
        "- [x] Daily sets of the quarter: 1 (20260401 to 20260401), all complete and verified",
    ]
    assert reviews.backup_inventory_items({"daily": [], "monthly": [], "missing_monthly": []})[-1] == (
        "- [!] Daily sets of the quarter: 0"
    )
    assert reviews.backup_inventory_items(None)[0].startswith("- [!] Backup sets of the quarter: not listed")


CHOSEN = {"bucket": "b", "cadence": "daily", "period": "20261129", "token": "ab12", "scratch": "prism-verify-ab12"}
DRILL = {
    "period": "20261129",
    "captured_at": "2026-11-29T09:01:00+00:00",
    "status": "verified",
    "kv_keys": 42,
    "problems": [],
    "notes": ["kv: 1 of 5 sampled keys differ in the source now"],
    "d1": {"tables": {"documents": 1200, "repos": 3, "empty": 0}, "quick_check": ["ok"], "rows_sampled": 10},
    "vectorize": {"vector_count": 5000, "vectors_sampled": 5},
}


def test_q3_reports_the_drill_with_its_figures_or_flags_it():
    lines = reviews.restore_drill_items(CHOSEN, DRILL, [])
    assert lines == [
        "- [x] Restore drill of daily/20261129: verified (recorded in its manifest); captured 2026-11-29T09:01:00+00:00; "
        "D1: 3 tables, 1,203 rows restored, quick_check ok, 10 sampled rows equal to the dump; Vectorize: 5,000 vectors "
        "restored, 5 sampled vectors compared; KV: 42 keys in the set",
        "  - note: kv: 1 of 5 sampled keys differ in the source now",
        "- [x] Scratch resources prism-verify-ab12: none left",
    ]
    failed = {
        **DRILL,
        "status": "failed",
        "problems": ["kv: s3://b/daily/20261129/kv.ndjson.gz has sha256 x, the manifest says y"],
        "notes": [],
        "d1": None,
        "vectorize": None,
    }
    lines = reviews.restore_drill_items(CHOSEN, failed, ["d1:prism-verify-ab12"])
    assert lines[0] == (
        "- [!] Restore drill of daily/20261129: FAILED (recorded in its manifest); captured "
        "2026-11-29T09:01:00+00:00; KV: 42 keys in the set"
    )
    assert lines[1] == "  - problem: kv: s3://b/daily/20261129/kv.ndjson.gz has sha256 x, the manifest says y"
    assert (
        lines[2] == "- [x] Scratch resources prism-verify-ab12: none left (the teardown deleted d1:prism-verify-ab12)"
    )
    # A drill that died before it recorded anything, and a teardown that did not finish, need attention.
    assert reviews.restore_drill_items(CHOSEN, None, None) == [
        "- [!] Restore drill of daily/20261129: did not finish (no result recorded; see the task's log)",
        "- [!] Scratch resources prism-verify-ab12: the teardown did not finish; check for leftovers",
    ]
    # No complete set at all: flagged, nothing else to say.
    assert reviews.restore_drill_items({**CHOSEN, "cadence": None, "period": None}, None, []) == [
        "- [!] Restore drill: no complete daily or monthly backup set in the bucket to test"
    ]
    report = reviews.checklist(
        WIN, "dependency audit, backup testing", reviews.q3_items(None, CHOSEN, failed, [], None), LABELS
    )
    assert len(report.alerts) == 1 and "Restore drill of daily/20261129: FAILED" in report.alerts[0]["body"]


def test_q4_lists_the_year_and_flags_resources_near_their_limit():
    usage = rows({"month": "2026-01", "requests": 90_000, "tokens_saved": 5000, "neurons_used": 300, "days": 31})
    traffic = [{"label": "2026-06", "available": False, "note": "unavailable: GraphQL keeps 92 days"}]
    plan = {
        "months": ["2026-01"],
        "worker_requests": {
            "daily": 85_000.0,
            "limit": 100_000,
            "percent_of_limit": 85.0,
            "growth_month_percent": None,
            "reaches_limit": "no trend: a single window of data",
        },
        "ai_neurons": {"daily": None, "growth_month_percent": None, "reaches_limit": "no data"},
    }
    items = reviews.q4_items(80, usage, traffic, plan)
    assert items["Yearly review"] == [
        "- [x] 2026-01: 90,000 requests, 5,000 tokens saved, 300 neurons (31 days logged)",
        "- [ ] 2026-06 Worker traffic: unavailable: GraphQL keeps 92 days",
    ]
    capacity = items["Capacity planning"]
    assert capacity[0].startswith("- [!] worker_requests: 85000.0 a day (85.0% of 100,000)")
    assert capacity[1].startswith("- [x] ai_neurons: None a day") and capacity[1].endswith("limit reached: no data")
    assert capacity[2].startswith("- From PRISM's usage log (1 complete months: 2026-01)")
    assert reviews.q4_items(80, None, [], {"months": []})["Yearly review"] == ["- [ ] No usage logged in the year"]
