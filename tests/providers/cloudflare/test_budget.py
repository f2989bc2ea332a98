"""The account budget: what it learns from the API's headers, and how clients sharing one account behave.

The behaviour tests drive budgets against a simulated API with Cloudflare's rule (N requests per sliding
window; going over refuses everything for a whole window) on a simulated clock, so they assert exact
outcomes (429s, waits, throughput against the window's bound) without depending on the machine's speed.
The same scenarios run against localflare in bench/ (`make bench`).
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque

import pytest

from airflow_provider_cloudflare.budget import BudgetSettings, RequestBudget, budget_for


class SlidingWindowAPI:
    """Cloudflare's global limit as localflare models it, on a simulated clock."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self.hits: deque[float] = deque()
        self.blocked_until = 0.0
        self.sent_429 = 0
        self.served = 0

    def hit(self, now: float) -> tuple[int, dict]:
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()
        if self.blocked_until <= now and len(self.hits) >= self.limit:
            self.blocked_until = now + self.window
        if self.blocked_until > now:
            self.sent_429 += 1
            wait = max(1, math.ceil(self.blocked_until - now))
            return 429, {"retry-after": str(wait), "x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": "0"}
        self.hits.append(now)
        self.served += 1
        return 200, {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.limit - len(self.hits)),
            "x-ratelimit-reset": f"{self.hits[0] + self.window - now:.3f}",
        }


class Sim:
    """Clients taking turns on one simulated clock. Each client sends `calls` requests one after another,
    each answered `latency` seconds after it left, `interval` seconds apart at the least. Clients that
    share a budget are threads of one process; a client without a budget is "outside", sending blindly."""

    def __init__(self, api: SlidingWindowAPI, latency: float = 0.05):
        self.api, self.latency, self.now = api, latency, 0.0
        self.events: list = []
        self.log: dict[str, list] = {}
        self._order = 0

    def clock(self) -> float:
        return self.now

    def budget(self, **settings) -> RequestBudget:
        return RequestBudget(BudgetSettings(**settings), clock=self.clock, sleep=lambda s: None)

    def add(self, name: str, budget, priority: str = "bulk", *, calls: int, start: float = 0.0, interval=0.0):
        self.log[name] = []
        self._push(start, "try", (name, budget, priority, calls, interval))

    def _push(self, at: float, kind: str, payload) -> None:
        self._order += 1
        heapq.heappush(self.events, (at, self._order, kind, payload))

    def run(self, until: float = 10_000.0) -> dict:
        waits: dict[str, list[float]] = {name: [] for name in self.log}
        asked: dict[str, float] = {}
        while self.events:
            at, _, kind, payload = heapq.heappop(self.events)
            if at > until:
                break
            self.now = at
            if kind == "answer":
                (name, budget, priority, calls, interval), sent_at, status, headers, ticket = payload
                if budget is not None:
                    budget.observe(headers, status, ticket)
                if calls > 1:
                    self._push(max(at, sent_at + interval), "try", (name, budget, priority, calls - 1, interval))
                continue
            name, budget, priority, calls, interval = payload
            asked.setdefault(name, at)
            ticket = None
            if budget is not None:
                ticket, wait = budget._claim(priority)
                if not ticket:
                    self._push(at + wait, "try", payload)
                    continue
            status, headers = self.api.hit(at)
            self.log[name].append((at, status))
            waits[name].append(at - asked.pop(name))
            self._push(at + self.latency, "answer", (payload, at, status, headers, ticket))
        return waits

    def finished(self, name: str) -> float:
        return self.log[name][-1][0]

    def statuses(self, name: str) -> list[int]:
        return [status for _, status in self.log[name]]

    def served(self, *names: str) -> int:
        return sum(self.statuses(name).count(200) for name in names)


def window_bound(calls: int, limit: int, reserve: int, window: float) -> float:
    """The best a client can do: bursts of (limit - reserve) requests, one window apart."""
    return (calls - 1) // (limit - reserve) * window


# ---- what the headers teach -----------------------------------------------------------------
def test_observe_keeps_the_limit_the_remaining_and_the_429s():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    assert (budget.remaining, budget.server_limit, budget.observed_at, budget.rate_limited) == (None, None, None, 0)
    assert (budget.limit, budget.reserve) == (1200, 60)  # until the API says otherwise
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "866"}, 200)
    assert (budget.remaining, budget.limit, budget.rate_limited) == (866, 1200, 0)
    assert budget.observed_at.endswith("+00:00")
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}, 429)
    budget.observe({}, 429)  # a 429 without headers still counts
    assert (budget.remaining, budget.rate_limited) == (0, 2)


