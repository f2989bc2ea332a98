"""The monthly calendar's reports from given figures: what they say, what they alert, what they return."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from prism.reports import monthly as monthly_reports
from prism.reports.periods import monthly_windows

END = datetime(2026, 3, 28, 3, tzinfo=timezone.utc)
WIN = monthly_windows(END)
THRESHOLDS = {
    "error_rate_percent": 0.5,
    "p95_latency_ms": 1000,
    "free_tier_usage_percent": 80,
    "failed_logins_per_month": 100,
}
CFG = {"thresholds": THRESHOLDS, "retention": {"cache_low_hit_count": 5}}
CAPTURE = {"captured_at": "2026-03-28T03:05:00+00:00", "timely": True}
LATE = {"captured_at": "2026-05-02T10:00:00+00:00", "timely": False}
TRAFFIC = {
    "available": True,
    "note": "",
    "window": {"start": "a", "end": "b"},
    "requests": 10_000,
    "errors": 10,
    "error_rate_percent": 0.1,
    "wall_time_ms": {"p50": 20.0, "p95": 200.0, "p99": 400.0},
}
USAGE = {
    "available": True,
    "note": "",
    "days": 30.0,
    "window": {"start": "a", "end": "b"},
    "ai": {"neurons": 3000},
    "d1": {"rowsRead": 60_000, "rowsWritten": 600},
    "kv": {"read": 300, "write": 30},
}


def rows(*items: dict) -> dict:
    return {"rows": list(items)}


def test_performance_recommends_only_what_the_figures_call_for():
    metrics = {
        "tokens": {"saved": 1_500_000, "cost_saved_usd": 12.5},
        "cache": {"hit_rate": 72.0},
        "window": {"start": "x", "end": "y"},
        "capture": CAPTURE,
    }
    report = monthly_reports.performance(TRAFFIC, metrics, WIN["previous_month"], THRESHOLDS)
    assert (report.name, report.period, report.alerts) == ("performance", "202602", [])
    assert report.title == "PRISM Performance Report - 2026-02"
    assert report.text.startswith(
        "# PRISM Performance Report - 2026-02\n\nWindow: 2026-02-01T00:00:00+00:00 to 2026-03-01T00:00:00+00:00 (UTC)\n"
    )
    assert "Tokens saved: 1,500,000" in report.text and "Captured at 2026-03-28T03:05:00+00:00" in report.text
    assert report.summary["recommendations"] == ["- No action needed: latency and error rate are within the targets."]
    assert report.summary["success_rate_percent"] == 99.9
    assert "P95 latency: 200 ms (p50 20 ms, p99 400 ms)" in report.text and "Success rate: 99.9%" in report.text

    slow = {**TRAFFIC, "error_rate_percent": 2.0, "wall_time_ms": {"p95": 1500.0}}
    cold = {**metrics, "cache": {"hit_rate": 20.0}}
    recs = monthly_reports.performance(slow, cold, WIN["previous_month"], THRESHOLDS).summary["recommendations"]
    assert [r.split(" ")[1] for r in recs] == ["P95", "Error", "Recommendation:"]
    assert "cache hit rate 20% is under 50%" in recs[-1]


def test_performance_made_late_leaves_the_workers_live_figures_out():
    """A run after the month's end (a backfill, a late re-run) reads no /metrics: its task gives only the capture."""
    report = monthly_reports.performance(TRAFFIC, {"capture": LATE}, WIN["previous_month"], THRESHOLDS)
    assert "Tokens saved" not in report.text and "Captured at" not in report.text
    assert "- Left out: the Worker's /metrics (its last 30 days). These are point-in-time figures" in report.text
    assert report.summary["tokens_saved"] is None and report.summary["live_captured"] is False
    assert "2026-05-02" not in report.text  # nothing of when the late run ran


def test_security_alerts_above_the_failed_login_threshold_and_on_npm_findings():
    events = rows({"type": "failed_login", "events": 101}, {"type": "unauthorized", "events": 4})
    abuse = rows({"api_key_id": "k1", "events": 3, "sources": 2, "last_seen": "2026-03-20"})
    npm = {"command": ["npm", "audit"], "returncode": 1, "output": "1 high"}
    report = monthly_reports.security(WIN, THRESHOLDS, events, abuse, npm, CAPTURE)
    assert (report.name, report.period) == ("security", "20260328")
    assert [a["subject"] for a in report.alerts] == [
        "101 failed logins in the 30 days to 2026-03-28 (threshold 100)",
        "npm audit reports vulnerabilities",
    ]
    assert report.summary == {
        "failed_login": 101,
        "api_key_abuse": 0,
        "unauthorized": 4,
        "forbidden": 0,
        "rate_limited": 0,
        "failed_login_threshold": 100,
        "alerted": True,
        "abused_keys": 1,
    }
    assert "ABOVE THE THRESHOLD" in report.text and "`k1`: 3 events from 2 sources" in report.text
    assert "- `npm audit` exited 1 (findings at or above the audit level)" in report.text

    quiet = monthly_reports.security(
        WIN, THRESHOLDS, rows({"type": "failed_login", "events": 100}), None, None, CAPTURE
    )
    assert quiet.alerts == [] and "Skipped: no npm project configured" in quiet.text
    late = monthly_reports.security(WIN, THRESHOLDS, events, abuse, npm, LATE)
    assert "exited 1" not in late.text and "- Left out: npm audit" in late.text


