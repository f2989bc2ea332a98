"""Deferrable waits on Cloudflare: D1 export and import polling, Vectorize mutations.

Triggers run in the triggerer and talk to Cloudflare through their hook's async client, so they
share its connection handling, envelope, typed errors, retries and request budget. They read the
connection themselves: no token travels in trigger kwargs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.polling import poll_gaps


class CloudflarePollTrigger(BaseTrigger):
    """Polls with `check` until it returns an outcome, or the deadline passes.

    Subclasses store every constructor argument under its own name: `serialize` rebuilds the
    kwargs from the constructor's signature.

    :param conn_id: the Cloudflare connection.
    :param poll_interval: the longest pause between polls (seconds); the first ones come sooner
        (polling.poll_gaps).
    :param deadline: a Unix time after which the trigger gives up with a ``timeout`` event.
    :param priority: the request budget's priority, as for the hooks (``"bulk"`` or ``"monitor"``).
    """

    hook_class: type[CloudflareBaseHook] = CloudflareBaseHook

    def __init__(self, conn_id: str, poll_interval: float = 1.0, deadline: float = 0.0, priority: str = "bulk"):
        super().__init__()
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.priority = priority

    def serialize(self) -> tuple[str, dict[str, Any]]:
        cls = type(self)
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = inspect.signature(cls.__init__).parameters.values()
        kwargs = {p.name: getattr(self, p.name) for p in params if p.name != "self" and p.kind in named}
        return f"{cls.__module__}.{cls.__qualname__}", kwargs

    def hook(self) -> CloudflareBaseHook:
        return self.hook_class(self.conn_id, priority=self.priority)

    async def check(self, hook) -> dict | None:  # pragma: no cover - abstract
        """One poll: the event's payload when done, else None."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self.hook()
        try:
            gaps = poll_gaps(self.poll_interval)
            next(gaps)  # the first look goes at once
            async with hook.async_client():
                while True:
                    outcome = await self.check(hook)
                    if outcome is not None:
                        yield TriggerEvent(outcome)
                        return
                    if time.time() > self.deadline:
                        yield TriggerEvent(
                            {"status": "timeout", "message": f"{type(self).__name__} gave up at its deadline"}
                        )
                        return
                    await asyncio.sleep(next(gaps))
        except Exception as exc:  # noqa: BLE001 - handed to the task, which fails with it
            yield TriggerEvent({"status": "error", "message": str(exc)})


class D1PollTrigger(CloudflarePollTrigger):
    """Polls a D1 export or import (`kind`) by its bookmark until complete or failed."""

    hook_class = D1Hook

    def __init__(
        self,
        conn_id: str,
        database_id: str,
        kind: str,
        bookmark: str,
        poll_interval: float = 1.0,
        deadline: float = 0.0,
        priority: str = "bulk",
    ):
        super().__init__(conn_id, poll_interval, deadline, priority)
        self.database_id = database_id
        self.kind = kind
        self.bookmark = bookmark

    async def check(self, hook: D1Hook) -> dict | None:
        result = await hook.apoll(self.database_id, self.kind, self.bookmark)
        return {"status": "complete", "result": result} if hook.is_complete(result) else None


class VectorizeMutationTrigger(CloudflarePollTrigger):
    """Waits until an index has processed a mutation (and holds the expected number of vectors)."""

    hook_class = VectorizeHook

    def __init__(
        self,
        conn_id: str,
        index: str,
        mutation_id: str,
        expected_count: int | None = None,
        poll_interval: float = 1.0,
        deadline: float = 0.0,
        priority: str = "bulk",
    ):
        super().__init__(conn_id, poll_interval, deadline, priority)
        self.index = index
        self.mutation_id = mutation_id
        self.expected_count = expected_count

    async def check(self, hook: VectorizeHook) -> dict | None:
        done, info = await hook.amutation_progress(self.index, self.mutation_id, self.expected_count)
        return {"status": "complete", "info": info} if done else None
