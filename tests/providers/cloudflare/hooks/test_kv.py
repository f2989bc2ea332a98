"""KVHook against localflare: namespaces, keys with odd names, bulk calls at their maxima, snapshots.

The shared demo namespace `prism-cache` (203 keys, 2 binary `blob:` values, some with expiration
and metadata) is only read; writes go to scratch namespaces that the tests delete. Tests that
count requests or move localflare's clock run on private servers.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from airflow_provider_cloudflare.errors import CloudflareBadRequest, CloudflareNotFound
from airflow_provider_cloudflare.hooks.kv import KVHook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inflight import ServerInFlight, bulk_threads  # noqa: E402

ROUTES = "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}"


def calls(before: dict, after: dict, method: str, suffix: str) -> int:
    key = f"route:{method} {ROUTES}{suffix}"
    return after.get(key, 0) - before.get(key, 0)


def route_calls(before: dict, after: dict) -> dict:
    """Requests per route between two counter readings (routes called at least once)."""
    keys = {k for k in after if k.startswith("route:")}
    return {k: after[k] - before.get(k, 0) for k in keys if after[k] != before.get(k, 0)}


def blob(j: int) -> bytes:
    """The demo's binary values (see localflare/seed.py)."""
    return bytes(range(256)) * (j + 1) + b"\x00\xff"


def records(buf: bytes) -> dict[str, dict]:
    return {r["key"]: r for r in map(json.loads, buf.splitlines())}


@pytest.fixture
def scratch_ns(cf):
    """A scratch namespace on the shared server; deleted afterwards."""
    hook = KVHook()
    ns_id = hook.create_namespace(f"scratch-{uuid.uuid4().hex[:10]}")["id"]
    yield hook, ns_id
    try:
        hook.delete_namespace(ns_id)
    except CloudflareNotFound:
        pass


class ClockJumpingWriter(io.BytesIO):
    """An output file that moves localflare's clock on its first write, i.e. mid-snapshot."""

    def __init__(self, server, seconds: float):
        super().__init__()
        self.server, self.seconds, self.jumped = server, seconds, False

    def write(self, data) -> int:
        if not self.jumped:
            self.jumped = True
            self.server.admin("POST", "clock", {"advance": self.seconds})
        return super().write(data)


def test_namespace_lifecycle_and_find_by_title(scratch_ns, cf):
    hook, ns_id = scratch_ns
    title = next(ns["title"] for ns in hook.list_namespaces() if ns["id"] == ns_id)
    assert hook.find_namespace(title) == ns_id
    assert hook.find_namespace("prism-cache") == cf.kv_id
    with pytest.raises(CloudflareNotFound):
        hook.find_namespace(f"no-such-{uuid.uuid4().hex}")
    hook.delete_namespace(ns_id)
    assert ns_id not in [ns["id"] for ns in hook.list_namespaces()]
    with pytest.raises(CloudflareNotFound):
        list(hook.list_keys(ns_id))


def test_key_names_with_slashes_spaces_and_unicode_round_trip(scratch_ns):
    hook, ns_id = scratch_ns
    names = ["docs/guide/intro.md", "with space  and tab\t", "ünïcødé-键-🔑", "100% sure?#&=+", "trailing/", "a/../b"]
    for i, name in enumerate(names):
        hook.put_value(ns_id, name, f"value {i} of {name}".encode(), metadata={"i": i} if i % 2 else None)
    for i, name in enumerate(names):
        assert hook.get_value(ns_id, name) == f"value {i} of {name}".encode()
    listed = {k["name"]: k for k in hook.list_keys(ns_id)}
    assert set(listed) == set(names)
    assert all(listed[n].get("metadata") == ({"i": i} if i % 2 else None) for i, n in enumerate(names))
    assert sorted(k["name"] for k in hook.list_keys(ns_id, prefix="docs/")) == ["docs/guide/intro.md"]
    assert {k: v["value"] for k, v in hook.bulk_get(ns_id, names).items()} == {
        n: f"value {i} of {n}" for i, n in enumerate(names)
    }

    hook.delete_value(ns_id, "ünïcødé-键-🔑")
    with pytest.raises(CloudflareNotFound):
        hook.get_value(ns_id, "ünïcødé-键-🔑")
    assert "ünïcødé-键-🔑" not in {k["name"] for k in hook.list_keys(ns_id)}


