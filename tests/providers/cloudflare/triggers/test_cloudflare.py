"""Deferrable triggers against localflare, run under asyncio as the triggerer runs them: they read the
connection themselves (no token in their kwargs), poll through their hook's async client within the
request budget, and end with one JSON-serialisable event."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import time
import uuid

import pytest

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.triggers.cloudflare import (
    CloudflarePollTrigger,
    D1PollTrigger,
    VectorizeMutationTrigger,
)

CONN = "cloudflare_default"


def first_event(trigger) -> dict:
    """The first event the trigger yields (the triggerer stops it after that), as a JSON-safe dict."""

    async def run():
        async for event in trigger.run():
            return event

    event = asyncio.run(run())
    assert json.loads(json.dumps(event.payload)) == event.payload  # the triggerer stores it as JSON
    return event.payload


def assert_round_trips(trigger, token: str) -> dict:
    """serialize() names an importable class, rebuilds an equal trigger, and carries no secret."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is type(trigger)
    assert cls(**kwargs).serialize() == (classpath, kwargs)
    text = json.dumps(kwargs)
    assert token not in text and not {"token", "password", "api_token"} & set(kwargs)
    return kwargs


@pytest.fixture
def scratch_db(cf):
    hook = D1Hook()
    db = hook.create_database(f"test-trigger-{uuid.uuid4().hex[:12]}")["uuid"]
    hook.query(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'), ('b')")
    yield db
    hook.delete_database(db)


# ---- D1PollTrigger ---------------------------------------------------------------------------


def test_d1_poll_reaches_complete_for_an_export(cf, scratch_db):
    started = D1Hook().export_request(scratch_db)  # start the export; the trigger polls it to the end
    trigger = D1PollTrigger(
        CONN, scratch_db, "export", started["at_bookmark"], poll_interval=0.1, deadline=time.time() + 60
    )
    kwargs = assert_round_trips(trigger, cf.token)
    assert kwargs == {
        "conn_id": CONN,
        "poll_interval": 0.1,
        "deadline": trigger.deadline,
        "database_id": scratch_db,
        "kind": "export",
        "bookmark": started["at_bookmark"],
        "priority": "bulk",
    }

    event = first_event(trigger)
    assert event["status"] == "complete"
    assert event["result"]["at_bookmark"] == started["at_bookmark"]
    assert event["result"]["result"]["signed_url"].startswith("http")


def test_d1_poll_reports_an_error_for_the_fts5_database(cf, api):
    # The hook refuses to start this export (it raises at once), so start it over raw HTTP for a bookmark.
    demo = D1Hook().find_database("claudes-friend-db")
    started = api.post(f"/accounts/{{acct}}/d1/database/{demo}/export", json={"output_format": "polling"}).json()[
        "result"
    ]
    event = first_event(D1PollTrigger(CONN, demo, "export", started["at_bookmark"], 0.1, time.time() + 60))
    assert event["status"] == "error"
    assert "Virtual Tables (fts5): chunks_fts" in event["message"]


def test_d1_poll_gives_a_timeout_event_at_its_deadline(lf_fresh, connect):
    server = lf_fresh("--faults", "export_stall", seed=False)  # this export never completes
    connect(server, budget={"bulk_rps": 0})
    hook = D1Hook()
    db = hook.create_database("test-stall")["uuid"]
    hook.query(db, "CREATE TABLE t (v TEXT)")
    started = hook.export_request(db)
    assert started["status"] == "active"

    began = time.monotonic()
    event = first_event(D1PollTrigger(CONN, db, "export", started["at_bookmark"], 0.2, time.time() + 1.0))
    assert event == {"status": "timeout", "message": "D1PollTrigger gave up at its deadline"}
    assert 0.9 <= time.monotonic() - began < 10  # it kept polling until the deadline, then stopped


def test_d1_poll_reports_an_unknown_bookmark_as_an_error(cf, scratch_db):
    event = first_event(D1PollTrigger(CONN, scratch_db, "export", "00000000-no-such-bookmark", 0.1, time.time() + 30))
    assert event["status"] == "error" and "No export in progress" in event["message"]


# ---- VectorizeMutationTrigger ----------------------------------------------------------------


@pytest.fixture
def scratch_index(cf):
    hook = VectorizeHook()
    name = f"test-trigger-{uuid.uuid4().hex[:12]}"
    hook.create_index(name, dimensions=8, metric="cosine")
    yield hook, name
    hook.delete_index(name)


def test_vectorize_mutation_trigger_completes_after_an_upsert(cf, scratch_index):
    hook, index = scratch_index
    vectors = [{"id": f"v{i}", "values": [float(i + 1)] + [0.5] * 7, "metadata": {"n": i}} for i in range(3)]
    (mutation,) = hook.upsert(index, vectors)
    trigger = VectorizeMutationTrigger(
        CONN, index, mutation, expected_count=3, poll_interval=0.1, deadline=time.time() + 60
    )
    kwargs = assert_round_trips(trigger, cf.token)
    assert (kwargs["index"], kwargs["mutation_id"], kwargs["expected_count"]) == (index, mutation, 3)

    event = first_event(trigger)
    assert event["status"] == "complete"
    assert event["info"]["processedUpToMutation"] == mutation and event["info"]["vectorCount"] == 3
    assert {v["id"] for v in hook.get_by_ids(index, ["v0", "v1", "v2"])} == {"v0", "v1", "v2"}  # applied


def test_vectorize_mutation_trigger_times_out_when_the_count_never_matches(cf, scratch_index):
    hook, index = scratch_index
    (mutation,) = hook.upsert(index, [{"id": "only", "values": [1.0] * 8}])
    event = first_event(
        VectorizeMutationTrigger(CONN, index, mutation, expected_count=2, poll_interval=0.1, deadline=time.time() + 1.0)
    )
    assert event == {"status": "timeout", "message": "VectorizeMutationTrigger gave up at its deadline"}


# ---- what every trigger shares: serialisation, the hook's client, the budget -----------------


class DatabaseAppearsTrigger(CloudflarePollTrigger):
    """A trigger written against the base class only: waits until a D1 database of that name exists."""

    hook_class = D1Hook

    def __init__(self, conn_id: str, name: str, poll_interval: float = 1.0, deadline: float = 0.0, priority="bulk"):
        super().__init__(conn_id, poll_interval, deadline, priority)
        self.name = name

    async def check(self, hook: D1Hook) -> dict | None:
        dbs = await hook.aget(hook.account_path("/d1/database"), {"name": self.name})
        return {"status": "complete", "uuid": dbs[0]["uuid"]} if dbs else None


@pytest.mark.parametrize(
    "trigger",
    [
        D1PollTrigger(CONN, "db-uuid", "import", "bm", 0.5, 1.0e9, "monitor"),
        VectorizeMutationTrigger(CONN, "an-index", "m-1", None, poll_interval=2.0, deadline=5.0),
        DatabaseAppearsTrigger("other_conn", "new-db", deadline=7.0),
    ],
    ids=["d1", "vectorize", "subclass"],
)
def test_serialize_is_generic_and_names_every_constructor_argument(trigger):
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{type(trigger).__module__}.{type(trigger).__qualname__}"
    assert set(kwargs) == set(inspect.signature(type(trigger).__init__).parameters) - {"self"}
    assert all(kwargs[name] == getattr(trigger, name) for name in kwargs)
    rebuilt = type(trigger)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs) and json.loads(json.dumps(kwargs)) == kwargs
    # The base class is the only serialize: no trigger repeats it.
    assert all("serialize" not in cls.__dict__ for cls in (D1PollTrigger, VectorizeMutationTrigger))


