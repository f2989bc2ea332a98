"""localflare's clock: real time plus an offset that tests can advance through the admin API."""

from __future__ import annotations

import time

_offset = 0.0


def now() -> float:
    return time.time() + _offset


def advance(seconds: float) -> float:
    global _offset
    _offset += seconds
    return _offset
