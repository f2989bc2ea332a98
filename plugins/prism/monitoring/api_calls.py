"""Counting the Cloudflare REST API requests a task sends, for the dashboard's API-budget panel (the health
monitor records how many its run made).

The provider's hooks send every request, GraphQL included, through their requests session (`get_conn()`, one
per thread). `ApiCalls.watch` adds a response hook to it, so each answer counts once: a retried request counts
every attempt, as Cloudflare's budget does. A request that got no answer at all (connection refused) is not
counted, and neither is one sent from another thread than the one that called `watch`.
"""

from __future__ import annotations

import threading
from typing import TypeVar

H = TypeVar("H")


class ApiCalls:
    """How many REST requests the watched hooks sent (`count`)."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def watch(self, hook: H) -> H:
        """`hook` (a CloudflareBaseHook) with the requests it sends from this thread counted. Reads the
        hook's connection, so it raises what a request would when the connection is missing."""
        hook.get_conn().hooks["response"].append(self._answered)
        return hook

    def _answered(self, response, **kwargs) -> None:
        with self._lock:
            self.count += 1
