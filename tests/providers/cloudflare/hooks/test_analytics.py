"""WorkersAnalyticsHook against localflare: deployments, versions and GraphQL analytics.

localflare's traffic history is a deterministic function of the hour, so the same window always
gives the same figures and totals can be checked against hourly sums.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_cloudflare.errors import CloudflareNotFound, GraphQLError
from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook

SCRIPT = "claudes-friend"


def last_full_day() -> tuple[datetime, datetime]:
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=24), end


def test_deployments_newest_first_and_three_versions(cf):
    hook = WorkersAnalyticsHook()
    deployments = hook.deployments(SCRIPT)
    versions = hook.versions(SCRIPT)
    assert len(deployments) == 3 and len(versions) == 3
    created = [d["created_on"] for d in deployments]
    assert created == sorted(created, reverse=True) and len(set(created)) == 3
    assert [v["number"] for v in versions] == [3, 2, 1]
    # Each deployment sends all traffic to one known version; the newest to the newest.
    ids = [v["id"] for v in versions]
    assert [d["versions"][0]["version_id"] for d in deployments] == ids
    assert all(d["versions"][0]["percentage"] == 100.0 for d in deployments)


def test_unknown_script_is_not_found(cf):
    hook = WorkersAnalyticsHook()
    with pytest.raises(CloudflareNotFound):
        hook.deployments("no-such-worker")
    with pytest.raises(CloudflareNotFound):
        hook.versions("no-such-worker")


def test_worker_traffic_over_a_day_equals_the_sum_of_its_hours(cf):
    hook = WorkersAnalyticsHook()
    start, end = last_full_day()
    traffic = hook.worker_traffic(SCRIPT, start, end)
    hourly = hook.worker_hourly(SCRIPT, start, end)
    assert len(hourly) == 24
    assert [h["hour"] for h in hourly] == sorted(h["hour"] for h in hourly)
    assert hourly[0]["hour"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert traffic["window"] == {
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert traffic["requests"] == sum(h["requests"] for h in hourly) > 0
    assert traffic["errors"] == sum(h["errors"] for h in hourly)
    assert traffic["error_rate_percent"] == round(100 * traffic["errors"] / traffic["requests"], 4)
    assert 0 <= traffic["error_rate_percent"] < 100
    assert sum(traffic["status"].values()) == traffic["requests"]
    assert traffic["status"]["success"] == traffic["requests"] - traffic["errors"]
    wall = traffic["wall_time_ms"]
    assert set(wall) == {"p50", "p95", "p99"} and 0 < wall["p50"] <= wall["p95"] <= wall["p99"]
    assert all(h["p95_ms"] > 0 for h in hourly)
    assert traffic["subrequests"] > 0
    assert hook.worker_traffic(SCRIPT, start, end) == traffic  # the same window gives the same figures


def test_an_incident_shows_in_the_error_rate_and_in_its_hours(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = WorkersAnalyticsHook()
    start, end = last_full_day()
    incident = end - timedelta(hours=6)
    server.add_faults(f"error_rate:rate=0.25,start={incident:%Y-%m-%dT%H:%M:%SZ},end={end:%Y-%m-%dT%H:%M:%SZ}")
    traffic = hook.worker_traffic(SCRIPT, start, end)
    hourly = hook.worker_hourly(SCRIPT, start, end)
    assert traffic["errors"] == sum(h["errors"] for h in hourly)
    assert traffic["error_rate_percent"] == pytest.approx(100 * traffic["errors"] / traffic["requests"], abs=1e-4)
    for h in hourly:
        rate = h["errors"] / h["requests"]
        assert rate == pytest.approx(0.25, abs=0.01) if h["hour"] >= f"{incident:%Y-%m-%dT%H:%M:%SZ}" else rate < 0.01
    during = hook.worker_traffic(SCRIPT, incident, end)
    assert during["error_rate_percent"] == pytest.approx(25.0, abs=0.5)


def test_a_script_without_traffic_has_zero_rates(cf):
    start, end = last_full_day()
    traffic = WorkersAnalyticsHook().worker_traffic("no-such-worker", start, end)
    assert traffic["requests"] == traffic["errors"] == 0 and traffic["error_rate_percent"] == 0.0
    assert traffic["status"] == {} and traffic["wall_time_ms"] == {}


def test_usage_reports_d1_ai_and_kv(cf):
    # A week always holds busy weekdays, so every figure has something to count.
    _, end = last_full_day()
    start = end - timedelta(days=7)
    usage = WorkersAnalyticsHook().usage(cf.d1_id, start, end)
    assert usage["window"] == {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert set(usage["d1"]) == {"readQueries", "writeQueries", "rowsRead", "rowsWritten"}
    assert all(v > 0 for v in usage["d1"].values())
    assert usage["d1"]["rowsRead"] >= usage["d1"]["readQueries"]
    assert usage["ai"]["requests"] > 0 and usage["ai"]["neurons"] > 0
    assert set(usage["kv"]) == {"read", "write", "delete", "list"}
    assert all(v > 0 for v in usage["kv"].values())


def test_kv_list_operations_of_a_quiet_day_are_not_rounded_away(cf):
    # localflare models KV lists as 0.2 % of Worker requests, but truncates per hour
    # (int(requests * 0.002)), so any hour under 500 requests counts 0 lists and a weekend day
    # reports none at all. Over a whole day the figure should be close to 0.2 % of the requests.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=(today.weekday() - 5) % 7 or 7)  # the last Saturday that has ended
    end = start + timedelta(days=1)
    hook = WorkersAnalyticsHook()
    requests = hook.worker_traffic(SCRIPT, start, end)["requests"]
    kv = hook.usage(cf.d1_id, start, end)["kv"]
    assert kv["list"] >= 0.001 * requests > 0, f"{kv['list']} KV list operations for {requests} Worker requests"


def test_windows_beyond_the_lookback_or_too_wide_raise_graphql_error(cf):
    hook = WorkersAnalyticsHook()
    _, end = last_full_day()
    with pytest.raises(GraphQLError, match="older than 92 days"):
        hook.worker_traffic(SCRIPT, end - timedelta(days=100), end - timedelta(days=99))
    with pytest.raises(GraphQLError, match="older than 92 days"):
        hook.worker_hourly(SCRIPT, end - timedelta(days=100), end - timedelta(days=99))
    with pytest.raises(GraphQLError, match="older than 31 days"):
        hook.usage(cf.d1_id, end - timedelta(days=40), end - timedelta(days=39))
    with pytest.raises(GraphQLError, match="too large"):
        hook.worker_traffic(SCRIPT, end - timedelta(days=40), end)


def test_graphql_returns_data_and_raises_on_errors(cf):
    hook = WorkersAnalyticsHook()
    data = hook.graphql(
        "query($a: string!) { viewer { accounts(filter: {accountTag: $a}) { __typename } } }", {"a": cf.account_id}
    )
    assert data["viewer"]["accounts"] == [{"__typename": "account"}]
    with pytest.raises(GraphQLError):
        hook.graphql("{ viewer { noSuchField } }", {})
    with pytest.raises(GraphQLError, match="not authorized"):
        hook.graphql(
            "query($a: string!) { viewer { accounts(filter: {accountTag: $a}) { __typename } } }", {"a": "f" * 32}
        )


def test_worker_daily_splits_a_window_into_utc_days_that_add_up(cf):
    hook = WorkersAnalyticsHook()
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)  # the last UTC midnight
    start = end - timedelta(days=3)
    days = hook.worker_daily(SCRIPT, start, end)
    assert [d["date"] for d in days] == [(start + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(3)]
    for d in days:
        day = datetime.fromisoformat(d["date"]).replace(tzinfo=timezone.utc)
        traffic = hook.worker_traffic(SCRIPT, day, day + timedelta(days=1))
        assert (d["requests"], d["errors"]) == (traffic["requests"], traffic["errors"]) and d["p95_ms"] > 0
