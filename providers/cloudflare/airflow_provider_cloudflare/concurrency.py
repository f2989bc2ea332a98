"""Bulk reads with several calls in flight, results in input order, memory bounded.

Cloudflare answers a bulk read in 100-500 ms, so one call at a time cannot reach the account's budget
of about 4 requests a second; a few calls in flight can, and the budget (taken inside every call)
still sets the pace. `ordered_map` is the one primitive the hooks use for that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], max_in_flight: int) -> Generator[R, None, None]:
    """Yield ``fn(item)`` for every item, in input order, with at most `max_in_flight` calls submitted
    and not yet yielded.

    - Items are read lazily on the caller's thread, one per free slot, so a generator input is never
      run from the pool and is never read ahead by more than `max_in_flight` items.
    - Memory holds at most `max_in_flight` pending results (plus the one the caller is handling),
      whatever the number of items.
    - The first call seen to fail ends the stream: its error is raised at once, no more items are read
      and nothing more starts. Calls already running cannot be stopped; they finish in the background
      and their results are dropped. An error reading `items` ends it the same way, and so does
      closing the generator early.
    - With ``max_in_flight == 1`` it is a plain loop on the caller's thread, with no pool.

    :param max_in_flight: 1 or more; checked when called, not when iterated.
    """
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be a whole number of at least 1, not {max_in_flight!r}")
    if max_in_flight == 1:
        return _serial(fn, items)
    return _pooled(fn, items, max_in_flight)


def _serial(fn: Callable[[T], R], items: Iterable[T]) -> Generator[R, None, None]:
    for item in items:
        yield fn(item)


def _pooled(fn: Callable[[T], R], items: Iterable[T], max_in_flight: int) -> Generator[R, None, None]:
    source = iter(items)
    pending: deque[Future] = deque()
    pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="cloudflare-bulk")
    exhausted = False

    def refill() -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < max_in_flight:
            try:
                item = next(source)
            except StopIteration:
                exhausted = True
                return
            pending.append(pool.submit(fn, item))

    clean = False
    try:
        refill()
        while pending:
            failed = next((f for f in pending if f.done() and f.exception() is not None), None)
            if failed is not None:
                failed.result()  # raises the call's own error, with its traceback
            if pending[0].done():
                result = pending.popleft().result()
                refill()  # before yielding: the next calls run while the caller handles this result
                yield result
            else:
                # Wake on any completion, not only the head's, so a failure behind a slow call surfaces at once.
                wait([f for f in pending if not f.done()], return_when=FIRST_COMPLETED)
        clean = True
    finally:
        for future in pending:
            future.cancel()
        # After a normal end every worker is idle; otherwise do not wait for calls still running.
        pool.shutdown(wait=clean, cancel_futures=True)
