"""Vectorize v2 behaviour: validation, limits, async mutations, exact search and snapshot listing."""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest

BASE = "/accounts/{acct}/vectorize/v2/indexes"


def ndjson(vectors) -> bytes:
    return "\n".join(json.dumps(v) for v in vectors).encode()


def unit(seed: int, dims: int = 8) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(dims)
    return [float(x) for x in v / np.linalg.norm(v)]


@pytest.fixture
def index(api):
    name = f"scratch-{uuid.uuid4().hex[:8]}"
    resp = api.post(BASE, json={"name": name, "config": {"dimensions": 8, "metric": "cosine"}})
    assert resp.status_code == 200, resp.text
    yield name
    api.delete(f"{BASE}/{name}")


def write(api, name, vectors, verb="upsert"):
    resp = api.post(f"{BASE}/{name}/{verb}", data=ndjson(vectors), headers={"Content-Type": "application/x-ndjson"})
    assert resp.status_code == 200, resp.text
    return resp.json()["result"]["mutationId"]


def wait_applied(api, name, mutation_id, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = api.get(f"{BASE}/{name}/info").json()["result"]
        if info["processedUpToMutation"] == mutation_id:
            return info
        time.sleep(0.05)
    raise AssertionError(f"mutation {mutation_id} never applied")


def test_mutations_apply_after_the_lag(api, index):
    mid = write(api, index, [{"id": "a", "values": unit(1)}])
    assert api.get(f"{BASE}/{index}/info").json()["result"]["vectorCount"] == 0  # not yet visible
    info = wait_applied(api, index, mid)
    assert info["vectorCount"] == 1 and info["dimensions"] == 8 and info["processedUpToDatetime"]


def test_insert_keeps_the_first_and_upsert_replaces(api, index):
    wait_applied(api, index, write(api, index, [{"id": "a", "values": unit(1), "metadata": {"v": 1}}]))
    wait_applied(api, index, write(api, index, [{"id": "a", "values": unit(2), "metadata": {"v": 2}}], verb="insert"))
    got = api.post(f"{BASE}/{index}/get_by_ids", json={"ids": ["a"]}).json()["result"]
    assert got[0]["metadata"] == {"v": 1} and got[0]["values"] == pytest.approx(unit(1), abs=1e-6)
    wait_applied(api, index, write(api, index, [{"id": "a", "values": unit(3), "metadata": {"v": 3}}]))
    got = api.post(f"{BASE}/{index}/get_by_ids", json={"ids": ["a", "missing"]}).json()["result"]
    assert len(got) == 1 and got[0]["metadata"] == {"v": 3}


def test_write_validation(api, index):
    def err(data, ctype="application/x-ndjson", verb="upsert"):
        resp = api.post(f"{BASE}/{index}/{verb}", data=data, headers={"Content-Type": ctype})
        assert resp.status_code == 400, resp.text
        return resp.json()["errors"][0]

    assert err(ndjson([{"id": "a", "values": [0.1] * 7}]))["code"] == 40023
    assert err(b"{not json")["code"] == 40023
    assert err(ndjson([{"id": "x" * 65, "values": unit(1)}]))["code"] == 40023
    assert err(ndjson([{"id": "a", "values": unit(1), "metadata": {"$bad": 1}}]))["code"] == 40023
    assert err(ndjson([{"id": f"v{i}", "values": unit(i)} for i in range(5001)]))["code"] == 40006
    assert err(ndjson([{"id": "a", "values": unit(1)}]), ctype="application/json")["code"] == 40026
    discard = api.post(
        f"{BASE}/{index}/upsert",
        params={"unparsable-behavior": "discard"},
        data=b"{broken\n" + ndjson([{"id": "ok", "values": unit(1)}]),
        headers={"Content-Type": "application/x-ndjson"},
    )
    wait_applied(api, index, discard.json()["result"]["mutationId"])
    assert api.get(f"{BASE}/{index}/info").json()["result"]["vectorCount"] == 1


def test_multipart_form_is_accepted(api, index):
    resp = api.post(
        f"{BASE}/{index}/insert",
        files={"vectors": ("v.ndjson", ndjson([{"id": "m", "values": unit(5)}]), "application/x-ndjson")},
    )
    assert resp.status_code == 200, resp.text
    wait_applied(api, index, resp.json()["result"]["mutationId"])


def test_exact_search_and_topk_limits(api, index):
    vectors = [
        {"id": f"v{i}", "values": unit(i), "metadata": {"n": i, "group": "even" if i % 2 == 0 else "odd"}}
        for i in range(30)
    ]
    wait_applied(api, index, write(api, index, vectors))
    res = api.post(
        f"{BASE}/{index}/query", json={"vector": unit(7), "topK": 3, "returnValues": True, "returnMetadata": "all"}
    ).json()["result"]
    assert res["matches"][0]["id"] == "v7" and res["matches"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    expected = sorted(range(30), key=lambda i: -float(np.dot(unit(i), unit(7))))[:3]
    assert [m["id"] for m in res["matches"]] == [f"v{i}" for i in expected]
    assert res["matches"][0]["metadata"]["n"] == 7 and len(res["matches"][0]["values"]) == 8
    assert (
        api.post(f"{BASE}/{index}/query", json={"vector": unit(1), "topK": 21, "returnValues": True}).status_code == 400
    )
    assert api.post(f"{BASE}/{index}/query", json={"vector": unit(1), "topK": 101}).status_code == 400
    assert (
        len(api.post(f"{BASE}/{index}/query", json={"vector": unit(1), "topK": 100}).json()["result"]["matches"]) == 30
    )
    plain = api.post(f"{BASE}/{index}/query", json={"vector": unit(1), "topK": 1}).json()["result"]["matches"][0]
    assert set(plain) == {"id", "score"}
    # Filters work on properties with a metadata index only.
    api.post(
        f"{BASE}/{index}/metadata_index/create", json={"propertyName": "group", "indexType": "string"}
    ).raise_for_status()
    evens = api.post(f"{BASE}/{index}/query", json={"vector": unit(7), "topK": 50, "filter": {"group": "even"}}).json()[
        "result"
    ]
    assert evens["count"] == 15 and all(int(m["id"][1:]) % 2 == 0 for m in evens["matches"])
    none = api.post(f"{BASE}/{index}/query", json={"vector": unit(7), "topK": 50, "filter": {"n": {"$gt": 3}}}).json()[
        "result"
    ]
    assert none["count"] == 0


def test_zero_vector_query_answers(api, lf):
    res = api.post(f"{BASE}/{lf.index_name}/query", json={"vector": [0.0] * 384, "topK": 1}).json()
    assert res["success"] and res["result"]["count"] == 1


def test_delete_by_ids_cap_and_effect(api, index):
    wait_applied(api, index, write(api, index, [{"id": f"v{i}", "values": unit(i)} for i in range(10)]))
    too_many = api.post(f"{BASE}/{index}/delete_by_ids", json={"ids": [f"x{i}" for i in range(101)]})
    assert too_many.status_code == 400 and too_many.json()["errors"][0] == {
        "code": 40007,
        "message": "too many ids in payload; max id count is 100",
    }
    mid = api.post(f"{BASE}/{index}/delete_by_ids", json={"ids": ["v1", "v2"]}).json()["result"]["mutationId"]
    assert wait_applied(api, index, mid)["vectorCount"] == 8
    assert (
        api.post(f"{BASE}/{index}/get_by_ids", json={"ids": [f"x{i}" for i in range(101)]}).json()["errors"][0]["code"]
        == 40007
    )


def test_list_is_a_snapshot_with_a_cursor(api, index):
    wait_applied(api, index, write(api, index, [{"id": f"v{i:02d}", "values": unit(i)} for i in range(25)]))
    page = api.get(f"{BASE}/{index}/list", params={"count": 10}).json()["result"]
    assert page["count"] == 10 and page["totalCount"] == 25 and page["isTruncated"] and page["nextCursor"]
    # Changes after the first page do not show in this listing.
    wait_applied(api, index, write(api, index, [{"id": "zz-new", "values": unit(99)}]))
    mid = api.post(f"{BASE}/{index}/delete_by_ids", json={"ids": ["v24"]}).json()["result"]["mutationId"]
    wait_applied(api, index, mid)
    ids = [v["id"] for v in page["vectors"]]
    while page["isTruncated"]:
        page = api.get(f"{BASE}/{index}/list", params={"count": 10, "cursor": page["nextCursor"]}).json()["result"]
        ids += [v["id"] for v in page["vectors"]]
    assert ids == [f"v{i:02d}" for i in range(25)]
    assert "nextCursor" not in page
    assert api.get(f"{BASE}/{index}/list", params={"count": 1001}).status_code == 400
    assert api.get(f"{BASE}/{index}/list", params={"cursor": "bogus.1"}).status_code == 400


def test_index_lifecycle_errors(api, index):
    assert api.post(BASE, json={"name": index, "config": {"dimensions": 8, "metric": "cosine"}}).status_code == 409
    assert api.post(BASE, json={"name": "Bad Name", "config": {"dimensions": 8, "metric": "cosine"}}).status_code == 400
    assert (
        api.post(BASE, json={"name": "okname", "config": {"dimensions": 2000, "metric": "cosine"}}).status_code == 400
    )
    assert (
        api.post(BASE, json={"name": "okname", "config": {"dimensions": 8, "metric": "manhattan"}}).status_code == 400
    )
    missing = api.get(f"{BASE}/no-such-index/info")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 3000
    preset = api.post(BASE, json={"name": "preset-idx", "config": {"preset": "@cf/baai/bge-small-en-v1.5"}}).json()[
        "result"
    ]
    assert preset["config"]["dimensions"] == 384 and preset["config"]["metric"] == "cosine"
    api.delete(f"{BASE}/preset-idx").raise_for_status()
    assert api.get(f"{BASE}/preset-idx").status_code == 404


def test_euclidean_and_dot_product(api):
    for metric in ("euclidean", "dot-product"):
        name = f"m-{metric}-{uuid.uuid4().hex[:6]}"
        api.post(BASE, json={"name": name, "config": {"dimensions": 2, "metric": metric}}).raise_for_status()
        try:
            vecs = [{"id": "near", "values": [1.0, 1.0]}, {"id": "far", "values": [5.0, 5.0]}]
            wait_applied(api, name, write(api, name, vecs))
            res = api.post(f"{BASE}/{name}/query", json={"vector": [1.0, 1.1], "topK": 2}).json()["result"]["matches"]
            if metric == "euclidean":
                assert res[0]["id"] == "near" and res[0]["score"] == pytest.approx(0.1, abs=1e-5)
            else:
                assert res[0]["id"] == "far" and res[0]["score"] == pytest.approx(10.5, abs=1e-4)
        finally:
            api.delete(f"{BASE}/{name}")