def test_put_value_expiration_ttl_and_binary(scratch_ns):
    hook, ns_id = scratch_ns
    at = int(time.time()) + 7200
    hook.put_value(ns_id, "abs", b"a", expiration=at)
    hook.put_value(ns_id, "ttl", b"t", expiration_ttl=3600, metadata={"kind": "ttl"})
    hook.put_value(ns_id, "bin", blob(0))
    listed = {k["name"]: k for k in hook.list_keys(ns_id)}
    assert listed["abs"]["expiration"] == at
    assert time.time() + 3500 < listed["ttl"]["expiration"] <= time.time() + 3601
    assert listed["ttl"]["metadata"] == {"kind": "ttl"}
    assert "expiration" not in listed["bin"]
    assert hook.get_value(ns_id, "bin") == blob(0)
    # KV refuses a TTL under a minute.
    with pytest.raises(CloudflareBadRequest):
        hook.put_value(ns_id, "short", b"x", expiration_ttl=30)


def test_bulk_get_text_values_metadata_and_missing_keys(cf):
    hook = KVHook()
    keys = list(hook.list_keys(cf.kv_id, prefix="cache:"))[:8]
    with_exp = next(k for k in keys if "expiration" in k)
    names = [k["name"] for k in keys] + ["config:feature-flags", "missing:key"]
    got = hook.bulk_get(cf.kv_id, names)
    assert got["missing:key"] is None
    assert json.loads(got["config:feature-flags"]["value"]) == {"rerank": True, "hybrid_search": False}
    for k in keys:
        assert got[k["name"]]["metadata"] == k["metadata"]
        assert "answer" in json.loads(got[k["name"]]["value"])
    assert got[with_exp["name"]]["expiration"] == with_exp["expiration"]
    plain = hook.bulk_get(cf.kv_id, names, with_metadata=False)
    assert plain == {n: (None if v is None else v["value"]) for n, v in got.items()}
    with pytest.raises(ValueError):
        hook.bulk_get(cf.kv_id, [f"k{i}" for i in range(101)])


def test_bulk_get_of_a_binary_value_is_a_bad_request(cf):
    with pytest.raises(CloudflareBadRequest):
        KVHook().bulk_get(cf.kv_id, ["cache:query:000000", "blob:thumbnail-0"])


