"""VectorizeHook against localflare: indexes, writes at the documented maxima, waits, reads and export.

The shared demo index `claudes-companion` (615 vectors x 384, cosine, metadata index `repo`) is
only read; every write goes to a scratch index that the test deletes. Call counts are measured
with localflare's per-route counters on private servers, so nothing else adds to them.
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
import uuid
from pathlib import Path

import pytest

from airflow_provider_cloudflare.errors import CloudflareBadRequest, CloudflareNotFound, CloudflareTimeout
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inflight import ServerInFlight, bulk_threads  # noqa: E402

DEMO = "claudes-companion"
ROUTES = "/accounts/{account_id}/vectorize/v2/indexes"


def scratch_name() -> str:
    return f"scratch-{uuid.uuid4().hex[:10]}"


def calls(before: dict, after: dict, method: str, suffix: str) -> int:
    """Requests to METHOD <template ending in suffix> between two counter readings."""
    key = f"route:{method} {ROUTES}{suffix}"
    return after.get(key, 0) - before.get(key, 0)


def route_calls(before: dict, after: dict) -> dict:
    """Requests per route between two counter readings (routes called at least once)."""
    keys = {k for k in after if k.startswith("route:")}
    return {k: after[k] - before.get(k, 0) for k in keys if after[k] != before.get(k, 0)}


def vec8(i: int) -> list[float]:
    # Distinct, non-zero 8-dim vectors; small integers keep the NDJSON short.
    return [float((i >> b) & 7) + 1.0 for b in range(0, 24, 3)]


@pytest.fixture
def scratch(cf):
    """A scratch index name on the shared server, deleted afterwards whatever happens."""
    hook = VectorizeHook()
    name = scratch_name()
    yield hook, name
    try:
        hook.delete_index(name)
    except CloudflareNotFound:
        pass


def test_index_lifecycle_metadata_index_namespaces_and_insert_vs_upsert(scratch):
    hook, name = scratch
    created = hook.create_index(name, 8, "euclidean", description="hook test")
    assert created["name"] == name and created["config"] == {"dimensions": 8, "metric": "euclidean"}
    assert name in [i["name"] for i in hook.list_indexes()]
    got = hook.get_index(name)
    assert got["config"]["dimensions"] == 8 and got["description"] == "hook test"
    assert hook.info(name)["vectorCount"] == 0
    # A second index of the same name is refused (HTTP 409, a 4xx).
    with pytest.raises(CloudflareBadRequest) as dup:
        hook.create_index(name, 8, "euclidean")
    assert dup.value.status == 409

    assert isinstance(hook.create_metadata_index(name, "kind", "string"), str)
    assert hook.list_metadata_indexes(name) == [{"propertyName": "kind", "indexType": "string"}]

    vectors = [
        {
            "id": f"v{i}",
            "values": vec8(i),
            "metadata": {"kind": "even" if i % 2 == 0 else "odd", "i": i},
            "namespace": "even" if i % 2 == 0 else "odd",
        }
        for i in range(10)
    ]
    mutations = hook.upsert(name, vectors)
    assert len(mutations) == 1
    info = hook.wait_for_mutation(name, mutations[-1], expected_count=10, timeout=30, poll_interval=0.1)
    assert info["processedUpToMutation"] == mutations[-1] and info["vectorCount"] == 10

    # Euclidean: a stored vector is at distance 0 from itself and ranks first.
    hit = hook.query(name, vec8(3), top_k=3, return_metadata="all")
    assert hit["matches"][0]["id"] == "v3" and hit["matches"][0]["score"] == pytest.approx(0.0, abs=1e-6)
    assert hit["matches"][0]["metadata"] == {"kind": "odd", "i": 3}
    in_ns = hook.query(name, vec8(3), top_k=10, namespace="even")
    assert {m["id"] for m in in_ns["matches"]} == {f"v{i}" for i in range(0, 10, 2)}
    filtered = hook.query(name, vec8(3), top_k=10, filter={"kind": "odd"}, return_metadata="indexed")
    assert {m["id"] for m in filtered["matches"]} == {f"v{i}" for i in range(1, 10, 2)}
    assert all(m["metadata"] == {"kind": "odd"} for m in filtered["matches"])  # only indexed properties
    with_values = hook.query(name, vec8(0), top_k=1, return_values=True)
    assert with_values["matches"][0]["values"] == vec8(0)

    # insert keeps an existing vector; upsert replaces it.
    last = hook.insert(name, [{"id": "v0", "values": [9.0] * 8}, {"id": "new", "values": [5.0] * 8}])[-1]
    hook.wait_for_mutation(name, last, expected_count=11, timeout=30, poll_interval=0.1)
    assert {v["id"]: v["values"] for v in hook.get_by_ids(name, ["v0", "new"])} == {"v0": vec8(0), "new": [5.0] * 8}
    last = hook.upsert(name, [{"id": "v0", "values": [9.0] * 8}])[-1]
    hook.wait_for_mutation(name, last, timeout=30, poll_interval=0.1)
    (v0,) = hook.get_by_ids(name, ["v0"])
    assert v0["values"] == [9.0] * 8 and v0["metadata"] == {} and v0["namespace"] is None

    # get_by_ids yields only ids that exist; delete_by_ids removes them.
    assert [v["id"] for v in hook.get_by_ids(name, ["v1", "nope", "v2"])] == ["v1", "v2"]
    last = hook.delete_by_ids(name, ["v1", "v2", "nope"])[-1]
    hook.wait_for_mutation(name, last, expected_count=9, timeout=30, poll_interval=0.1)
    assert sorted(hook.list_ids(name)) == sorted(["new", "v0"] + [f"v{i}" for i in range(3, 10)])

    hook.delete_index(name)
    assert name not in [i["name"] for i in hook.list_indexes()]
    with pytest.raises(CloudflareNotFound):
        hook.get_index(name)


def test_write_batch_size_is_checked_before_any_request(cf):
    hook = VectorizeHook()
    for bad in (0, 5001):
        with pytest.raises(ValueError):
            hook.upsert("never-called", [{"id": "a", "values": [1.0]}], batch_size=bad)
        with pytest.raises(ValueError):
            hook.insert("never-called", [{"id": "a", "values": [1.0]}], batch_size=bad)


def test_wait_for_mutation_with_a_wrong_expected_count_times_out(scratch):
    hook, name = scratch
    hook.create_index(name, 8, "cosine")
    last = hook.upsert(name, [{"id": "a", "values": vec8(1)}])[-1]
    hook.wait_for_mutation(name, last, expected_count=1, timeout=30, poll_interval=0.1)
    # The mutation is applied, but the count never becomes 2.
    with pytest.raises(CloudflareTimeout):
        hook.wait_for_mutation(name, last, expected_count=2, timeout=0.5, poll_interval=0.1)


def test_upsert_12000_vectors_is_3_requests_and_delete_250_ids_is_3(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = VectorizeHook()
    name = scratch_name()
    hook.create_index(name, 8, "cosine")

    before = server.counters()
    mutations = hook.upsert(name, ({"id": f"id-{i:05d}", "values": vec8(i)} for i in range(12_000)))
    after = server.counters()
    assert calls(before, after, "POST", "/{index_name}/upsert") == 3  # 5,000 + 5,000 + 2,000
    assert len(set(mutations)) == 3
    hook.wait_for_mutation(name, mutations[-1], expected_count=12_000, timeout=60, poll_interval=0.2)

    # list_ids follows the cursor: 12 pages of 1,000 ids, every id exactly once.
    before = server.counters()
    ids = list(hook.list_ids(name))
    assert calls(before, server.counters(), "GET", "/{index_name}/list") == 12
    assert len(ids) == len(set(ids)) == 12_000

    before = server.counters()
    mutations = hook.delete_by_ids(name, ids[:250])
    assert calls(before, server.counters(), "POST", "/{index_name}/delete_by_ids") == 3  # 100 + 100 + 50
    assert len(mutations) == 3
    hook.wait_for_mutation(name, mutations[-1], expected_count=11_750, timeout=60, poll_interval=0.2)
    assert list(hook.get_by_ids(name, ids[:250])) == []
    hook.delete_index(name)


def test_export_of_the_demo_index_is_1_list_call_and_7_get_by_ids_calls(lf_fresh, connect):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    hook = VectorizeHook()
    out = io.BytesIO()
    before = server.counters()
    stats = hook.export_vectors(DEMO, out)
    after = server.counters()
    assert stats == {"count": 615, "dimensions": 384, "ids_listed": 615, "missing": 0}
    assert calls(before, after, "GET", "/{index_name}/list") == 1
    assert calls(before, after, "POST", "/{index_name}/get_by_ids") == 7  # ceil(615 / 100)
    assert calls(before, after, "GET", "/{index_name}/info") == 1

    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len({r["id"] for r in records}) == 615
    assert all(len(r["values"]) == 384 and "repo" in r["metadata"] for r in records)
    assert all(set(r) == {"id", "values", "metadata", "namespace"} for r in records)


def test_export_with_calls_in_flight_makes_the_same_calls_and_the_same_bytes(lf_fresh, connect, exchanges_file):
    server = lf_fresh()
    # Every get_by_ids answers 300 ms late, as a real one may; localflare awaits the delay, so calls overlap.
    server.add_faults("latency:route=POST */get_by_ids,ms=300")
    runs = {}
    for n in (1, 4):
        connect(server, budget={"bulk_rps": 0}, max_in_flight=n)
        hook = VectorizeHook()
        assert hook.max_in_flight == n
        out = io.BytesIO()
        before = server.counters()
        with ServerInFlight(
            server, exchanges_file, "POST", f"{ROUTES}/{{index_name}}/get_by_ids", "/get_by_ids"
        ) as seen:
            stats = hook.export_vectors(DEMO, out)
        runs[n] = {"bytes": out.getvalue(), "stats": stats, "calls": route_calls(before, server.counters())}
        runs[n]["most_at_once"] = seen.most

    one, four = runs[1], runs[4]
    assert one["stats"] == four["stats"] == {"count": 615, "dimensions": 384, "ids_listed": 615, "missing": 0}
    assert four["bytes"] == one["bytes"]
    assert four["calls"] == one["calls"]
    assert calls({}, four["calls"], "POST", "/{index_name}/get_by_ids") == 7
    # One at a time, the server never holds two; with 4 in flight it held several at once, never more than 4.
    assert one["most_at_once"] <= 1
    assert 2 <= four["most_at_once"] <= 4


def test_an_index_deleted_mid_export_fails_it_and_no_call_starts_after(lf_fresh, connect):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0}, max_in_flight=2)
    hook = VectorizeHook()

    class DeletingWriter(io.BytesIO):
        """Deletes the index on the first write: the batches not yet fetched then find nothing."""

        def write(self, data) -> int:
            if not self.tell():
                hook.delete_index(DEMO)
            return super().write(data)

    before = server.counters()
    with pytest.raises(CloudflareNotFound):
        hook.export_vectors(DEMO, DeletingWriter())
    for thread in bulk_threads():  # calls still running when the error surfaced finish on their own
        thread.join(30)
    assert not bulk_threads()
    # Of 7 batches, the 4th and later were asked for after the deletion; the first of them to fail ends
    # the export with at most one more in flight, so at least the last 2 never started.
    assert calls(before, server.counters(), "POST", "/{index_name}/get_by_ids") <= 5


def test_get_by_ids_halves_its_batch_when_cloudflare_refuses_too_many_ids(lf_fresh, connect):
    # Slow answers keep the first batches in flight together (12 by default), so they are refused at
    # once and each halves while the others do.
    server = lf_fresh("--get-by-ids-max", "30", "--faults", "latency:route=POST */get_by_ids,ms=100")
    connect(server, budget={"bulk_rps": 0})
    hook = VectorizeHook()
    assert hook.get_batch_size == 100 and hook.max_in_flight == 12
    ids = list(hook.list_ids(DEMO))
    got = [v["id"] for v in hook.get_by_ids(DEMO, ids)]
    # The hook settled on a batch the server accepts, and every id came back exactly once.
    assert hook.get_batch_size <= 30
    assert len(got) == 615, f"{615 - len(got)} ids lost while halving, e.g. {sorted(set(ids) - set(got))[:3]}"
    assert sorted(got) == sorted(ids)
    # From now on no batch is refused: 60 more ids cost exactly ceil(60 / batch) calls.
    before = server.counters()
    assert len(list(hook.get_by_ids(DEMO, ids[:60]))) == 60
    assert calls(before, server.counters(), "POST", "/{index_name}/get_by_ids") == math.ceil(60 / hook.get_batch_size)


def test_export_loses_nothing_when_get_by_ids_has_to_halve(lf_fresh, connect):
    # A backup that silently drops vectors is the worst outcome: `missing` must stay 0 here,
    # because nothing was deleted while the export ran.
    server = lf_fresh("--get-by-ids-max", "30")
    connect(server, budget={"bulk_rps": 0})
    out = io.BytesIO()
    stats = VectorizeHook().export_vectors(DEMO, out)
    assert stats == {"count": 615, "dimensions": 384, "ids_listed": 615, "missing": 0}
    assert len({json.loads(line)["id"] for line in out.getvalue().splitlines()}) == 615


def test_export_then_upsert_into_a_scratch_index_reproduces_the_vectors(scratch):
    hook, name = scratch
    out = io.BytesIO()
    assert hook.export_vectors(DEMO, out)["count"] == 615
    records = [json.loads(line) for line in out.getvalue().splitlines()]

    hook.create_index(name, 384, "cosine")
    last = hook.upsert(name, records)[-1]
    hook.wait_for_mutation(name, last, expected_count=615, timeout=30, poll_interval=0.1)

    # A stored vector finds itself first with cosine similarity 1, metadata intact.
    for rec in records[::200]:
        top = hook.query(name, rec["values"], top_k=3, return_metadata="all")["matches"][0]
        assert top["id"] == rec["id"] and top["score"] == pytest.approx(1.0, abs=1e-5)
        assert top["metadata"] == rec["metadata"]

    # The copy exports to exactly the same records.
    copy = io.BytesIO()
    assert hook.export_vectors(name, copy) == {"count": 615, "dimensions": 384, "ids_listed": 615, "missing": 0}
    by_id = {r["id"]: r for r in records}
    assert {r["id"]: r for r in map(json.loads, copy.getvalue().splitlines())} == by_id


def test_query_filter_on_the_demo_metadata_index(cf):
    hook = VectorizeHook()
    assert {"propertyName": "repo", "indexType": "string"} in hook.list_metadata_indexes(DEMO)
    (first,) = hook.get_by_ids(DEMO, [next(iter(hook.list_ids(DEMO, count=1)))])
    repo = first["metadata"]["repo"]
    res = hook.query(DEMO, first["values"], top_k=20, return_metadata="all", filter={"repo": repo})
    assert res["matches"][0]["id"] == first["id"]
    assert res["count"] == len(res["matches"]) > 1
    assert all(m["metadata"]["repo"] == repo for m in res["matches"])
    info = hook.info(DEMO)
    assert info["dimensions"] == 384 and info["vectorCount"] == 615


def test_wait_for_mutation_times_out_while_mutations_lag(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = VectorizeHook()
    name = scratch_name()
    hook.create_index(name, 8, "cosine")
    server.add_faults("mutation_lag:seconds=30")
    last = hook.upsert(name, [{"id": "a", "values": vec8(1)}])[-1]
    started = time.monotonic()
    with pytest.raises(CloudflareTimeout) as exc:
        hook.wait_for_mutation(name, last, timeout=1, poll_interval=0.2)
    assert time.monotonic() - started < 10
    assert last in str(exc.value)
    assert hook.info(name)["vectorCount"] == 0
    # Once the lag is back to normal, the same mutation applies and the wait returns.
    server.clear_faults()
    assert hook.wait_for_mutation(name, last, expected_count=1, timeout=30, poll_interval=0.1)["vectorCount"] == 1


def test_unknown_index_is_not_found_for_every_call(cf):
    hook = VectorizeHook()
    name = scratch_name()  # never created
    calls_ = {
        "get_index": lambda: hook.get_index(name),
        "info": lambda: hook.info(name),
        "query": lambda: hook.query(name, [0.1] * 384),
        "upsert": lambda: hook.upsert(name, [{"id": "a", "values": [0.1] * 384}]),
        "insert": lambda: hook.insert(name, [{"id": "a", "values": [0.1] * 384}]),
        "delete_by_ids": lambda: hook.delete_by_ids(name, ["a"]),
        "get_by_ids": lambda: list(hook.get_by_ids(name, ["a"])),
        "list_ids": lambda: list(hook.list_ids(name)),
        "export_vectors": lambda: hook.export_vectors(name, io.BytesIO()),
        "wait_for_mutation": lambda: hook.wait_for_mutation(name, "m", timeout=1),
        "list_metadata_indexes": lambda: hook.list_metadata_indexes(name),
        "create_metadata_index": lambda: hook.create_metadata_index(name, "repo", "string"),
        "delete_index": lambda: hook.delete_index(name),
    }
    for what, call in calls_.items():
        with pytest.raises(CloudflareNotFound):
            call()
            pytest.fail(f"{what} did not raise")
