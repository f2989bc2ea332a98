"""How often to ask whether a long operation (a D1 export or import, a Vectorize mutation) is done."""

from __future__ import annotations

from collections.abc import Iterator

FIRST_POLL_GAP = 0.05  # s: a small operation is often done by the second look


def poll_gaps(poll_interval: float) -> Iterator[float]:
    """The shortest time from one poll's start to the next one's: none after the export or import is
    started, then FIRST_POLL_GAP, doubling up to `poll_interval`."""
    yield 0.0
    gap = FIRST_POLL_GAP
    while True:
        yield min(gap, poll_interval)
        gap *= 2
