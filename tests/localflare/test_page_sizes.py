"""Every page-size rule of localflare's list endpoints: both bounds served, one past them refused.

The bounds follow what real clients send and Cloudflare serves, not only the 2024 spec: wrangler's
`kv namespace list` asks for per_page=1000 although the spec says at most 100, and Cloudflare answers
it (localflare/README.md, "Known differences").
"""

from __future__ import annotations

import pytest

# (path, page-size parameter, smallest accepted, largest accepted)
RULES = [
    ("/accounts/{acct}/d1/database", "per_page", 10, 10_000),
    ("/accounts/{acct}/storage/kv/namespaces", "per_page", 5, 1000),
    ("/accounts/{acct}/storage/kv/namespaces/{ns}/keys", "limit", 10, 1000),
    ("/accounts/{acct}/vectorize/v2/indexes/{index}/list", "count", 1, 1000),
    ("/accounts/{acct}/workers/scripts/claudes-friend/versions", "per_page", 1, 100),
    ("/memberships", "per_page", 5, 50),
    ("/accounts", "per_page", 5, 50),
]


def _path(lf, path: str) -> str:
    return path.replace("{ns}", lf.kv_id).replace("{index}", lf.index_name)


@pytest.mark.parametrize(("path", "param", "lo", "hi"), RULES, ids=[f"{r[0].split('/')[-1]}-{r[1]}" for r in RULES])
def test_page_size_bounds(api, lf, path, param, lo, hi):
    for value in (lo, hi):
        resp = api.get(_path(lf, path), params={param: value})
        assert resp.status_code == 200, (value, resp.text)
        assert resp.json()["success"] is True
    for value in (lo - 1, hi + 1):
        resp = api.get(_path(lf, path), params={param: value})
        assert resp.status_code == 400, (value, resp.text)
        body = resp.json()
        assert body["success"] is False and body["result"] is None
        assert body["errors"][0]["message"] == f"{param} must be between {lo} and {hi}"


def test_kv_namespace_list_serves_what_wrangler_asks_for(api):
    """`wrangler kv namespace list` sends exactly this, then asks for page 2 and stops at an empty page."""
    query = {"per_page": 1000, "order": "title", "direction": "asc"}
    first = api.get("/accounts/{acct}/storage/kv/namespaces", params=query).json()
    assert first["result_info"]["per_page"] == 1000 and first["result_info"]["page"] == 1
    titles = [n["title"] for n in first["result"]]
    assert "prism-cache" in titles and titles == sorted(titles)
    second = api.get("/accounts/{acct}/storage/kv/namespaces", params={**query, "page": 2}).json()
    assert second["success"] and second["result"] == []


def test_memberships_and_accounts_list_the_one_account(api, lf):
    members = api.get("/memberships").json()
    assert [m["account"]["id"] for m in members["result"]] == [lf.account_id]
    assert members["result"][0]["status"] == "accepted" and members["result"][0]["roles"]
    assert members["result_info"]["per_page"] == 20 and members["result_info"]["total_count"] == 1
    assert [a["id"] for a in api.get("/accounts").json()["result"]] == [lf.account_id]
    assert api.get("/accounts", params={"page": 2}).json()["result"] == []
    assert api.get("/user").json()["result"]["email"]