def test_optimization_reports_what_d1_allows_and_alerts_on_a_failed_quick_check():
    figures = {
        "analyze": {"rows": []},
        "quick_check": rows({"quick_check": "ok"}),
        "query_plan": rows({"detail": "SEARCH document_chunks USING INDEX idx_chunks_document (document_id=?)"}),
        "slow_queries": rows({"query": "SELECT 1", "avg_duration_ms": 1200.0, "max_duration_ms": 2000.0, "runs": 3}),
        "cache_effectiveness": rows({"type": "embedding", "total_hits": 8, "total_entries": 4, "hits_per_entry": 2.0}),
        "index_usage": rows({"name": "idx_chunks_document", "tbl_name": "document_chunks"}),
    }
    report = monthly_reports.optimization(WIN, CFG, figures, CAPTURE)
    assert report.alerts == [] and report.summary == {
        "quick_check": ["ok"],
        "chunk_lookup_uses_index": True,
        "slow_queries": 1,
        "slowest_avg_ms": 1200.0,
        "cache_types": {"embedding": 8},
        "indexes": 1,
    }
    assert "slower than the latency target" in report.text and "under 5 hits per entry" in report.text

    broken = monthly_reports.optimization(
        WIN,
        CFG,
        {
            **figures,
            "quick_check": rows({"quick_check": "row 3 missing"}),
            "query_plan": rows({"detail": "SCAN document_chunks"}),
        },
        CAPTURE,
    )
    assert broken.alerts == [{"subject": "D1 quick_check found problems", "body": "row 3 missing"}]
    assert "NO INDEX USED" in broken.text
    # Inside a backfill the index optimization did not run: nothing to check, nothing to alert.
    skipped = monthly_reports.optimization(
        WIN, CFG, {**figures, "analyze": None, "quick_check": None, "query_plan": None}, LATE
    )
    assert skipped.alerts == [] and "- Left out: index optimization" in skipped.text
    assert "- Left out: the cache's hit counts" in skipped.text and "embedding" not in skipped.text
    assert "1,200 ms average, 2,000 ms max, 3 runs: `SELECT 1`" in skipped.text  # the window's slow queries stay


def test_log_review_alerts_when_the_month_to_date_crosses_a_threshold():
    events = rows(
        {"type": "failed_login", "events": 2}, {"type": "forbidden", "events": 3}, {"type": "rate_limited", "events": 7}
    )
    report = monthly_reports.log_review(WIN, THRESHOLDS, TRAFFIC, events)
    assert report.alerts == [] and report.summary["failed_auth"] == 5 and report.summary["rate_limited"] == 7
    hot = monthly_reports.log_review(WIN, {**THRESHOLDS, "p95_latency_ms": 100}, TRAFFIC, None)
    assert hot.summary["findings"] == ["p95 latency 200 ms is above 100 ms"]
    assert hot.alerts == [
        {
            "subject": "monthly log review (2026-03 to date): p95 latency 200 ms is above 100 ms",
            "severity": "warning",
            "investigations": ["slow_performance"],
        }
    ]
    gone = monthly_reports.log_review(WIN, THRESHOLDS, {"available": False, "note": "unavailable: old"}, None)
    assert gone.alerts == [] and "- Traffic figures unavailable: old" in gone.text