def test_the_limit_comes_from_the_api_and_the_reserve_is_a_share_of_it():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    budget.observe({"x-ratelimit-limit": "40", "x-ratelimit-remaining": "39"}, 200)
    assert (budget.limit, budget.reserve) == (40, 2)  # a scaled limit scales the reserve
    overridden = RequestBudget(BudgetSettings(limit=600, reserve_share=0.1), clock=lambda: 0.0)
    overridden.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "1199"}, 200)
    assert (overridden.limit, overridden.reserve) == (600, 60)
    assert RequestBudget(BudgetSettings(reserve=7)).reserve == 7  # an older connection's absolute reserve


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"reserve_share": 0.6}, "reserve_share must be from 0 to under 0.5"),
        ({"limit": 0}, "limit must be a whole number"),
        ({"limit": "1200"}, "limit must be a whole number"),
        ({"window_seconds": -5}, "window_seconds must be"),
        ({"bulk_rps": True}, "bulk_rps must be"),
        ({"reserv": 10}, "unknown budget settings \\['reserv'\\]"),
        ([1, 2], "budget must be an object"),
    ],
)
def test_bad_settings_are_refused_by_name(extra, message):
    with pytest.raises(ValueError, match=message):
        BudgetSettings.from_extra(extra)


def test_a_budget_is_shared_per_account_and_settings():
    a = budget_for("acct-1", BudgetSettings.from_extra({"reserve_share": 0.05}))
    assert budget_for("acct-1", BudgetSettings()) is a
    assert budget_for("acct-2", BudgetSettings()) is not a
    assert budget_for("acct-1", BudgetSettings(reserve_share=0.1)) is not a


def test_an_answer_overtaken_by_a_newer_one_is_ignored():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    first, second = budget.acquire("bulk"), None
    budget.observe({"x-ratelimit-remaining": "1000"}, 200, first)  # the probe's answer
    first, second = budget.acquire("bulk"), budget.acquire("bulk")
    budget.observe({"x-ratelimit-remaining": "900"}, 200, second)
    budget.observe({"x-ratelimit-remaining": "950"}, 200, first)  # older: knows less
    assert budget.remaining == 900 and budget.estimate() == 900


# ---- one process ----------------------------------------------------------------------------
@pytest.mark.parametrize("latency", [0.0, 0.05, 0.3])
def test_one_bulk_client_reaches_the_window_bound_without_a_429(latency):
    api = SlidingWindowAPI(limit=40, window=10.0)
    sim = Sim(api, latency=latency)
    budget = sim.budget(window_seconds=10.0)
    sim.add("export", budget, calls=220)
    sim.run()
    assert api.sent_429 == 0 and api.served == 220
    bound = max(window_bound(220, 40, 2, 10.0), 219 * latency)  # one call at a time here
    # The window's bound plus one latency margin per window; never faster than the API allows.
    assert bound - 1e-6 <= sim.finished("export") <= bound * 1.10 + latency * 220 / 38
    assert max(len([h for h in sim.log["export"] if t - 10 < h[0] <= t]) for t, _ in sim.log["export"]) <= 38


@pytest.mark.parametrize(("latency", "threads"), [(0.3, 4), (0.5, 4), (0.1, 16)])
def test_several_calls_in_flight_reach_the_bound_when_calls_are_slow(latency, threads):
    api = SlidingWindowAPI(limit=40, window=10.0)
    sim = Sim(api, latency=latency)
    budget = sim.budget(window_seconds=10.0)
    for n in range(threads):  # one process, `threads` calls in flight at once
        sim.add(f"t{n}", budget, calls=55)
    sim.run()
    names = [f"t{n}" for n in range(threads)]
    assert api.sent_429 == 0 and sim.served(*names) == 55 * threads
    done = max(sim.finished(name) for name in names)
    bound = window_bound(55 * threads, 40, 2, 10.0)
    assert bound - 1e-6 <= done <= bound * 1.10 + latency * (55 * threads) / 38


