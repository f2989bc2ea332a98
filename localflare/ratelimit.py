"""Cloudflare's global API rate limit: N requests per window per token, then a block for one window."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from email.utils import formatdate


class RateLimiter:
    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._hits: dict[str, deque] = {}
        self._blocked_until: dict[str, float] = {}

    def check(self, token: str) -> tuple[bool, dict]:
        """Count one request. Returns (allowed, headers)."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(token, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            blocked = self._blocked_until.get(token, 0.0)
            if blocked <= now and len(hits) >= self.limit:
                # Past the limit: everything is refused for the next window.
                blocked = self._blocked_until[token] = now + self.window
            if blocked > now:
                wait = max(1, math.ceil(blocked - now))
                return False, {
                    "retry-after": str(wait),
                    "x-ratelimit-limit": str(self.limit),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": formatdate(time.time() + wait, usegmt=True),
                }
            hits.append(now)
            reset = hits[0] + self.window - now
            return True, {
                "x-ratelimit-limit": str(self.limit),
                "x-ratelimit-remaining": str(max(0, self.limit - len(hits))),
                "x-ratelimit-reset": formatdate(time.time() + reset, usegmt=True),
            }

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
            self._blocked_until.clear()


def parse_rate(spec: str) -> tuple[int, float]:
    """'1200/300' -> (1200, 300.0)."""
    count, _, window = spec.partition("/")
    return int(count), float(window or 300)