def test_bulk_write_25000_items_is_3_requests_and_bulk_delete_too(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = KVHook()
    ns_id = hook.create_namespace("bulk")["id"]

    def item(i: int) -> dict:
        it = {"key": f"k:{i:05d}", "value": f"v{i}" if i % 1000 else bytes([i % 256, 0, 255])}
        if i % 500 == 0:
            it["metadata"] = {"i": i}
        if i % 2500 == 0:
            it["expiration_ttl"] = 3600
        return it

    before = server.counters()
    assert hook.bulk_write(ns_id, (item(i) for i in range(25_000))) == 25_000
    assert calls(before, server.counters(), "PUT", "/bulk") == 3  # 10,000 + 10,000 + 5,000

    before = server.counters()
    listed = list(hook.list_keys(ns_id))
    assert calls(before, server.counters(), "GET", "/keys") == 25  # 1,000 keys a page
    assert [k["name"] for k in listed] == [f"k:{i:05d}" for i in range(25_000)]
    assert {k["name"] for k in listed if "metadata" in k} == {f"k:{i:05d}" for i in range(0, 25_000, 500)}
    assert {k["name"] for k in listed if "expiration" in k} == {f"k:{i:05d}" for i in range(0, 25_000, 2500)}
    assert hook.get_value(ns_id, "k:03000") == bytes([3000 % 256, 0, 255])  # binary went through base64
    assert hook.get_value(ns_id, "k:03001") == b"v3001"

    before = server.counters()
    assert hook.bulk_delete(ns_id, (k["name"] for k in listed)) == 25_000
    assert calls(before, server.counters(), "POST", "/bulk/delete") == 3
    assert list(hook.list_keys(ns_id)) == []


def test_list_namespaces_follows_pages(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = KVHook()
    made = {hook.create_namespace(f"ns-{i:03d}")["id"] for i in range(105)}
    before = server.counters()
    listed = hook.list_namespaces()
    assert {ns["id"] for ns in listed} == made and len(listed) == 105
    key = "route:GET /accounts/{account_id}/storage/kv/namespaces"
    assert server.counters()[key] - before.get(key, 0) == 2  # 100 + 5
    for ns_id in list(made)[:5]:
        hook.delete_namespace(ns_id)
    assert len(hook.list_namespaces()) == 100


def test_snapshot_of_the_demo_namespace_costs_a_handful_of_calls(lf_fresh, connect):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    hook = KVHook()
    out = io.BytesIO()
    before = server.counters()
    stats = hook.snapshot(server.kv_id, out)
    after = server.counters()
    assert stats == {"keys": 203, "values": 203, "vanished": 0, "single_gets": 2}
    assert calls(before, after, "GET", "/keys") == 1
    assert calls(before, after, "GET", "/values/{key_name:path}") == 2  # only the two binary values
    bulk_gets = calls(before, after, "POST", "/bulk/get")
    # 3 batches of <= 100, plus the bisection that isolates the 2 binary values.
    assert 3 <= bulk_gets <= 20
    snap = records(out.getvalue())
    assert base64.b64decode(snap["blob:thumbnail-1"]["value_b64"]) == blob(1)

    # Keys only: one list call, no value reads.
    before = server.counters()
    keys_only = io.BytesIO()
    assert hook.snapshot(server.kv_id, keys_only, include_values=False)["keys"] == 203
    after = server.counters()
    assert calls(before, after, "GET", "/keys") == 1 and calls(before, after, "POST", "/bulk/get") == 0
    assert all("value_b64" not in r for r in records(keys_only.getvalue()).values())


def test_snapshot_then_restore_reproduces_keys_values_metadata_and_expiration(scratch_ns, cf):
    hook, ns_id = scratch_ns
    src = io.BytesIO()
    assert hook.snapshot(cf.kv_id, src)["keys"] == 203
    src.seek(0)
    assert hook.restore_snapshot(ns_id, src) == {"written": 203, "skipped_expired": 0}

    copy = io.BytesIO()
    assert hook.snapshot(ns_id, copy)["keys"] == 203
    original, restored = records(src.getvalue()), records(copy.getvalue())
    assert restored == original
    assert sum(1 for r in original.values() if r["expiration"]) > 0
    assert sum(1 for r in original.values() if r["metadata"]) > 0
    # Binary values come back byte for byte, with their metadata.
    for j in range(2):
        assert hook.get_value(ns_id, f"blob:thumbnail-{j}") == blob(j)
    listed = {k["name"]: k for k in hook.list_keys(ns_id, prefix="blob:")}
    assert listed["blob:thumbnail-0"]["metadata"] == {"content_type": "image/png"}


def test_a_key_that_expires_during_the_snapshot_is_left_out(lf_fresh, connect):
    server = lf_fresh(seed=False)
    # One batch at a time, so the clock jump lands between the two batches' reads (in flight together,
    # the second could be read before the jump).
    connect(server, budget={"bulk_rps": 0}, max_in_flight=1)
    hook = KVHook()
    ns_id = hook.create_namespace("expiring")["id"]
    items = [{"key": f"k:{i:03d}", "value": f"v{i}"} for i in range(150)]
    items += [
        {"key": "k:120bin", "value": blob(0)},  # a binary value in the second batch
        {"key": "z:short", "value": "gone soon", "expiration_ttl": 60},
        {"key": "z:short-bin", "value": blob(1), "expiration_ttl": 60},
    ]
    hook.bulk_write(ns_id, items)

    # All 153 keys are listed first; the clock then jumps 2 minutes before the second batch is read.
    out = ClockJumpingWriter(server, 120)
    stats = hook.snapshot(ns_id, out)
    assert stats == {"keys": 151, "values": 151, "vanished": 2, "single_gets": 1}
    snap = records(out.getvalue())
    assert "z:short" not in snap and "z:short-bin" not in snap
    assert base64.b64decode(snap["k:120bin"]["value_b64"]) == blob(0)


HOSTILE = ["<script>alert('k')</script>", "ünïcødé-键-🔑", "a/../b", "100% sure?#&=+", "  spaced\tout  ", '"quoted"']


def test_snapshot_and_get_values_with_calls_in_flight_match_one_at_a_time(lf_fresh, connect, exchanges_file):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = KVHook()
    ns_id = hook.create_namespace("in-flight")["id"]
    later = int(time.time()) + 30 * 86400
    items = [
        {
            "key": f"k:{i:03d}:{HOSTILE[i % len(HOSTILE)]}",
            "value": blob(0) if i == 230 else f"value {i} {HOSTILE[i % len(HOSTILE)]}",  # one binary, in batch 3
            **({"metadata": {"i": i, "note": HOSTILE[i % len(HOSTILE)]}} if i % 7 == 0 else {}),
            **({"expiration": later} if i % 11 == 0 else {}),
        }
        for i in range(450)
    ]
    hook.bulk_write(ns_id, items)
    keys = [it["key"] for it in items] + ["missing:<b>none</b>"]

    runs = {}
    for n in (1, 4):
        connect(server, budget={"bulk_rps": 0}, max_in_flight=n)
        hook = KVHook()
        out = io.BytesIO()
        # Every bulk get answers 300 ms late, as a real one may; localflare awaits the delay, so calls overlap.
        server.add_faults("latency:route=POST */bulk/get,ms=300")
        before = server.counters()
        with ServerInFlight(server, exchanges_file, "POST", f"{ROUTES}/bulk/get", "/bulk/get") as seen:
            stats = hook.snapshot(ns_id, out)
        middle = server.counters()
        server.clear_faults()  # the binary value's halving is a chain of calls no concurrency shortens
        values = hook.get_values(ns_id, keys)
        runs[n] = {
            "bytes": out.getvalue(),
            "stats": stats,
            "snapshot_calls": route_calls(before, middle),
            "values": values,
            "get_values_calls": route_calls(middle, server.counters()),
            "most_at_once": seen.most,
        }

    one, four = runs[1], runs[4]
    assert one["stats"] == four["stats"] == {"keys": 450, "values": 450, "vanished": 0, "single_gets": 1}
    assert four["bytes"] == one["bytes"]
    assert four["snapshot_calls"] == one["snapshot_calls"]
    assert four["values"] == one["values"]
    assert four["get_values_calls"] == one["get_values_calls"]
    snap = records(four["bytes"])
    assert list(snap) == sorted(it["key"] for it in items)  # listing order
    assert base64.b64decode(snap[items[230]["key"]]["value_b64"]) == blob(0)
    assert snap[items[7]["key"]]["metadata"] == {"i": 7, "note": HOSTILE[1]}
    assert snap[items[11]["key"]]["expiration"] == later
    assert four["values"]["missing:<b>none</b>"] is None and four["values"][items[230]["key"]] == blob(0)
    assert four["values"][items[5]["key"]] == f"value 5 {HOSTILE[5]}".encode()
    # One at a time, the server never holds two bulk gets; with 4 in flight it held several, never more than 4.
    assert one["most_at_once"] <= 1
    assert 2 <= four["most_at_once"] <= 4


def test_a_namespace_deleted_mid_snapshot_fails_it_and_no_call_starts_after(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0}, max_in_flight=2)
    hook = KVHook()
    ns_id = hook.create_namespace("doomed")["id"]
    hook.bulk_write(ns_id, [{"key": f"k:{i:04d}", "value": f"v{i}"} for i in range(1000)])

    class DeletingWriter(io.BytesIO):
        """Deletes the namespace on the first write: the batches not yet read then find nothing."""

        def write(self, data) -> int:
            if not self.tell():
                hook.delete_namespace(ns_id)
            return super().write(data)

    before = server.counters()
    with pytest.raises(CloudflareNotFound):
        hook.snapshot(ns_id, DeletingWriter())
    for thread in bulk_threads():  # calls still running when the error surfaced finish on their own
        thread.join(30)
    assert not bulk_threads()
    # Of 10 batches, the 4th and later were asked for after the deletion; the first of them to fail ends
    # the snapshot with at most one more in flight, so at least the last 5 never started.
    assert calls(before, server.counters(), "POST", "/bulk/get") <= 5


def test_restore_skips_keys_that_expire_within_a_minute(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = KVHook()
    src = hook.create_namespace("src")["id"]
    dst = hook.create_namespace("dst")["id"]
    hook.put_value(src, "r:soon", b"soon", expiration_ttl=60)
    hook.put_value(src, "r:later", b"later", expiration_ttl=7200, metadata={"m": 1})
    hook.put_value(src, "r:forever", b"forever")
    hook.put_value(src, "r:bin", blob(1))
    server.admin("POST", "clock", {"advance": 30})  # r:soon is still alive, but for 30 s only

    snap = io.BytesIO()
    assert hook.snapshot(src, snap)["keys"] == 4
    soon = records(snap.getvalue())["r:soon"]
    snap.seek(0)
    assert hook.restore_snapshot(dst, snap) == {"written": 3, "skipped_expired": 1}

    restored = {k["name"]: k for k in hook.list_keys(dst)}
    assert set(restored) == {"r:later", "r:forever", "r:bin"}
    assert restored["r:later"]["expiration"] == records(snap.getvalue())["r:later"]["expiration"]
    assert restored["r:later"]["metadata"] == {"m": 1}
    assert hook.get_value(dst, "r:bin") == blob(1)
    # Why it is skipped: KV would refuse that expiration, failing the whole batch.
    with pytest.raises(CloudflareBadRequest):
        hook.bulk_write(dst, [{"key": "r:soon", "value": b"soon", "expiration": soon["expiration"]}])


def test_unknown_namespace_is_not_found_for_every_call(cf):
    hook = KVHook()
    ns_id = uuid.uuid4().hex  # never created
    line = json.dumps({"key": "a", "expiration": None, "metadata": None, "value_b64": "YQ=="}).encode()
    calls_ = {
        "list_keys": lambda: list(hook.list_keys(ns_id)),
        "get_value": lambda: hook.get_value(ns_id, "a"),
        "put_value": lambda: hook.put_value(ns_id, "a", b"x"),
        "put_value with metadata": lambda: hook.put_value(ns_id, "a", b"x", metadata={"m": 1}),
        "delete_value": lambda: hook.delete_value(ns_id, "a"),
        "bulk_get": lambda: hook.bulk_get(ns_id, ["a"]),
        "bulk_write": lambda: hook.bulk_write(ns_id, [{"key": "a", "value": "x"}]),
        "bulk_delete": lambda: hook.bulk_delete(ns_id, ["a"]),
        "snapshot": lambda: hook.snapshot(ns_id, io.BytesIO()),
        "restore_snapshot": lambda: hook.restore_snapshot(ns_id, [line]),
        "delete_namespace": lambda: hook.delete_namespace(ns_id),
    }
    for what, call in calls_.items():
        with pytest.raises(CloudflareNotFound):
            call()
            pytest.fail(f"{what} did not raise")


def test_missing_key_in_the_demo_namespace_is_not_found(cf):
    with pytest.raises(CloudflareNotFound):
        KVHook().get_value(cf.kv_id, "no-such-key")
