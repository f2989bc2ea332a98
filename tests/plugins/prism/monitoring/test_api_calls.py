"""ApiCalls counts what localflare counts: every request a watched hook sends, each retry too."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_cloudflare.errors import CloudflareError
from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from prism.monitoring.api_calls import ApiCalls


@pytest.fixture
def server(lf_fresh, connect):
    """A private localflare, so its counters hold only this test's requests and faults touch no one else."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    return server


def test_it_counts_the_requests_of_the_hooks_it_watches_graphql_included(server):
    calls = ApiCalls()
    d1, kv = calls.watch(D1Hook(priority="monitor")), calls.watch(KVHook(priority="monitor"))
    before = server.counters().get("requests", 0)
    d1.rows(d1.find_database("claudes-friend-db"), "SELECT 1 AS ok")
    kv.find_namespace("prism-cache")
    assert calls.count == 3 == server.counters()["requests"] - before
    D1Hook(priority="monitor").list_databases()  # not watched
    assert calls.count == 3 and server.counters()["requests"] - before == 4
    end = datetime(2026, 11, 29, 18, tzinfo=timezone.utc)
    calls.watch(WorkersAnalyticsHook(priority="monitor")).worker_hourly("claudes-friend", end - timedelta(hours=3), end)
    assert calls.count == 4 == server.counters()["requests"] - before - 1


def test_a_retried_request_counts_each_attempt(server):
    server.add_faults("5xx:route=GET */d1/database,count=1,status=503")
    calls = ApiCalls()
    before = server.counters().get("requests", 0)
    calls.watch(D1Hook(priority="monitor")).find_database("claudes-friend-db")
    assert calls.count == 2 == server.counters()["requests"] - before  # the 503, then the answer


def test_an_error_answer_counts_too(server):
    calls = ApiCalls()
    with pytest.raises(CloudflareError):
        calls.watch(D1Hook(priority="monitor")).get_database("no-such-database")
    assert calls.count == 1


def test_watching_a_hook_without_a_connection_fails_as_a_request_would():
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises((AirflowException, CloudflareError)):
        ApiCalls().watch(D1Hook("no_such_connection"))
