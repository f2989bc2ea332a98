"""GraphQL windows: cut to what GraphQL keeps, with a note, and the figures equal GraphQL's own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from prism.monitoring.analytics_windows import (
    FREE_TIER_DAILY,
    graphql_window,
    resource_totals,
    totals_in,
    traffic_in,
    usage_in,
)

UTC = timezone.utc
NOW = datetime(2026, 6, 1, tzinfo=UTC)
WORKER = "claudes-friend"


def test_a_window_graphql_no_longer_keeps_is_unavailable():
    win, note = graphql_window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), "usage", now=NOW)
    assert win is None and note.startswith("unavailable: GraphQL keeps 31 days of usage analytics")


def test_a_window_reaching_past_the_lookback_is_cut_to_the_first_whole_hour_kept():
    win, note = graphql_window(datetime(2026, 5, 1, tzinfo=UTC), NOW, "usage", now=NOW)
    assert win == (datetime(2026, 5, 1, 1, tzinfo=UTC), NOW)
    assert note.startswith("partial: GraphQL keeps 31 days of usage analytics") and "2026-05-01 01:00" in note


def test_a_recent_window_is_whole_and_traffic_reaches_further_back():
    start = NOW - timedelta(days=60)
    assert graphql_window(start, NOW, "traffic", now=NOW) == ((start, NOW), "")
    assert graphql_window(start, NOW, "usage", now=NOW)[0][0] > start


def test_resource_totals_leave_out_what_is_unavailable():
    traffic = {"available": True, "requests": 120}
    usage = {
        "available": True,
        "ai": {"neurons": 7},
        "d1": {"rowsRead": 50, "rowsWritten": 5},
        "kv": {"read": 9, "write": 2},
    }
    assert resource_totals(traffic, usage) == {
        "worker_requests": 120,
        "ai_neurons": 7,
        "d1_rows_read": 50,
        "d1_rows_written": 5,
        "kv_reads": 9,
        "kv_writes": 2,
        "kv_deletes": 0,
        "kv_lists": 0,
    }
    assert set(resource_totals(traffic, usage)) == set(FREE_TIER_DAILY)
    assert resource_totals({"available": False}, usage).get("worker_requests") is None
    assert resource_totals(traffic, {"available": False}) == {"worker_requests": 120}
    assert resource_totals(None, None) == {}
    # Raw hook results (no availability flag) count as available.
    assert resource_totals({"requests": 3}, None) == {"worker_requests": 3}


def test_figures_for_a_window_are_graphqls_for_that_window(cf):
    hook = WorkersAnalyticsHook()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=7)
    traffic = traffic_in(hook, WORKER, start, end)
    assert traffic["available"] and traffic["note"] == "" and traffic["days"] == 7
    assert traffic["requests"] == hook.worker_traffic(WORKER, start, end)["requests"] > 0
    assert traffic["requested"] == {"start": start.isoformat(), "end": end.isoformat()}
    usage = usage_in(hook, cf.d1_id, start, end)
    assert usage["available"] and usage["ai"] == hook.usage(cf.d1_id, start, end)["ai"]


def test_old_windows_say_why_they_have_no_figures(cf):
    hook = WorkersAnalyticsHook()
    end = datetime.now(UTC) - timedelta(days=200)
    old = traffic_in(hook, WORKER, end - timedelta(days=30), end)
    assert old["available"] is False and old["note"].startswith("unavailable") and "requests" not in old
    assert usage_in(hook, cf.d1_id, end - timedelta(days=30), end)["available"] is False
    assert totals_in(hook, WORKER, cf.d1_id, end - timedelta(days=30), end)["available"] is False


def test_totals_use_one_window_for_traffic_and_usage(cf):
    hook = WorkersAnalyticsHook()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    got = totals_in(hook, WORKER, cf.d1_id, start, end, ("worker_requests", "ai_neurons"))
    usage = hook.usage(cf.d1_id, start, end)
    assert got["window"] == usage["window"] and got["days"] == 30 and got["note"] == ""
    assert got["totals"] == {
        "worker_requests": hook.worker_traffic(WORKER, start, end)["requests"],
        "ai_neurons": usage["ai"]["neurons"],
    }