def test_a_trigger_built_on_the_base_class_uses_its_hooks_async_client(cf):
    hook = D1Hook()
    name = f"test-appears-{uuid.uuid4().hex[:10]}"
    trigger = DatabaseAppearsTrigger(CONN, name, poll_interval=0.1, deadline=time.time() + 30)

    async def create_later():
        await asyncio.sleep(0.3)
        return await asyncio.to_thread(hook.create_database, name)

    async def both():
        created, event = await asyncio.gather(create_later(), anext(trigger.run()))
        return created, event.payload

    created, event = asyncio.run(both())
    try:
        assert event == {"status": "complete", "uuid": created["uuid"]}
    finally:
        hook.delete_database(created["uuid"])


def test_a_bad_token_in_the_triggerer_is_an_error_event_without_the_token(cf, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CF_WRONG",
        json.dumps(
            {
                "conn_type": "cloudflare",
                "password": "wrong-" + cf.token,
                "extra": {"account_id": cf.account_id, "base_url": cf.api_url},
            }
        ),
    )
    event = first_event(
        VectorizeMutationTrigger("cf_wrong", cf.index_name, "m", poll_interval=0.1, deadline=time.time() + 30)
    )
    assert event["status"] == "error" and "Authentication error" in event["message"]
    assert cf.token not in event["message"]


def test_triggers_spend_the_budget_by_their_priority(lf_fresh, connect):
    # Bulk clients are paced (here 4 requests a second); monitor ones are not.
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 4})
    hook = VectorizeHook()
    index = "test-trigger-budget"
    hook.create_index(index, dimensions=8, metric="cosine")
    (mutation,) = hook.upsert(index, [{"id": "only", "values": [1.0] * 8}])
    info_route = "route:GET /accounts/{account_id}/vectorize/v2/indexes/{index_name}/info"

    def polls(priority: str) -> int:
        before = server.counters().get(info_route, 0)
        trigger = VectorizeMutationTrigger(
            CONN, index, mutation, expected_count=2, poll_interval=0.02, deadline=time.time() + 1.0, priority=priority
        )
        assert first_event(trigger)["status"] == "timeout"  # the count never matches
        return server.counters()[info_route] - before

    waited = hook.budget.waited
    bulk, monitor = polls("bulk"), polls("monitor")
    assert bulk <= 7 < 15 <= monitor, (bulk, monitor)
    assert hook.budget.waited > waited  # the trigger waited on the process's shared budget
