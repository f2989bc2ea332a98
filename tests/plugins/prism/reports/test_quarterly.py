"""The quarterly review's checklists from given figures: [x] done, [!] needs attention, [ ] not done; one
period throughout (title, key, window, checklist), point-in-time sections only when captured in time."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from prism.reports import quarterly as reviews
from prism.reports.markdown import Live
from prism.reports.periods import quarterly_windows

# The run of 1 October 2026 reviews 2026Q3 (July to September).
WIN = quarterly_windows(datetime(2026, 10, 1, 4, tzinfo=timezone.utc))
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
CAPTURE = {"captured_at": "2026-10-01T04:10:00+00:00", "timely": True}
LATE = {"captured_at": "2026-12-07T10:00:00+00:00", "timely": False}


def rows(*items: dict) -> dict:
    return {"rows": list(items)}


def test_the_review_alerts_once_for_all_flagged_items():
    sections = {"A": ["- [x] fine", "- [!] broken one"], "B": ["- [ ] skipped", "- [!] broken two", "- note"]}
    report = reviews.checklist(WIN, "things", sections)
    assert (report.name, report.period) == ("review", "2026Q3")
    assert report.summary == {"quarter": 3, "flagged": ["- [!] broken one", "- [!] broken two"], "items": 5}
    assert report.alerts == [
        {
            "subject": "quarterly review 2026Q3: 2 item(s) need attention",
            "body": "- [!] broken one\n- [!] broken two",
            "severity": "warning",
        }
    ]
    assert report.text.startswith(
        "# PRISM Quarterly Review 2026Q3: things\n\nWindow: 2026-07-01T00:00:00+00:00 to 2026-10-01T00:00:00+00:00"
    )
    assert reviews.checklist(WIN, "things", {"A": ["- [x] fine"]}).alerts == []
    # A live section counts (and alerts) only when it was captured; the items chart follows what the text shows.
    live = {"A": ["- [x] fine"], "B": Live("the bucket", ["- [!] gone"], "2026-10-01T04:10:00+00:00")}
    assert reviews.checklist(WIN, "things", live).summary["flagged"] == ["- [!] gone"]
    left_out = reviews.checklist(WIN, "things", {**live, "B": Live("the bucket")})
    assert left_out.alerts == [] and "- Left out: the bucket." in left_out.text
    assert "| done | 1 |\n| needs attention | 0 |" in left_out.text


def test_q1_checks_the_architecture_against_the_config_and_failed_logins_against_three_months():
    inventory = {
        "d1": {"name": "db", "bytes": 1_000_000, "tables": 9},
        "vectorize": {"dimensions": 768, "metric": "cosine", "vectors": 5000, "metadata_indexes": ["repo"]},
        "kv": ["prism-cache"],
        "worker": {"versions_in_quarter": 4, "latest_deployment": "dep1"},
    }
    events = rows({"type": "failed_login", "events": 301})
    counts = rows({"table_name": "documents", "row_count": 1200})
    items = reviews.q1_items(CF, THRESHOLDS, inventory, counts, events, None, CAPTURE)
    architecture, security = items["Architecture review"].lines, items["Security audit"]
    assert architecture[0] == "- [x] D1 `db`: 1,000,000 bytes, 9 tables; rows: `documents` 1,200"
    assert architecture[1].startswith("- [!] Vectorize `idx`: 5,000 vectors, 768 dimensions")  # the config says 384
    assert architecture[1].endswith("metadata indexes: `repo`")
    assert architecture[2] == "- [x] KV namespaces: `prism-cache` (config: `prism-cache`)"
    assert architecture[3] == "- [x] Worker `w`: 4 versions in the quarter, latest deployment `dep1`"
    assert security[0] == "- [!] Failed logins in the quarter: 301 (threshold 300: 3 x 100 a month)"
    assert items["npm audit"].lines == [
        "- [ ] npm audit: skipped, no npm project configured (npm.project_dir in the config)"
    ]
    # Made late, the resources were not read (inventory None) and npm audit is left out; the events stay.
    late = reviews.q1_items(CF, THRESHOLDS, None, counts, events, None, LATE)
    assert late["Architecture review"].lines is None and late["npm audit"].lines is None
    assert late["Security audit"] == security


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
    cache = rows({"type": "embedding", "hits_per_entry": 9.0, "total_entries": 2})
    items = reviews.q2_items(CFG, months, None, cache, usage, CAPTURE)
    perf, scaling = items["Performance optimization"], items["Scaling review"]
    assert perf[0] == "- [ ] 2026-04: traffic unavailable: too old"
    assert perf[1] == "- [!] 2026-05: 9,000 requests, error rate 0.1%, p95 1,200 ms"
    assert perf[2] == "- [x] No queries logged in the quarter"
    assert items["Cache effectiveness"].lines == ["- [x] Cache `embedding`: 9 hits per entry over 2 entries"]
    assert scaling[0] == "- [!] worker_requests: 90,000 a day, 90% of the free tier's 100,000"
    assert scaling[1].startswith("- [x] ai_neurons: 100 a day, 1% of")
    assert [line.split(":")[0][6:] for line in scaling[:-1]] == list(reviews.SCALING_RESOURCES)
    assert scaling[-1] == "- Window: s to e"
    gone = reviews.q2_items(CFG, [], None, None, {"available": False, "note": "unavailable: old"}, LATE)
    assert gone["Scaling review"] == ["- [ ] Usage of the quarter: unavailable: old"]
    assert gone["Cache effectiveness"].lines is None


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
    items = reviews.q3_items(inventory, None, None, None, npm, CAPTURE)
    assert items["Dependency audit"].lines == ["- [x] npm audit: `npm audit` exited 0"]
    assert items["Backup testing"].lines == [
        "- [!] Months without a complete monthly set: 202605",
        "- [x] monthly/202604: verified",
        "- [!] monthly/202606: checksummed",
        "- [!] Daily sets of the quarter: 3 (20260401 to 20260630); not verified: 20260415 incomplete (objects without a "
        "manifest: an interrupted backup); 20260630 failed",
        "- Sets by status: checksummed 1, failed 1, incomplete 1, verified 2",
        "- [ ] Restore drill: not run (Param run_restore_drill is off, or inside a backfill)",
    ]
    report = reviews.checklist(WIN, "dependency audit, backup testing", items)
    bars = next(c for c in report.compose()[1] if c["title"] == "Backup sets of the quarter by status")
    assert bars["table"] == [("checksummed", 1), ("failed", 1), ("incomplete", 1), ("verified", 2)]
    late = reviews.checklist(
        WIN, "dependency audit, backup testing", reviews.q3_items(None, None, None, None, npm, LATE)
    )
    assert [c["title"] for c in late.compose()[1]] == ["Checklist items"] and late.alerts == []
    good = {"daily": inventory["daily"][:1], "monthly": inventory["monthly"][:1], "missing_monthly": []}
    assert reviews.backup_inventory_items(good) == [
        "- [x] Every month of the quarter has a complete monthly set",
        "- [x] monthly/202604: verified",
        "- [x] Daily sets of the quarter: 1 (20260401 to 20260401), all complete and verified",
        "- Sets by status: verified 2",
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
        WIN, "dependency audit, backup testing", reviews.q3_items(None, CHOSEN, failed, [], None, CAPTURE)
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
    assert capacity[0] == (
        "- [!] worker_requests: 85,000 a day (85% of 100,000), growth n/a a month, limit reached: no trend: a single "
        "window of data"
    )
    assert capacity[1].startswith("- [x] ai_neurons: n/a a day") and capacity[1].endswith("limit reached: no data")
    assert capacity[2].startswith("- From PRISM's usage log (1 complete months: 2026-01)")
    assert reviews.q4_items(80, None, [], {"months": []})["Yearly review"] == ["- [ ] No usage logged in the year"]


REPR = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|\d+\.0\b|\d\.\d{5,}")


def test_no_python_repr_or_float_count_in_any_review():
    inventory = {
        "d1": {"name": "db", "bytes": 1_000_000, "tables": 9},
        "vectorize": {"dimensions": 384, "metric": "cosine", "vectors": 5000.0, "metadata_indexes": []},
        "kv": [],
        "worker": {"versions_in_quarter": 0, "latest_deployment": None},
    }
    month = {
        "label": "2026-08",
        "available": True,
        "note": "",
        "requests": 50.0,
        "error_rate_percent": 0.0,
        "wall_time_ms": {"p95": 50.0},
    }
    usage = {
        "available": True,
        "note": "",
        "days": 30.0,
        "window": {"start": "s", "end": "e"},
        "totals": dict.fromkeys(reviews.SCALING_RESOURCES, 3000.0),
    }
    plan = {
        "months": [],
        "worker_requests": {"daily": 50.0, "percent_of_limit": 0.05, "growth_month_percent": 2.0, "reaches_limit": "x"},
        "ai_neurons": {"daily": None, "growth_month_percent": None, "reaches_limit": "no data"},
    }
    slow = rows({"query": "SELECT 1", "avg_duration_ms": 12.0, "runs": 3.0})
    cache = rows({"type": "e", "hits_per_entry": 2.0, "total_entries": 4.0})
    usage_log = rows({"month": "2026-08", "requests": 10.0, "tokens_saved": 0.0, "neurons_used": 7.0, "days": 31.0})
    drill = {**DRILL, "kv_keys": 42.0, "d1": {**DRILL["d1"], "tables": {"documents": 1200.0}, "rows_sampled": 10.0}}
    for sections in (
        reviews.q1_items(CF, THRESHOLDS, inventory, rows({"table_name": "t", "row_count": 3.0}), None, None, CAPTURE),
        reviews.q2_items(CFG, [month], slow, cache, usage, CAPTURE),
        reviews.q3_items({"daily": [], "monthly": [], "missing_monthly": []}, CHOSEN, drill, None, None, CAPTURE),
        reviews.q4_items(80, usage_log, [month], plan),
    ):
        text = reviews.checklist(WIN, "t", sections).text
        assert not REPR.search(text), REPR.search(text).group(0) + "\n" + text


def test_one_period_for_past_present_and_future_quarters():
    """Title, key, window, checklist quarter and the months of the figures all name the same quarter, the
    last one that ended by the run's date, whatever that date is."""
    now = datetime.now(timezone.utc)
    for end, label in (
        (datetime(2019, 4, 1, 4, tzinfo=timezone.utc), "2019Q1"),  # a past quarter's scheduled run
        (datetime(2026, 10, 1, 4, tzinfo=timezone.utc), "2026Q3"),
        (datetime(2027, 1, 1, 4, tzinfo=timezone.utc), "2026Q4"),  # the year's last quarter
        (datetime(2031, 7, 1, 4, tzinfo=timezone.utc), "2031Q2"),  # a future one
        (datetime(2026, 8, 15, 12, tzinfo=timezone.utc), "2026Q2"),  # a manual run inside a quarter
        (now, None),  # a manual run now: the quarter that ended last
    ):
        w = quarterly_windows(end)
        start, stop = (datetime.fromisoformat(w["window"][k]) for k in ("start", "end"))
        assert stop <= end < stop.replace(year=stop.year + (stop.month > 9), month=(stop.month + 2) % 12 + 1)
        quarter = (start.month - 1) // 3 + 1
        assert w["label"] == f"{start.year}Q{quarter}" == (label or w["label"]) and w["quarter"] == quarter
        assert [m["label"][:4] for m in w["months"]] == [str(start.year)] * 3
        assert w["months"][0]["start"] == w["window"]["start"] and w["months"][-1]["end"] == w["window"]["end"]
        assert w["year"]["end"] == w["window"]["end"]
        report = reviews.checklist(w, "t", {"A": ["- [x] a"]})
        assert (report.period, report.window, report.summary["quarter"]) == (w["label"], (start, stop), quarter)
        assert report.title == f"PRISM Quarterly Review {w['label']}: t"
        assert report.text.count(w["label"]) == 1  # stated once: in the title


def test_a_quarter_param_that_disagrees_with_the_window_is_explained():
    from prism.reports.periods import quarter_mismatch

    w = quarterly_windows(datetime(2026, 10, 1, 4, tzinfo=timezone.utc))
    assert quarter_mismatch(w, None) is None and quarter_mismatch(w, 3) is None
    why = quarter_mismatch(w, 2)
    assert why.startswith("quarter=2 was given, but this run's data interval (ending 2026-10-01) reviews 2026Q3")
    assert "to review Q2 (2026Q2), trigger a run with the logical date 2026-07-01T04:00:00+00:00" in why
    assert "logical date 2026-01-01T04:00:00+00:00" in quarter_mismatch(w, 4)  # 2025Q4: the latest Q4 before
    assert quarterly_windows(datetime(2026, 7, 1, 4, tzinfo=timezone.utc))["label"] == "2026Q2"
