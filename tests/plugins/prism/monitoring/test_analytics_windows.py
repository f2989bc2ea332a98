"""GraphQL windows: what part of a window a report reads is decided by the windows alone (never by
when it runs), a window GraphQL no longer holds is `expired`, and the figures equal GraphQL's own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from prism.monitoring.analytics_windows import (
    FREE_TIER_DAILY,
    graphql_window,
    resource_totals,
    still_held,
    totals_in,
    traffic_in,
    usage_in,
)

UTC = timezone.utc
NOW = datetime(2026, 6, 1, tzinfo=UTC)
WORKER = "claudes-friend"


def test_the_part_a_report_reads_follows_the_window_not_the_clock():
    # 30 days are read whole; a quarter's usage is cut to its last 30 days (what GraphQL holds a day after it).
    days = (datetime(2026, 5, 2, tzinfo=UTC), NOW)
    assert graphql_window(*days, "usage") == (days, "")
    quarter = (datetime(2026, 3, 1, tzinfo=UTC), NOW)
    win, note = graphql_window(*quarter, "usage")
    assert win == (datetime(2026, 5, 2, tzinfo=UTC), NOW)
    assert note == "partial: GraphQL keeps 31 days of usage analytics, so this covers 2026-05-02 00:00 UTC onwards only"
    # Seen from the end of the report's own window (as_of): a month wholly before what it reaches is unavailable.
    win, note = graphql_window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), "usage", NOW)
    assert win is None and note.startswith("unavailable: GraphQL keeps 31 days of usage analytics, so a report")
    assert graphql_window(datetime(2026, 3, 1, tzinfo=UTC), NOW, "traffic")[0] == (
        datetime(2026, 3, 2, tzinfo=UTC),
        NOW,
    )


def test_still_held_is_the_one_question_for_the_clock():
    start = datetime(2026, 5, 2, tzinfo=UTC)
    assert still_held(start, "usage", now=NOW + timedelta(hours=4))  # the scheduled run, hours after the end
    assert not still_held(start, "usage", now=NOW + timedelta(days=1))  # a day later, GraphQL no longer has it
    assert still_held(start, "traffic", now=NOW + timedelta(days=30))


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


def test_old_windows_are_expired_not_cut(cf):
    """A window GraphQL has partly dropped since it ended is unavailable, never a shorter cut: the figures of
    a window are the same whenever they are read, or none."""
    hook = WorkersAnalyticsHook()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
    old = traffic_in(hook, WORKER, end - timedelta(days=30), end)
    assert old["available"] and old["note"] == ""  # 92 days of traffic: still whole
    usage = usage_in(hook, cf.d1_id, end - timedelta(days=30), end)
    assert usage["available"] is False and usage["expired"] is True and "requests" not in usage
    assert usage["note"].startswith("unavailable: GraphQL keeps 31 days of usage analytics, and this window's figures")
    totals = totals_in(hook, WORKER, cf.d1_id, end - timedelta(days=30), end)
    assert totals["available"] is False and totals["expired"] is True
    ancient = datetime.now(UTC) - timedelta(days=200)
    assert traffic_in(hook, WORKER, ancient - timedelta(days=30), ancient)["expired"] is True


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
