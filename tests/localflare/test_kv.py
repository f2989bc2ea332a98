"""Workers KV behaviour: limits, cursors, raw values, expiration and metadata, bulk endpoints."""

from __future__ import annotations

import base64
import uuid

import pytest

from localflare.testing import Api

BASE = "/accounts/{acct}/storage/kv/namespaces"


@pytest.fixture
def ns(api):
    resp = api.post(BASE, json={"title": f"scratch-{uuid.uuid4().hex[:8]}"})
    assert resp.status_code == 200, resp.text
    ns_id = resp.json()["result"]["id"]
    yield ns_id
    api.delete(f"{BASE}/{ns_id}")


def test_values_are_raw_bytes_and_missing_keys_404(api, ns):
    blob = bytes(range(256))
    assert (
        api.put(
            f"{BASE}/{ns}/values/a%2Fb", data=blob, headers={"Content-Type": "application/octet-stream"}
        ).status_code
        == 200
    )
    got = api.get(f"{BASE}/{ns}/values/a%2Fb")
    assert got.status_code == 200 and got.content == blob
    assert [k["name"] for k in api.get(f"{BASE}/{ns}/keys").json()["result"]] == ["a/b"]
    missing = api.get(f"{BASE}/{ns}/values/nope")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 10009
    api.delete(f"{BASE}/{ns}/values/a%2Fb").raise_for_status()
    assert api.get(f"{BASE}/{ns}/values/a%2Fb").status_code == 404


def test_multipart_put_with_metadata_and_expiration(lf, api, ns):
    resp = api.put(
        f"{BASE}/{ns}/values/k",
        params={"expiration_ttl": 120},
        files={"value": (None, b"v1"), "metadata": (None, '{"type": "query"}')},
    )
    assert resp.status_code == 200, resp.text
    assert api.get(f"{BASE}/{ns}/metadata/k").json()["result"] == {"type": "query"}
    listed = api.get(f"{BASE}/{ns}/keys").json()["result"][0]
    assert listed["metadata"] == {"type": "query"} and listed["expiration"] > 0
    assert api.get(f"{BASE}/{ns}/values/k").headers["expiration"] == str(listed["expiration"])
    assert (
        api.put(f"{BASE}/{ns}/values/k", params={"expiration_ttl": 59}, data=b"x").json()["errors"][0]["code"] == 10037
    )


def test_expired_keys_disappear(lf_fresh):
    server = lf_fresh(seed=False)
    api = Api(server)
    ns_id = api.post(BASE, json={"title": "t"}).json()["result"]["id"]
    api.put(f"{BASE}/{ns_id}/values/short", params={"expiration_ttl": 60}, data=b"x").raise_for_status()
    api.put(f"{BASE}/{ns_id}/values/long", data=b"y").raise_for_status()
    server.admin("POST", "clock", {"advance": 61})
    assert api.get(f"{BASE}/{ns_id}/values/short").status_code == 404
    assert [k["name"] for k in api.get(f"{BASE}/{ns_id}/keys").json()["result"]] == ["long"]


def test_key_listing_cursor_prefix_and_limits(api, ns):
    items = [{"key": f"p:{i:04d}", "value": str(i)} for i in range(25)] + [{"key": "q:1", "value": "q"}]
    assert api.put(f"{BASE}/{ns}/bulk", json=items).json()["result"] == {
        "successful_key_count": 26,
        "unsuccessful_keys": [],
    }
    names, cursor = [], None
    while True:
        page = api.get(
            f"{BASE}/{ns}/keys", params={"limit": 10, "prefix": "p:", **({"cursor": cursor} if cursor else {})}
        ).json()
        names += [k["name"] for k in page["result"]]
        cursor = page["result_info"]["cursor"]
        assert page["result_info"]["count"] == len(page["result"])
        if not cursor:
            break
    assert names == [f"p:{i:04d}" for i in range(25)]
    assert cursor == ""
    assert api.get(f"{BASE}/{ns}/keys", params={"limit": 9}).status_code == 400
    assert api.get(f"{BASE}/{ns}/keys", params={"limit": 1001}).status_code == 400


def test_bulk_write_get_delete(api, ns):
    items = [
        {"key": "text", "value": "hello", "metadata": {"m": 1}},
        {"key": "json", "value": '{"a": 1}'},
        {"key": "bin", "value": base64.b64encode(b"\x00\xff").decode(), "base64": True},
    ]
    api.put(f"{BASE}/{ns}/bulk", json=items).raise_for_status()
    assert api.get(f"{BASE}/{ns}/values/bin").content == b"\x00\xff"
    got = api.post(f"{BASE}/{ns}/bulk/get", json={"keys": ["text", "missing"]}).json()["result"]
    assert got == {"values": {"text": "hello", "missing": None}}
    meta = api.post(f"{BASE}/{ns}/bulk/get", json={"keys": ["text"], "withMetadata": True}).json()["result"]
    assert meta == {"values": {"text": {"value": "hello", "metadata": {"m": 1}}}}
    assert api.post(f"{BASE}/{ns}/bulk/get", json={"keys": ["json"], "type": "json"}).json()["result"]["values"][
        "json"
    ] == {"a": 1}
    assert api.post(f"{BASE}/{ns}/bulk/get", json={"keys": ["bin"]}).status_code == 400  # binary is not supported
    assert api.post(f"{BASE}/{ns}/bulk/get", json={"keys": [f"k{i}" for i in range(101)]}).status_code == 400
    assert api.put(f"{BASE}/{ns}/bulk", json=[{"key": f"k{i}", "value": "v"} for i in range(10_001)]).status_code == 400
    api.post(f"{BASE}/{ns}/bulk/delete", json=["text"]).raise_for_status()
    api.request("DELETE", f"{BASE}/{ns}/bulk", json=["json"]).raise_for_status()  # the older form wrangler uses
    assert sorted(k["name"] for k in api.get(f"{BASE}/{ns}/keys").json()["result"]) == ["bin"]


def test_namespaces_pages_duplicates_and_unknown(api, lf):
    listed = api.get(BASE, params={"per_page": 5}).json()
    assert listed["result_info"]["per_page"] == 5 and any(n["title"] == "prism-cache" for n in listed["result"])
    assert api.post(BASE, json={"title": "prism-cache"}).json()["errors"][0]["code"] == 10014
    assert api.get(BASE, params={"per_page": 4}).status_code == 400
    missing = api.get(f"{BASE}/{'0' * 32}/keys")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 10013
