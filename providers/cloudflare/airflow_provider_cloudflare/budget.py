"""The account's shared request budget: 1,200 requests per 5 minutes, and going over blocks *every*
call, monitoring included, for the rest of the window.

Every client learns the state of the budget from what the API tells it on each answer:
`x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset`, and a 429's `retry-after`. No
coordination server is needed: each process keeps its own ledger and reads the shared truth from the
headers (see the provider's README for the diagram).

- **Limit and reserve.** The limit is what the API reports (or the connection's ``limit``); the
  reserve is a share of it (``reserve_share``, 5%) that only "monitor" clients may spend, so a health
  check during a full-speed backup still gets its calls at once.
- **Bulk spends the rest, no faster.** A "bulk" client may send while its estimate of the remaining
  budget stays above the reserve plus room for others. The estimate is the last `remaining` seen,
  minus this process's requests sent after the one that carried it, plus this process's own requests
  that have since left the window. So one process alone runs at the bound of the sliding window
  without probing, and several in-flight calls are counted before their answers arrive.
- **Others.** What the window holds beyond this process's own requests was spent by someone else
  (another task, another worker, a script outside Airflow). Bulk work leaves them as much room again
  as they spent in the last window (at most ``others_room_share`` of the limit), so it yields to
  outside spend instead of racing it into a 429.
- **When the estimate runs out**, bulk waits for its own oldest request to leave the window, or for
  the server's reset, and then one request probes the budget while the others wait for its answer.
- **A 429** holds every client of the process for its `retry-after`.

Sync hooks wait with `acquire`, triggers with `aacquire`; both take their turn from the same budget.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

PRIORITIES = ("monitor", "bulk")
DEFAULT_LIMIT = 1200  # requests per window until the API says otherwise
PROBE_WAIT = 0.05  # how often a client waiting for a probe's answer looks again (s)
MARGIN = 0.05  # s: clocks and rounding
JITTER = 0.25  # share of the round trip by which one request may reach the API later than another


@dataclass(frozen=True)
class BudgetSettings:
    """The connection extra's ``budget``; every key is optional.

    :param limit: requests per window; default: the API's ``x-ratelimit-limit`` (1,200 until seen).
    :param window_seconds: the length of the API's window (300 on Cloudflare).
    :param reserve_share: the share of the limit only monitor clients may spend.
    :param reserve: an absolute reserve instead of the share (kept for older connections).
    :param others_room_share: the most room bulk work leaves for others' spend, as a share of the limit.
    :param bulk_rps: an optional cap on one process's bulk requests a second (0: none).
    :param max_wait: never sleep longer than this at once for the budget (s).
    """

    limit: int | None = None
    window_seconds: float = 300.0
    reserve_share: float = 0.05
    reserve: int | None = None
    others_room_share: float = 0.25
    bulk_rps: float = 0.0
    max_wait: float = 300.0

    def __post_init__(self):
        problems = []
        if self.limit is not None and not (isinstance(self.limit, int) and self.limit >= 1):
            problems.append(f"limit must be a whole number of requests >= 1, not {self.limit!r}")
        if not _number(self.window_seconds) or self.window_seconds <= 0:
            problems.append(f"window_seconds must be a number of seconds > 0, not {self.window_seconds!r}")
        if not _number(self.reserve_share) or not 0 <= self.reserve_share < 0.5:
            problems.append(f"reserve_share must be from 0 to under 0.5, not {self.reserve_share!r}")
        if self.reserve is not None and not (isinstance(self.reserve, int) and self.reserve >= 0):
            problems.append(f"reserve must be a whole number of requests >= 0, not {self.reserve!r}")
        if not _number(self.others_room_share) or not 0 <= self.others_room_share <= 0.5:
            problems.append(f"others_room_share must be from 0 to 0.5, not {self.others_room_share!r}")
        if not _number(self.bulk_rps) or self.bulk_rps < 0:
            problems.append(f"bulk_rps must be a number >= 0 (0: no cap), not {self.bulk_rps!r}")
        if not _number(self.max_wait) or self.max_wait <= 0:
            problems.append(f"max_wait must be a number of seconds > 0, not {self.max_wait!r}")
        if problems:
            raise ValueError("bad budget settings: " + "; ".join(problems))

    @classmethod
    def from_extra(cls, value) -> BudgetSettings:
        """Settings from the connection extra's ``budget`` object, refusing unknown keys by name."""
        if value in (None, ""):
            return cls()
        if not isinstance(value, dict):
            raise ValueError(f"budget must be an object of settings, not {type(value).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown budget settings {unknown}; known: {sorted(known)}")
        return cls(**value)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class RequestBudget:
    """One process's ledger of an account's budget, shared by every hook and thread in the process."""

    def __init__(self, settings: BudgetSettings, clock=time.monotonic, sleep=time.sleep):
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._seq = 0  # tickets handed out
        self._sent: deque[tuple[int, float]] = deque()  # (ticket, sent at) of own requests in the window
        self._in_flight = 0
        self._obs_ticket = 0  # the ticket whose answer carried `remaining`
        self._obs_time = 0.0  # when the server counted the observed `remaining`
        self._obs_counted = 0  # own requests the server counted then
        self._reset_at = 0.0  # when the server said its oldest request leaves the window
        self._hold_until = 0.0  # after a 429, nobody sends
        self._probe_until = 0.0  # a probe is out: the others wait for its answer
        self._next_bulk = 0.0
        self._latency = 0.1  # s, smoothed; the margin before reusing a slot of our own
        self.server_limit: int | None = None  # x-ratelimit-limit, as last seen
        self.remaining: int | None = None
        self.others = 0  # requests in the last window that this process did not send
        self.observed_at: str | None = None  # when remaining was last seen (UTC, ISO)
        self.rate_limited = 0  # 429s received
        self.sent: Counter = Counter()  # requests sent, by priority
        self.waited = 0.0

    # ---- what the budget is -------------------------------------------------------------
    @property
    def limit(self) -> int:
        return self.settings.limit or self.server_limit or DEFAULT_LIMIT

    @property
    def reserve(self) -> int:
        if self.settings.reserve is not None:
            return self.settings.reserve
        return max(1, int(self.limit * self.settings.reserve_share))

    def estimate(self) -> int | None:
        """Requests this process believes are left in the window now (None before any answer)."""
        with self._lock:
            if self.remaining is None:
                return None
            self._forget(self._clock())
            return self._estimate(self._clock())

    # ---- taking a turn ------------------------------------------------------------------
    def acquire(self, priority: str) -> int:
        """Block until a request of this priority may go out; returns its ticket for `observe`."""
        while True:
            ticket, wait = self._claim(priority)
            if ticket:
                return ticket
            self._sleep(wait)

    async def aacquire(self, priority: str) -> int:
        """`acquire` for the event loop (triggers): waits without blocking the other coroutines."""
        while True:
            ticket, wait = self._claim(priority)
            if ticket:
                return ticket
            await asyncio.sleep(wait)

    def _claim(self, priority: str) -> tuple[int, float]:
        """(ticket, 0) when the request may go out now, else (0, seconds to wait before asking again)."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
        with self._lock:
            now = self._clock()
            self._forget(now)
            wait = self._wait(priority, now)
            if wait <= 0:
                return self._take(priority, now), 0.0
        wait = min(max(wait, 0.001), self.settings.max_wait)
        self.waited += wait
        return 0, wait

    def _wait(self, priority: str, now: float) -> float:
        if now < self._hold_until:
            return self._hold_until - now
        if self.remaining is None:  # nothing known yet: one request asks, the others wait for its answer
            return PROBE_WAIT if self._in_flight else 0.0
        floor = 0 if priority == "monitor" else self.reserve + self._room_for_others()
        if priority == "bulk" and self.settings.bulk_rps > 0 and now < self._next_bulk:
            return self._next_bulk - now
        if self._estimate(now) > floor:
            return 0.0
        # Out of budget as far as this process knows: a slot of our own frees when our oldest request
        # leaves the window; others' slots only the server can tell about, after its reset.
        own_free = self._own_frees_at(now)
        if own_free is not None and own_free <= self._reset_at + 1.0 + MARGIN:
            return max(own_free - now, 0.001)  # never 0: a wait, then `_forget` frees the slot
        if now < self._reset_at:
            return self._reset_at - now
        if now < self._probe_until:
            return PROBE_WAIT
        self._probe_until = now + max(1.0, 4 * self._latency)
        return 0.0

    def _take(self, priority: str, now: float) -> int:
        self._seq += 1
        self._sent.append((self._seq, now))
        self._in_flight += 1
        self.sent[priority] += 1
        if priority == "bulk" and self.settings.bulk_rps > 0:
            self._next_bulk = max(now, self._next_bulk) + 1.0 / self.settings.bulk_rps
        return self._seq

    def _estimate(self, now: float) -> int:
        """The last `remaining`, corrected by this process's own requests since: those sent after the
        observed one are spent; those the server counted then and that have left the window since are
        free again."""
        newer = sum(1 for ticket, at in self._sent if ticket > self._obs_ticket and self._spent(at, now))
        return self.remaining - newer + (self._obs_counted - self._counted(now))

    def _spent(self, sent_at: float, now: float) -> bool:
        """Whether an own request still holds its slot of the window at `now` (as far as we can tell)."""
        return sent_at > now - self.settings.window_seconds - self._reuse_margin()

    def _counted(self, now: float) -> int:
        """Own requests the server counted in the observed `remaining` (sent within a window before the
        observation's reference time) that still hold their slot at `now`."""
        start = self._obs_time - self.settings.window_seconds
        return sum(1 for ticket, at in self._sent if ticket <= self._obs_ticket and at > start and self._spent(at, now))

    def _own_frees_at(self, now: float) -> float | None:
        """When the next own request that the estimate counts as spent leaves the window."""
        start = self._obs_time - self.settings.window_seconds
        for ticket, at in self._sent:
            if self._spent(at, now) and (ticket > self._obs_ticket or at > start):
                return at + self.settings.window_seconds + self._reuse_margin()
        return None

    def _reuse_margin(self) -> float:
        """How long after a window an own request's slot counts as free. The API counts a request when it
        arrives, some part of a round trip after it left; a new request takes about as long to arrive, so
        only the spread of that delay needs covering, not the whole round trip."""
        return MARGIN + JITTER * self._latency

    def _forget(self, now: float) -> None:
        """Drop own requests too old to matter to any observation still to come."""
        horizon = now - self.settings.window_seconds - 2 * self._latency - 1.0
        while self._sent and self._sent[0][1] <= horizon:
            self._sent.popleft()

    def _room_for_others(self) -> int:
        return min(self.others, int(self.limit * self.settings.others_room_share))

    # ---- what the API said --------------------------------------------------------------
    def cancel(self, ticket: int) -> None:
        """The request of `ticket` never got an answer (a transport error)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def observe(self, headers, status: int | None = None, ticket: int | None = None) -> None:
        """Learn from an answer: x-ratelimit-limit, -remaining and -reset, and a 429's retry-after."""
        with self._lock:
            now = self._clock()
            sent_at = None
            if ticket is not None:
                self._in_flight = max(0, self._in_flight - 1)
                sent_at = next((at for t, at in self._sent if t == ticket), None)
                if sent_at is not None:
                    self._latency = 0.8 * self._latency + 0.2 * min(5.0, max(0.0, now - sent_at))
            if status == 429:
                self.rate_limited += 1
                retry = _seconds_until(headers.get("retry-after"), 1.0)
                self._hold_until = max(self._hold_until, now + max(1.0, retry))
            try:
                limit = int(headers.get("x-ratelimit-limit") or 0)
            except ValueError:
                limit = 0
            if limit > 0:
                self.server_limit = limit
            try:
                remaining = int(headers["x-ratelimit-remaining"])
            except (KeyError, TypeError, ValueError):
                return
            if ticket is not None and ticket < self._obs_ticket:
                return  # an older answer overtaken by a newer one: it knows less
            self._forget(now)
            self.remaining = remaining
            self._obs_ticket = ticket if ticket is not None else self._seq
            # The server counted its window when the request reached it, some time between its leaving and
            # its answer; own requests sent about a window before then may or may not be in `remaining`.
            # The estimate takes the late end (fewer counted, so fewer freed later: never optimistic);
            # others' spend the early end (all counted, so our own never looks like someone else's).
            sent_at = now - self._latency if sent_at is None else sent_at
            counted_early = sum(
                1 for t, at in self._sent if t <= self._obs_ticket and at > sent_at - self.settings.window_seconds
            )
            self._obs_time = min(now, sent_at + self._latency / 2)
            self._obs_counted = self._counted(now)
            self._probe_until = 0.0
            self.others = max(0, self.limit - remaining - counted_early)
            # An HTTP-date reset is rounded down to the second: add one, so a probe never comes early.
            reset = headers.get("x-ratelimit-reset")
            self._reset_at = now + _seconds_until(reset, 1.0) + (1.0 if reset and not _is_number(reset) else 0.0)
            self.observed_at = datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_number(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _seconds_until(value, default: float) -> float:
    """retry-after or x-ratelimit-reset as seconds from now: delta-seconds or an HTTP date."""
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
    key = (account_id, settings)
    with _budgets_lock:
        if key not in _budgets:
            _budgets[key] = RequestBudget(settings)
        return _budgets[key]
