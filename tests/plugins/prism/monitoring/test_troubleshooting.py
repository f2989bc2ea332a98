"""The guide's troubleshooting investigations against localflare: what each step finds equals what a
direct look at the same source says, and an incident shows in the findings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prism.monitoring import troubleshooting
from prism.settings.config import load_config

CFG = load_config()


def by_step(result: dict) -> dict:
    return {s["step"]: s for s in result["steps"]}


def test_high_error_rate_during_an_incident(lf_fresh, connect):
    from localflare import traffic

    server = lf_fresh("--faults", "error_rate:rate=0.3")
    connect(server, budget={"bulk_rps": 0})
    at = datetime.now(timezone.utc)
    result = troubleshooting.investigate("high_error_rate", at, CFG)
    steps = by_step(result)
    errors = steps["Recent errors (GraphQL Analytics)"]
    # The same hours localflare's traffic history holds, at the injected rate.
    recs = traffic.records((at - timedelta(hours=3)).timestamp(), at.timestamp(), at.timestamp(), [(0, 2**40, 0.3)])
    requests, failed = sum(r["requests"] for r in recs), sum(r["errors"] for r in recs)
    assert errors["ok"] is False and errors["lines"][0].startswith(f"{requests:,} requests, {failed:,} errors")
    assert "exceededResources" in errors["lines"][1] and "scriptThrewException" in errors["lines"][1]
    assert steps["Worker status"]["ok"] is True and "/health: healthy (HTTP 200)" in steps["Worker status"]["lines"][0]
    deps = steps["Dependency checks"]
    assert (
        deps["ok"] is True
        and deps["lines"][0] == "D1 SELECT 1: ok"
        and "vectors in claudes-companion" in deps["lines"][1]
    )
    assert "by devops@prism.example" in steps["Recent deployments"]["lines"][0]
    assert result["text"].startswith("Diagnosis: high error rate (guide: Troubleshooting, Issue 1: High Error Rate)")
    assert (
        "[!!] Recent errors" in result["text"] and "Resolution (guide): check for recent deployments" in result["text"]
    )
    assert server.token not in result["text"]


def test_a_dependency_that_is_down_is_a_finding_not_a_crash(lf_fresh, connect):
    from localflare.testing import Api

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    Api(server).delete(f"/accounts/{{acct}}/vectorize/v2/indexes/{server.index_name}").raise_for_status()
    steps = by_step(troubleshooting.investigate("high_error_rate", cfg=CFG))
    assert steps["Dependency checks"]["ok"] is False
    assert any(
        line.startswith("Vectorize: FAILED:") and "not found" in line for line in steps["Dependency checks"]["lines"]
    )
    assert steps["Worker status"]["ok"] is False and "unhealthy (HTTP 503)" in steps["Worker status"]["lines"][0]


def test_slow_performance_lists_the_slowest_queries_and_the_cache(cf):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from prism.monitoring.worker import PrismWorkerHook
    from prism.runtime import sql_time

    at = datetime.now(timezone.utc)
    steps = by_step(troubleshooting.investigate("slow_performance", at, CFG))
    rows = D1Hook().rows(
        cf.d1_id,
        "SELECT duration_ms FROM query_log WHERE timestamp >= ? AND timestamp < ? ORDER BY duration_ms DESC LIMIT 10",
        [sql_time(at - timedelta(hours=24)), sql_time(at)],
    )
    slow = [r for r in rows if r["duration_ms"] > CFG["thresholds"]["p95_latency_ms"]]
    queries = steps["Slow queries (D1 query_log)"]
    assert queries["lines"][0] == f"{len(slow)} of the slowest {len(rows)} queries in the last 24 h took over 1000 ms"
    assert queries["ok"] is (not slow)
    cache = PrismWorkerHook().metrics("24h")["cache"]
    assert steps["Cache hit rate and latency (/metrics)"]["lines"][0].startswith(
        f"cache hit rate {cache['hit_rate']}% over 24 h"
    )


def test_resource_exhaustion_compares_usage_with_the_limits_and_counts_rate_limit_hits(cf):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from prism.monitoring.worker import PrismWorkerHook
    from prism.runtime import sql_time

    at = datetime.now(timezone.utc)
    steps = by_step(troubleshooting.investigate("resource_exhaustion", at, CFG))
    neurons = PrismWorkerHook().metrics("24h")["resources"]["neurons_used"]
    usage = steps["Usage against the limits (/metrics)"]
    assert any(line.startswith(f"Workers AI neurons (per day): {neurons:,} of 10,000") for line in usage["lines"])
    day = D1Hook().rows(
        cf.d1_id,
        "SELECT COUNT(*) AS n FROM security_events WHERE type = 'rate_limited' AND created_at >= ? AND created_at < ?",
        [sql_time(at - timedelta(days=1)), sql_time(at)],
    )[0]["n"]
    hits = steps["Rate-limit hits"]["lines"]
    assert f"in the last hour, {day} in the last 24 h" in hits[0]
    assert hits[1].startswith("Cloudflare API budget: ") and "of 1,200 requests used" in hits[1]


def test_unknown_investigations_are_refused():
    with pytest.raises(ValueError, match="unknown investigation"):
        troubleshooting.investigate("everything", cfg=CFG)