def test_bulk_never_spends_the_reserve_and_a_monitor_gets_it_at_once():
    api = SlidingWindowAPI(limit=40, window=10.0)
    sim = Sim(api)
    bulk = sim.budget(window_seconds=10.0)
    monitor = sim.budget(window_seconds=10.0)  # the health monitor is another process
    sim.add("backup", bulk, calls=400)
    # The reserve is 5%: 2 of 40 here, as 60 of 1,200 on Cloudflare, where a monitor run makes 6 calls
    # in 5 minutes; so one call per window here.
    sim.add("monitor", monitor, "monitor", calls=10, start=0.5, interval=10.0)
    waits = sim.run()
    assert api.sent_429 == 0
    assert set(sim.statuses("monitor")) == {200}
    assert max(waits["monitor"]) == 0.0  # a health check during a full-speed backup waits for nothing


def test_a_429_holds_every_client_of_the_process_for_its_retry_after():
    now = [100.0]
    budget = RequestBudget(BudgetSettings(), clock=lambda: now[0], sleep=lambda s: None)
    ticket = budget.acquire("bulk")
    budget.observe({"retry-after": "7", "x-ratelimit-remaining": "0"}, 429, ticket)
    assert budget._claim("monitor") == (0, 7.0)
    assert budget._claim("bulk")[0] == 0
    now[0] += 7.0
    assert budget._claim("monitor")[0] > 0


def test_before_any_answer_one_request_asks_and_the_others_wait_for_it():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    first = budget._claim("bulk")
    assert first[0] and budget._claim("bulk")[0] == 0
    budget.observe({"x-ratelimit-remaining": "500"}, 200, first[0])
    assert budget._claim("bulk")[0] and budget._claim("bulk")[0]


def test_a_transport_error_returns_the_in_flight_slot():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    ticket = budget.acquire("bulk")
    budget.cancel(ticket)
    assert budget._claim("bulk")[0]  # not stuck waiting for an answer that never comes


def test_async_acquire_takes_turns_from_the_same_budget():
    budget = RequestBudget(BudgetSettings(window_seconds=10.0))
    budget.observe({"x-ratelimit-limit": "40", "x-ratelimit-remaining": "3", "x-ratelimit-reset": "0.3"}, 200)

    async def turns() -> list[str]:
        got = []

        async def one(priority):
            await budget.aacquire(priority)
            got.append(priority)

        await asyncio.gather(one("bulk"), one("monitor"))
        return got

    assert asyncio.run(turns()) == ["monitor", "bulk"]  # bulk waits for the reset; the monitor does not
    with pytest.raises(ValueError, match="priority must be one of"):
        asyncio.run(budget.aacquire("urgent"))


# ---- several processes and outside spend ---------------------------------------------------
def test_three_heavy_processes_and_a_monitor_at_the_real_limit_never_see_a_429():
    api = SlidingWindowAPI(limit=1200, window=300.0)
    sim = Sim(api, latency=0.2)
    for n in range(3):
        sim.add(f"heavy{n}", sim.budget(), calls=100_000, start=n * 0.3)
    sim.add("monitor", sim.budget(), "monitor", calls=60, start=1.0, interval=5.0)
    waits = sim.run(until=600.0)
    assert api.sent_429 == 0
    assert max(waits["monitor"]) < 1.0
    heavy = sum(len(sim.log[f"heavy{n}"]) for n in range(3))
    assert heavy >= 0.6 * 2 * 1200  # they converge on most of the budget rather than idling


@pytest.mark.parametrize("outside_starts", [0.0, 100.0])
def test_bulk_yields_to_spend_outside_airflow(outside_starts):
    api = SlidingWindowAPI(limit=1200, window=300.0)
    sim = Sim(api, latency=0.2)
    sim.add("backup", sim.budget(), calls=100_000)
    # A script nobody told about the budget: one request a second, before or in the middle of a backup.
    sim.add("outside", None, calls=400, start=outside_starts, interval=1.0)
    sim.add("monitor", sim.budget(), "monitor", calls=12, start=30.0, interval=60.0)
    waits = sim.run(until=900.0)
    assert api.sent_429 == 0
    assert set(sim.statuses("outside")) == {200} and set(sim.statuses("monitor")) == {200}
    assert max(waits["monitor"]) < 1.0
    assert len(sim.log["backup"]) > 1200  # it kept going, with what the others left
