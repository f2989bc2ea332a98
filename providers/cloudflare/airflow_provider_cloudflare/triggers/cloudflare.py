"""Deferrable waits on Cloudflare: D1 export and import polling, Vectorize mutations.

Triggers run in the triggerer, so they live in plugins/ (never in a DAG bundle) and use async
HTTP. They read the connection themselves: no token travels in trigger kwargs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_cloudflare.hooks.cloudflare import DEFAULT_BASE_URL


class _AsyncCloudflare:
    """The little async client the triggers need: envelope, typed outcome, retry on 429/5xx."""

    def __init__(self, conn_id: str):
        self.conn_id = conn_id

    async def __aenter__(self):
        conn = await BaseHook.aget_connection(self.conn_id)
        extra = conn.extra_dejson
        self.account = extra["account_id"]
        self.client = httpx.AsyncClient(
            base_url=(extra.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            headers={"Authorization": f"Bearer {conn.password}"},
            timeout=60,
        )
        return self

    async def __aexit__(self, *exc):
        await self.client.aclose()

    async def call(self, method: str, path: str, **kwargs) -> Any:
        for attempt in range(6):
            resp = await self.client.request(method, f"/accounts/{self.account}{path}", **kwargs)
            if resp.status_code == 429 or resp.status_code >= 500:
                await asyncio.sleep(min(60.0, float(resp.headers.get("retry-after", 2**attempt))))
                continue
            body = resp.json()
            if not body.get("success"):
                raise RuntimeError(f"{method} {path}: {body.get('errors')}")
            return body["result"]
        raise RuntimeError(f"{method} {path}: still failing after 6 attempts (HTTP {resp.status_code})")


class _PollingTrigger(BaseTrigger):
    """Polls until `check` says done or failed, or the deadline passes."""

    def __init__(self, conn_id: str, poll_interval: float, deadline: float):
        super().__init__()
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline

    def _kwargs(self) -> dict:
        return {"conn_id": self.conn_id, "poll_interval": self.poll_interval, "deadline": self.deadline}

    async def check(self, cf: _AsyncCloudflare) -> dict | None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with _AsyncCloudflare(self.conn_id) as cf:
                while True:
                    outcome = await self.check(cf)
                    if outcome is not None:
                        yield TriggerEvent(outcome)
                        return
                    if time.time() > self.deadline:
                        yield TriggerEvent(
                            {"status": "timeout", "message": f"{type(self).__name__} gave up at its deadline"}
                        )
                        return
                    await asyncio.sleep(self.poll_interval)
        except Exception as exc:  # noqa: BLE001 - handed to the task, which fails with it
            yield TriggerEvent({"status": "error", "message": str(exc)})


class D1PollTrigger(_PollingTrigger):
    """Polls a D1 export or import (`kind`) by its bookmark until complete or error."""

    def __init__(
        self,
        conn_id: str,
        database_id: str,
        kind: str,
        bookmark: str,
        poll_interval: float = 1.0,
        deadline: float = 0.0,
    ):
        super().__init__(conn_id, poll_interval, deadline)
        self.database_id = database_id
        self.kind = kind
        self.bookmark = bookmark

    def serialize(self) -> tuple[str, dict]:
        return (
            f"{__name__}.D1PollTrigger",
            {**self._kwargs(), "database_id": self.database_id, "kind": self.kind, "bookmark": self.bookmark},
        )

    async def check(self, cf: _AsyncCloudflare) -> dict | None:
        if self.kind == "export":
            body = {"output_format": "polling", "current_bookmark": self.bookmark}
        else:
            body = {"action": "poll", "current_bookmark": self.bookmark}
        result = await cf.call("POST", f"/d1/database/{self.database_id}/{self.kind}", json=body)
        if result.get("status") == "complete":
            return {"status": "complete", "result": result}
        if result.get("status") == "error" or result.get("success") is False:
            return {"status": "error", "message": result.get("error") or str(result.get("errors"))}
        return None


class VectorizeMutationTrigger(_PollingTrigger):
    """Waits until an index has processed a mutation (and holds the expected number of vectors)."""

    def __init__(
        self,
        conn_id: str,
        index: str,
        mutation_id: str,
        expected_count: int | None = None,
        poll_interval: float = 1.0,
        deadline: float = 0.0,
    ):
        super().__init__(conn_id, poll_interval, deadline)
        self.index = index
        self.mutation_id = mutation_id
        self.expected_count = expected_count

    def serialize(self) -> tuple[str, dict]:
        return (
            f"{__name__}.VectorizeMutationTrigger",
            {
                **self._kwargs(),
                "index": self.index,
                "mutation_id": self.mutation_id,
                "expected_count": self.expected_count,
            },
        )

    async def check(self, cf: _AsyncCloudflare) -> dict | None:
        info = await cf.call("GET", f"/vectorize/v2/indexes/{self.index}/info")
        if info.get("processedUpToMutation") == self.mutation_id and (
            self.expected_count is None or info.get("vectorCount") == self.expected_count
        ):
            return {"status": "complete", "info": info}
        return None
