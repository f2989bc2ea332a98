"""What a request budget remembers of Cloudflare's answers, and how its sync and async acquire pace requests."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_cloudflare.budget import BudgetSettings, RequestBudget


def test_observe_keeps_the_limit_the_remaining_and_the_429s():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    assert (budget.remaining, budget.limit, budget.observed_at, budget.rate_limited) == (None, None, None, 0)
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "866"}, 200)
    assert (budget.remaining, budget.limit, budget.rate_limited) == (866, 1200, 0) and budget.observed_at.endswith(
        "+00:00"
    )
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}, 429)
    budget.observe({}, 429)  # a 429 without headers still counts
    assert (budget.remaining, budget.rate_limited) == (0, 2)


def test_sync_and_async_acquire_pace_bulk_alike_and_leave_monitor_unpaced():
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = RequestBudget(BudgetSettings(bulk_rps=2.0), clock=lambda: now[0], sleep=sleep)
    budget.acquire("bulk")
    budget.acquire("bulk")  # the second bulk request waits half a second
    budget.acquire("monitor")
    assert slept == [0.5] and budget.waited == 0.5

    async def burst() -> float:
        started = time.monotonic()
        for _ in range(3):
            await paced.aacquire("bulk")
        for _ in range(20):
            await paced.aacquire("monitor")
        return time.monotonic() - started

    paced = RequestBudget(BudgetSettings(bulk_rps=10.0))
    took = asyncio.run(burst())
    assert 0.15 <= took < 1.0  # three bulk requests at 10/s; monitoring is not paced
    assert 0.15 <= paced.waited < 0.3


def test_async_acquire_holds_bulk_at_the_reserve_but_not_monitor():
    budget = RequestBudget(BudgetSettings(bulk_rps=0, reserve=10))
    budget.observe({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "1"}, 200)

    async def timed(priority: str) -> float:
        started = time.monotonic()
        await budget.aacquire(priority)
        return time.monotonic() - started

    assert asyncio.run(timed("monitor")) < 0.1
    assert asyncio.run(timed("bulk")) >= 0.9  # held for the reset before one probe goes out
    with pytest.raises(ValueError, match="priority must be one of"):
        asyncio.run(timed("urgent"))