def test_resources_compare_storage_with_the_free_tier():
    cf = {"vectorize_index": "idx"}
    live = {
        "d1": {"name": "db", "uuid": "u1", "file_size": 450_000_000, "num_tables": 9},
        "vectorize": {"vectorCount": 1000, "dimensions": 384},
        "kv": [{"title": "prism-cache", "id": "ns1"}],
        "deployments": [{"id": "d1", "created_on": "2026-03-01", "versions": [{"version_id": "v9"}]}],
    }
    report = monthly_reports.resources(WIN, cf, 80, live, CAPTURE)
    assert report.summary["percent_of_free_tier"] == {"d1_database_bytes": 90.0, "vectorize_stored_dimensions": 7.68}
    assert report.alerts == [
        {
            "subject": "free-tier storage above 80%: d1_database_bytes 90%",
            "severity": "warning",
            "investigations": ["resource_exhaustion"],
        }
    ]
    assert report.summary["latest_deployment"] == "d1" and "Captured at 2026-03-28T03:05:00" in report.text
    assert "- `db` (`u1`): 450,000,000 bytes, 9 tables (90% of the 500 MB free-tier database size)" in report.text
    assert "- `d1` created 2026-03-01 by `unknown`: versions `v9`" in report.text
    assert monthly_reports.resources(WIN, cf, 95, {**live, "deployments": []}, CAPTURE).alerts == []
    late = monthly_reports.resources(WIN, cf, 80, None, LATE)
    assert late.alerts == [] and late.summary == {"captured": False}
    assert late.text.count("- Left out: the resources as they are now.") == 4 and "450" not in late.text


def test_month_usage_reports_daily_rates_against_the_free_tier():
    report = monthly_reports.month_usage(WIN, {"traffic": TRAFFIC, "usage": USAGE})
    assert (report.name, report.period) == ("monthly_report", "202603")
    assert report.summary["totals"]["ai_neurons"] == 3000
    assert "- ai_neurons: 3,000 (100 a day; free tier 10,000 a day)" in report.text
    none = monthly_reports.month_usage(
        WIN, {"traffic": TRAFFIC, "usage": {"available": False, "note": "unavailable: old"}}
    )
    assert "- Usage figures unavailable: old" in none.text and "ai_neurons" not in none.summary["totals"]


def test_capacity_alerts_for_resources_near_their_daily_limit():
    def window(days_back: int, requests: int) -> dict:
        start, end = END - timedelta(days=days_back), END - timedelta(days=days_back - 30)
        return {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "traffic": {**TRAFFIC, "requests": requests, "days": 30},
            "usage": {"available": False, "note": "gone"},
        }

    figures = {"windows": [window(90, 2_400_000), window(60, 2_400_000), window(30, 2_460_000)], "halves": []}
    report = monthly_reports.capacity(WIN, figures, 80)
    assert report.summary["alerted"] == ["worker_requests"]  # 82,000 a day of 100,000
    assert report.alerts[0]["subject"] == "free-tier daily usage at or above 80%: worker_requests 82%"
    assert report.alerts[0]["investigations"] == ["resource_exhaustion"]
    assert "| worker_requests | 82,000 | 100,000 | 82% |" in report.text and "- gone" in report.text
    assert monthly_reports.capacity(WIN, figures, 90).alerts == []

    # The growth trend of each resource, charted with its projection to the limit date.
    plan = report.summary["plan"]["worker_requests"]
    growth = (82_000 / 80_000) ** (30 / 60) - 1  # window middles 60 days apart
    reached = (END + timedelta(days=30 * math.log(100_000 / 82_000) / math.log(1 + growth))).date().isoformat()
    assert plan["growth_30d_percent"] == round(100 * growth, 2) and plan["reaches_limit"] == reached
    assert "paid" not in plan  # Workers Paid sets no request limit
    chart = next(c for c in report.charts if c["title"].startswith("worker_requests"))
    assert (
        "<svg" in chart["svg"]
        and f"reached around {reached[:7]} ({reached}, in" in _svg_text(chart["svg"])  # the date in words
        and 'stroke-dasharray="6 4"' in chart["svg"]
    )
    assert ("free-tier limit reached", reached) in chart["table"]
    assert [row for row in chart["table"] if row[1].endswith("a day")] == [
        ("2026-01-12", "80,000 a day"),
        ("2026-02-11", "80,000 a day"),
        ("2026-03-13", "82,000 a day"),
    ]
    assert len(report.charts) == len(plan_names := report.summary["plan"]) and "kv_writes" in plan_names


def test_performance_charts_requests_errors_and_p95_per_day():
    daily = [
        {"date": "2026-02-01", "requests": 4000, "errors": 8, "p95_ms": 310.5},
        {"date": "2026-02-02", "requests": 4200, "errors": 12, "p95_ms": 1200.0},
    ]
    metrics = {
        "tokens": {"saved": 1, "cost_saved_usd": 0.0},
        "cache": {"hit_rate": 72.0},
        "window": {"start": "x", "end": "y"},
        "capture": CAPTURE,
    }
    report = monthly_reports.performance({**TRAFFIC, "daily": daily}, metrics, WIN["previous_month"], THRESHOLDS)
    volume, p95 = report.charts
    assert volume["table"] == [("2026-02-01", "4,000 requests, 8 errors"), ("2026-02-02", "4,200 requests, 12 errors")]
    assert p95["table"] == [("2026-02-01", "310.5 ms"), ("2026-02-02", "1,200 ms")]
    assert "target 1,000" in p95["svg"]  # the p95 target drawn as a line
    assert monthly_reports.performance(TRAFFIC, metrics, WIN["previous_month"], THRESHOLDS).charts == []


