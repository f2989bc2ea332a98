"""The shared Cloudflare request budget: 1,200 requests per 5 minutes for the whole account.

Going over blocks *every* call for five minutes, monitoring included, so no single task may spend
the budget freely. Three layers keep it (see the provider's README):

1. an Airflow pool the deployment chooses (say 3 slots) caps how many heavy tasks (backups,
   restores, rebuilds) run at once;
2. each heavy ("bulk") client paces itself to `bulk_rps` requests per second (3 x 1/s < 4/s);
3. every response carries `x-ratelimit-remaining`: bulk clients slow down as it falls towards
   `reserve` and stop at it, leaving the reserve to "monitor" clients (health checks), so monitoring
   never starves during a backup, even when something outside Airflow spends the budget.

Sync hooks wait with `acquire`, triggers with `aacquire`; both take their turn from the same budget.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

PRIORITIES = ("monitor", "bulk")


@dataclass
class BudgetSettings:
    bulk_rps: float = 1.0  # 3 heavy tasks at 1/s use 900 of the 1,200 per 5 minutes
    reserve: int = 200  # what bulk clients leave for monitoring
    max_wait: float = 300.0  # never sleep longer than one window for the budget


class RequestBudget:
    """Per-process pacing plus what the server last said about the remaining budget."""

    def __init__(self, settings: BudgetSettings, clock=time.monotonic, sleep=time.sleep):
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_bulk = 0.0
        self._hold_until = 0.0
        self.remaining: int | None = None
        self.limit: int | None = None  # x-ratelimit-limit, as last seen
        self.observed_at: str | None = None  # when remaining was last seen (UTC, ISO)
        self.rate_limited = 0  # 429s received
        self._slowdown = 1.0
        self.waited = 0.0

    def acquire(self, priority: str) -> None:
        """Block until a request of this priority may go out."""
        while (wait := self._claim(priority)) > 0:
            self._sleep(wait)

    async def aacquire(self, priority: str) -> None:
        """`acquire` for the event loop (triggers): waits without blocking the other coroutines."""
        while (wait := self._claim(priority)) > 0:
            await asyncio.sleep(wait)

    def _claim(self, priority: str) -> float:
        """Take the slot for one request (0.0), or say how long to wait before asking again."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
        paced = priority == "bulk" and self.settings.bulk_rps > 0
        floor = self.settings.reserve if priority == "bulk" else 0
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._next_bulk - now) if paced else 0.0
            if wait == 0.0:
                wait = self._hold_wait(now, floor)
            if wait == 0.0:
                if paced:
                    self._next_bulk = max(now, self._next_bulk) + self._slowdown / self.settings.bulk_rps
                return 0.0
        wait = min(wait, self.settings.max_wait)
        self.waited += wait
        return wait

    def _hold_wait(self, now: float, floor: int) -> float:
        """At or under the floor, wait for the hold; when it ends, one request probes the budget
        and the others wait for its answer."""
        if self.remaining is None or self.remaining > floor:
            return 0.0
        if now < self._hold_until:
            return self._hold_until - now
        self._hold_until = now + 1.0
        return 0.0

    def observe(self, headers, status: int | None = None) -> None:
        """Record x-ratelimit-remaining, -limit and -reset from a response (and a 429)."""
        if status == 429:
            with self._lock:
                self.rate_limited += 1
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is None:
            return
        with self._lock:
            try:
                self.remaining = int(remaining)
            except ValueError:
                return
            self.observed_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            try:
                self.limit = int(headers.get("x-ratelimit-limit") or 0) or self.limit
            except ValueError:
                pass
            now = self._clock()
            if self.remaining <= self.settings.reserve:
                # An HTTP-date reset is rounded down to the second: hold at least a second.
                self._hold_until = max(
                    self._hold_until, now + max(1.0, _seconds_until(headers.get("x-ratelimit-reset"), 1.0))
                )
            # Other processes spend the same budget unseen: slow down well before the reserve.
            if self.remaining <= 2 * self.settings.reserve:
                self._slowdown = min(16.0, self._slowdown * 2)
            elif self.remaining > 3 * self.settings.reserve:
                self._slowdown = max(1.0, self._slowdown / 2)


def _seconds_until(value, default: float) -> float:
    """x-ratelimit-reset as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


_budgets: dict[tuple, RequestBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(account_id: str, settings: BudgetSettings) -> RequestBudget:
    """One budget per account and settings in a process, shared by every hook instance."""
    key = (account_id, settings.bulk_rps, settings.reserve, settings.max_wait)
    with _budgets_lock:
        if key not in _budgets:
            _budgets[key] = RequestBudget(settings)
        return _budgets[key]