def test_security_charts_events_by_type():
    events = rows({"type": "failed_login", "events": 150}, {"type": "rate_limited", "events": 30})
    report = monthly_reports.security(WIN, THRESHOLDS, events, None, None, CAPTURE)
    (chart,) = report.charts
    assert chart["table"] == [
        ("failed_login", 150),
        ("api_key_abuse", 0),
        ("unauthorized", 0),
        ("forbidden", 0),
        ("rate_limited", 30),
    ]
    assert "failed_login: 150" in chart["svg"] and "#dc2626" in chart["svg"]  # above the threshold: red


REPR = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|\d+\.0\b|\d\.\d{5,}")


def test_no_python_repr_or_float_count_in_any_report():
    """Figures arrive as floats or None from JSON and GraphQL: every report shows them as a person reads them."""
    floaty = {**TRAFFIC, "requests": 10_000.0, "errors": 10.0, "error_rate_percent": 0.0, "wall_time_ms": {"p95": 50.0}}
    daily = [{"date": "2026-02-01", "requests": 50.0, "errors": 0.0, "p95_ms": 50.0}]
    metrics = {
        "tokens": {"saved": 50.0, "cost_saved_usd": 1.0},
        "cache": {"hit_rate": 50.0},
        "window": {"start": "x", "end": "y"},
        "capture": CAPTURE,
    }
    events = rows({"type": "failed_login", "events": 3.0})
    abuse = rows({"api_key_id": "k1", "events": 3.0, "sources": 2.0, "last_seen": "2026-03-20"})
    figures = {
        "analyze": {"rows": []},
        "quick_check": rows({"quick_check": "ok"}),
        "query_plan": rows({"detail": "SEARCH document_chunks USING INDEX i (document_id=?)"}),
        "slow_queries": rows({"query": "SELECT 1", "avg_duration_ms": 12.0, "max_duration_ms": 20.0, "runs": 3.0}),
        "cache_effectiveness": rows({"type": "e", "total_hits": 8.0, "total_entries": 4.0, "hits_per_entry": 2.0}),
        "index_usage": rows({"name": "i", "tbl_name": "t"}),
    }
    live = {
        "d1": {"name": "db", "uuid": "u1", "file_size": 50.0, "num_tables": 9.0},
        "vectorize": {"vectorCount": 1000.0, "dimensions": 384.0},
        "kv": [],
        "deployments": [{"id": "d1", "created_on": None, "author_email": None, "versions": []}],
    }
    usage = {**USAGE, "days": 30.0, "ai": {"neurons": 3000.0}, "d1": {"rowsRead": 60.0, "rowsWritten": 6.0}}
    window = {"start": (END - timedelta(days=30)).isoformat(), "end": END.isoformat()}
    capacity = {"windows": [{**window, "traffic": {**floaty, "days": 30.0}, "usage": usage}], "halves": []}
    reports = [
        monthly_reports.performance({**floaty, "daily": daily}, metrics, WIN["previous_month"], THRESHOLDS),
        monthly_reports.performance(floaty, {"capture": LATE}, WIN["previous_month"], THRESHOLDS),
        monthly_reports.security(WIN, THRESHOLDS, events, abuse, None, CAPTURE),
        monthly_reports.optimization(WIN, CFG, figures, CAPTURE),
        monthly_reports.log_review(WIN, THRESHOLDS, floaty, events),
        monthly_reports.resources(WIN, {"vectorize_index": "idx"}, 80, live, CAPTURE),
        monthly_reports.month_usage(WIN, {"traffic": floaty, "usage": usage}),
        monthly_reports.capacity(WIN, capacity, 80),
    ]
    for report in reports:
        text = report.text
        assert not REPR.search(text), f"{report.name}: {REPR.search(text).group(0)}\n{text}"
        assert text.startswith(f"# {report.title}\n\nWindow: {report.window[0].isoformat()} to ")


def _svg_text(svg: str) -> str:
    """An SVG's words as a reader sees them, wrapped lines joined."""
    return " ".join(re.sub(r"<[^>]+>", " ", svg).split())
