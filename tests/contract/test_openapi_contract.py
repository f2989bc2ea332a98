"""localflare against Cloudflare's published OpenAPI spec (the 2024-08-06 copy, pruned).

- the committed pruned spec is what scripts/prune_openapi.py makes of the reference file;
- every operation in it is driven once against localflare (successes and errors, on scratch
  resources), and each exchange is validated against the spec;
- every operation in the pruned spec is served by localflare and shows up in the recording;
- rate-limit (429) and server-error (5xx) answers, from injected faults, are checked too.

The whole session's recording is validated again at the end, by tests/zz_contract.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
from urllib.parse import quote

import pytest
import requests

from localflare.app import Config, LocalFlare
from scripts import prune_openapi
from tests.contract.openapi_validation import DEVIATIONS, SPEC_PATH, ContractChecker, load_exchanges

DEMO_DB, DEMO_INDEX, DEMO_KV, DEMO_WORKER = "claudes-friend-db", "claudes-companion", "prism-cache", "claudes-friend"
EMBEDDING_MODEL = "@cf/baai/bge-small-en-v1.5"
# Deviations only injected faults bring out; the drive on `lf` exercises all the others.
FAULT_DEVIATIONS = {d for d in DEVIATIONS if d.rule.startswith(("response 429 ", "response 5?? "))}
# Met only by a token that lacks a permission, or by another account: checked in their own test.
REFUSAL_DEVIATIONS = {
    d for d in DEVIATIONS if d.operation == "accounts-account-details" or d.rule.startswith("response 403 ")
}


# ---- (a) the pruned spec is up to date ---------------------------------------------------------


def test_pruned_spec_is_up_to_date():
    source = prune_openapi.DEFAULT_SPEC.resolve()
    if not source.exists():
        pytest.skip(f"the full Cloudflare spec is not here ({source}), so the pruned copy cannot be regenerated")
    fresh = prune_openapi.render(prune_openapi.prune(json.loads(source.read_text(encoding="utf-8"))))
    assert SPEC_PATH.read_text(encoding="utf-8") == fresh, (
        "tests/contract/cloudflare-openapi-prism.json is stale: run `python scripts/prune_openapi.py`"
    )


def test_endpoints_said_to_be_newer_than_the_spec_are_not_in_it():
    """The claims in scripts/prune_openapi.py's docstring, checked against the full 2024 file."""
    source = prune_openapi.DEFAULT_SPEC.resolve()
    if not source.exists():
        pytest.skip(f"the full Cloudflare spec is not here ({source})")
    paths = json.loads(source.read_text(encoding="utf-8"))["paths"]
    d1, vec, kv = prune_openapi.D1, prune_openapi.VEC, prune_openapi.KV
    for op in ("query", "raw"):
        body = paths[f"{d1}/{{database_id}}/{op}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]) == {"sql", "params"}  # no "batch"
    assert not [p for p in paths if "time_travel" in p]
    assert f"{vec}/{{index_name}}/list" not in paths
    assert f"{kv}/{{namespace_id}}/bulk/get" not in paths
    assert set(paths[f"{vec}/{{index_name}}/metadata_index/list"]) == {"post"}
    assert "/graphql" not in paths and "/accounts/{account_id}/tokens/verify" not in paths


def test_pruned_spec_keeps_only_what_localflare_serves_and_all_its_refs():
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    ops = {(m, p) for p, item in spec["paths"].items() for m in item if m in prune_openapi.METHODS}
    assert ops == {(m, p) for p, ms in prune_openapi.SERVED.items() for m in ms} - {
        # in SERVED for the record, but not in the 2024 spec (see the script's docstring)
        ("get", "/accounts/{account_id}/vectorize/v2/indexes/{index_name}/metadata_index/list"),
        ("get", "/accounts/{account_id}/vectorize/v2/indexes/{index_name}/list"),
        ("post", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/bulk/get"),
    }
    # Every $ref resolves inside the pruned file, and every component kept is used.
    refs = set(prune_openapi._refs(spec))
    for ref in refs:
        prune_openapi._resolve(spec, ref)
    kept = {
        f"#/components/{kind}/{name}"
        for kind, items in spec["components"].items()
        if kind != "securitySchemes"
        for name in items
    }
    assert kept == refs


# ---- (b) drive every operation and validate the exchanges --------------------------------------


class Client:
    """Raw HTTP against localflare's /client/v4 API, with bearer auth."""

    def __init__(self, server, token: str | None = None):
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or server.token}"

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        url = self.server.api_url + path.replace("{acct}", self.server.account_id)
        return self.session.request(method, url, **kw)


def ok(resp: requests.Response, status: int = 200):
    """The `result` of a successful envelope, after checking the status."""
    assert resp.status_code == status, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text[:500]}"
    body = resp.json()
    assert body["success"] is True and body["errors"] == []
    return body["result"]


def fails(resp: requests.Response, status: int, code: int) -> str:
    """Check a failure envelope; return the error message."""
    assert resp.status_code == status, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text[:500]}"
    body = resp.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code, body
    return body["errors"][0]["message"]


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def drive_d1(call: Client, tag: str) -> None:
    base = "/accounts/{acct}/d1/database"
    names = [db["name"] for db in ok(call("GET", base))]
    assert DEMO_DB in names
    found = ok(call("GET", base, params={"name": "claudes", "page": 1, "per_page": 10}))
    assert [db["name"] for db in found] == [DEMO_DB]

    db = ok(call("POST", base, json={"name": f"contract-{tag}"}))
    db_id = db["uuid"]
    try:
        assert ok(call("GET", f"{base}/{db_id}"))["name"] == f"contract-{tag}"
        ok(
            call(
                "POST",
                f"{base}/{db_id}/query",
                json={"sql": "CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT)"},
            )
        )
        ok(
            call(
                "POST",
                f"{base}/{db_id}/query",
                json={"sql": "INSERT INTO notes(title, body) VALUES (?, ?)", "params": ["first", "hello"]},
            )
        )
        # the batch body is newer than the 2024 spec (a tolerated deviation)
        batch = ok(
            call(
                "POST",
                f"{base}/{db_id}/query",
                json={
                    "batch": [
                        {"sql": "INSERT INTO notes(title) VALUES (?)", "params": ["second"]},
                        {"sql": "SELECT COUNT(*) AS n FROM notes"},
                    ]
                },
            )
        )
        assert batch[1]["results"] == [{"n": 2}]
        rows = ok(call("POST", f"{base}/{db_id}/query", json={"sql": "SELECT id, title FROM notes ORDER BY id"}))
        assert rows[0]["results"] == [{"id": 1, "title": "first"}, {"id": 2, "title": "second"}]
        raw = ok(call("POST", f"{base}/{db_id}/raw", json={"sql": "SELECT title, body FROM notes ORDER BY id"}))
        assert raw[0]["results"] == {"columns": ["title", "body"], "rows": [["first", "hello"], ["second", None]]}
        raw = ok(call("POST", f"{base}/{db_id}/raw", json={"batch": [{"sql": "SELECT ? AS x", "params": ["1"]}]}))
        assert raw[0]["results"] == {"columns": ["x"], "rows": [["1"]]}
        bad_sql = call("POST", f"{base}/{db_id}/query", json={"sql": "SELECT * FROM nope"})
        assert "no such table" in fails(bad_sql, 400, 7500)
        fails(call("POST", f"{base}/{db_id}/raw", json={"sql": "SELEKT 1"}), 400, 7500)

        # export: start, poll with the bookmark until complete, download
        first = call("POST", f"{base}/{db_id}/export", json={"output_format": "polling"})
        assert first.status_code in (200, 202), first.text
        job = first.json()["result"]
        while job["status"] == "active":
            resp = call(
                "POST",
                f"{base}/{db_id}/export",
                json={"output_format": "polling", "current_bookmark": job["at_bookmark"]},
            )
            job = ok(resp, 202 if resp.json()["result"]["status"] == "active" else 200)
        assert job["status"] == "complete", job
        dump = requests.get(job["result"]["signed_url"], timeout=30)
        assert dump.status_code == 200 and "INSERT INTO" in dump.text

        # import: init, upload, ingest, poll until complete (big enough to be still running after ingest)
        rows = 60_000
        sql = "".join(f"INSERT INTO notes(title) VALUES ('imported {i}');\n" for i in range(rows)).encode()
        etag = hashlib.md5(sql).hexdigest()
        init = ok(call("POST", f"{base}/{db_id}/import", json={"action": "init", "etag": etag}))
        upload = requests.put(init["upload_url"], data=sql, timeout=30)
        assert upload.status_code == 200 and upload.headers["ETag"].strip('"') == etag
        resp = call(
            "POST", f"{base}/{db_id}/import", json={"action": "ingest", "etag": etag, "filename": init["filename"]}
        )
        job = resp.json()["result"]
        while job["status"] == "active":
            resp = call(
                "POST", f"{base}/{db_id}/import", json={"action": "poll", "current_bookmark": job["at_bookmark"]}
            )
            job = resp.json()["result"]
        assert resp.status_code == 200 and job["status"] == "complete", job
        assert job["result"]["num_queries"] == rows
        count = ok(call("POST", f"{base}/{db_id}/query", json={"sql": "SELECT COUNT(*) AS n FROM notes"}))
        assert count[0]["results"] == [{"n": 2 + rows}]
        fails(call("POST", f"{base}/{db_id}/import", json={"action": "poll", "current_bookmark": "nope"}), 400, 7400)
    finally:
        ok(call("DELETE", f"{base}/{db_id}"))
    missing = "00000000-0000-4000-8000-000000000000"
    fails(call("GET", f"{base}/{db_id}"), 404, 7404)
    fails(call("POST", f"{base}/{missing}/query", json={"sql": "SELECT 1"}), 404, 7404)
    fails(call("DELETE", f"{base}/{missing}"), 404, 7404)
    assert DEMO_DB in [db["name"] for db in ok(call("GET", base))]


def drive_vectorize(call: Client, tag: str) -> None:
    base = "/accounts/{acct}/vectorize/v2/indexes"
    assert DEMO_INDEX in [ix["name"] for ix in ok(call("GET", base))]
    name = f"contract-{tag}"
    created = ok(
        call(
            "POST",
            base,
            json={"name": name, "description": "contract test", "config": {"dimensions": 4, "metric": "cosine"}},
        )
    )
    assert created["config"] == {"dimensions": 4, "metric": "cosine"}
    try:
        assert ok(call("GET", f"{base}/{name}"))["name"] == name
        ok(call("POST", f"{base}/{name}/metadata_index/create", json={"propertyName": "kind", "indexType": "string"}))
        lines = [
            {"id": "a", "values": [1, 0, 0, 0], "metadata": {"kind": "x"}},
            {"id": "b", "values": [0, 1, 0, 0], "metadata": {"kind": "y"}, "namespace": "ns1"},
        ]
        ndjson = "\n".join(json.dumps(v) for v in lines).encode()
        ok(call("POST", f"{base}/{name}/insert", data=ndjson, headers={"Content-Type": "application/x-ndjson"}))
        # wrangler's multipart form (a tolerated deviation), and the spec's ndjson body with a query parameter
        c = json.dumps({"id": "c", "values": [0, 0, 1, 0], "metadata": {"kind": "x"}}).encode()
        for op in ("insert", "upsert"):
            part = ("v.ndjson", io.BytesIO(c), "application/x-ndjson")
            ok(call("POST", f"{base}/{name}/{op}", files={"vectors": part}))
        mutation = ok(
            call(
                "POST",
                f"{base}/{name}/upsert",
                params={"unparsable-behavior": "discard"},
                data=b'{"id": "d", "values": [0, 0, 0, 1]}\nnot json\n',
                headers={"Content-Type": "application/x-ndjson"},
            )
        )["mutationId"]
        info = wait_for(
            lambda: (i := ok(call("GET", f"{base}/{name}/info")))["processedUpToMutation"] == mutation and i,
            what="the upserts to apply",
        )
        assert info["vectorCount"] == 4 and info["dimensions"] == 4

        plain = ok(call("POST", f"{base}/{name}/query", json={"vector": [1, 0.1, 0, 0], "topK": 2}))
        assert [m["id"] for m in plain["matches"]] == ["a", "b"]
        rich = ok(
            call(
                "POST",
                f"{base}/{name}/query",
                json={
                    "vector": [1, 0, 0, 0],
                    "topK": 3,
                    "returnValues": True,
                    "returnMetadata": "all",
                    "filter": {"kind": "x"},
                },
            )
        )
        assert [m["id"] for m in rich["matches"]] == ["a", "c"] and rich["matches"][0]["metadata"] == {"kind": "x"}
        by_id = ok(call("POST", f"{base}/{name}/query", json={"vectorId": "b", "topK": 1}))
        assert by_id["matches"][0]["id"] == "b"
        got = ok(call("POST", f"{base}/{name}/get_by_ids", json={"ids": ["a", "zz"]}))
        assert [v["id"] for v in got] == ["a"]
        ok(call("POST", f"{base}/{name}/delete_by_ids", json={"ids": ["d"]}))
        listed = ok(call("GET", f"{base}/{name}/metadata_index/list"))  # not in the 2024 spec
        assert listed["metadataIndexes"] == [{"propertyName": "kind", "indexType": "string"}]
        ok(call("POST", f"{base}/{name}/metadata_index/delete", json={"propertyName": "kind"}))
        fails(call("POST", f"{base}/{name}/metadata_index/delete", json={"propertyName": "kind"}), 404, 40012)
        fails(call("POST", f"{base}/{name}/query", json={"vector": [1, 0], "topK": 1}), 400, 40001)
        fails(
            call("POST", f"{base}/{name}/get_by_ids", data=b'{"ids": ["a"]}', headers={"Content-Type": "text/plain"}),
            400,
            40026,
        )
    finally:
        ok(call("DELETE", f"{base}/{name}"))
    fails(call("GET", f"{base}/{name}"), 404, 3000)
    fails(call("GET", f"{base}/no-such-index/info"), 404, 3000)
    fails(call("POST", f"{base}/no-such-index/query", json={"vector": [1, 0, 0, 0]}), 404, 3000)
    fails(
        call(
            "POST",
            f"{base}/no-such-index/insert",
            data=b'{"id": "a", "values": [1]}',
            headers={"Content-Type": "application/x-ndjson"},
        ),
        404,
        3000,
    )
    fails(call("DELETE", f"{base}/no-such-index"), 404, 3000)
    assert DEMO_INDEX in [ix["name"] for ix in ok(call("GET", base))]


def drive_kv(call: Client, tag: str) -> None:
    base = "/accounts/{acct}/storage/kv/namespaces"
    listed = ok(call("GET", base, params={"per_page": 100, "order": "title", "direction": "asc"}))
    assert DEMO_KV in [ns["title"] for ns in listed]
    ns_id = ok(call("POST", base, json={"title": f"contract-{tag}"}))["id"]
    ns = f"{base}/{ns_id}"
    key = "dir/key one"  # a "/" and a space: sent percent-encoded, recorded decoded
    try:
        assert ok(call("GET", ns))["title"] == f"contract-{tag}"
        # wrangler's own requests (tolerated deviations): per_page=1000 and an empty prefix.
        assert f"contract-{tag}" in [n["title"] for n in ok(call("GET", base, params={"per_page": 1000}))]
        assert ok(call("GET", f"{ns}/keys", params={"prefix": ""})) == []
        ok(
            call(
                "PUT",
                f"{ns}/values/{quote(key, safe='')}",
                files={"value": (None, b"v1"), "metadata": (None, json.dumps({"owner": "contract"}))},
            )
        )
        # a multipart value without metadata, and a raw octet-stream value (both tolerated deviations)
        ok(call("PUT", f"{ns}/values/bare", files={"value": (None, b"no metadata")}))
        assert ok(call("GET", f"{ns}/metadata/bare")) is None
        ok(
            call(
                "PUT",
                f"{ns}/values/plain",
                params={"expiration_ttl": 3600},
                data=b"\x00\x01binary",
                headers={"Content-Type": "application/octet-stream"},
            )
        )
        value = call("GET", f"{ns}/values/{quote(key, safe='')}")
        assert value.status_code == 200 and value.content == b"v1"
        assert call("GET", f"{ns}/values/plain").content == b"\x00\x01binary"
        assert ok(call("GET", f"{ns}/metadata/{quote(key, safe='')}")) == {"owner": "contract"}
        ok(
            call(
                "PUT",
                f"{ns}/bulk",
                json=[
                    {"key": "bulk-1", "value": "one", "metadata": {"n": 1}},
                    {
                        "key": "bulk-2",
                        "value": base64.b64encode(b"two").decode(),
                        "base64": True,
                        "expiration_ttl": 600,
                    },
                    {"key": "bulk-3", "value": "three"},
                ],
            )
        )
        page = call("GET", f"{ns}/keys", params={"prefix": "bulk-", "limit": 10})
        assert [k["name"] for k in ok(page)] == ["bulk-1", "bulk-2", "bulk-3"]
        assert page.json()["result_info"]["cursor"] == ""
        got = ok(call("POST", f"{ns}/bulk/get", json={"keys": ["bulk-1", "nope"]}))  # not in the 2024 spec
        assert got == {"values": {"bulk-1": "one", "nope": None}}
        ok(call("POST", f"{ns}/bulk/delete", json=["bulk-1"]))
        ok(call("DELETE", f"{ns}/bulk", json=["bulk-2"]))  # the deprecated form wrangler still uses
        ok(call("DELETE", f"{ns}/values/plain"))
        assert [k["name"] for k in ok(call("GET", f"{ns}/keys"))] == ["bare", "bulk-3", key]
        fails(call("GET", f"{ns}/values/plain"), 404, 10009)
        fails(call("GET", f"{ns}/metadata/plain"), 404, 10009)
        fails(
            call(
                "PUT",
                f"{ns}/values/short-ttl",
                params={"expiration_ttl": 30},
                data=b"x",
                headers={"Content-Type": "application/octet-stream"},
            ),
            400,
            10037,
        )
    finally:
        ok(call("DELETE", ns))
    fails(call("GET", ns), 404, 10013)
    fails(call("GET", f"{ns}/keys"), 404, 10013)
    fails(call("GET", f"{ns}/values/anything"), 404, 10013)
    fails(call("DELETE", ns), 404, 10013)
    assert DEMO_KV in [ns["title"] for ns in ok(call("GET", base, params={"per_page": 100}))]


def drive_workers_ai_and_token(call: Client, lf) -> None:
    script = f"/accounts/{{acct}}/workers/scripts/{DEMO_WORKER}"
    deployments = ok(call("GET", f"{script}/deployments"))["deployments"]
    assert deployments and deployments[0]["strategy"] == "percentage"
    versions = ok(call("GET", f"{script}/versions", params={"page": 1, "per_page": 2}))["items"]
    assert len(versions) == 2
    assert len(ok(call("GET", f"{script}/versions", params={"deployable": "true"}))["items"]) == 3
    version = ok(call("GET", f"{script}/versions/{versions[0]['id']}"))
    assert version["id"] == versions[0]["id"]
    fails(call("GET", f"{script}/versions/00000000-0000-4000-8000-000000000000"), 404, 10230)
    fails(call("GET", "/accounts/{acct}/workers/scripts/no-such-worker/deployments"), 404, 10007)
    fails(call("GET", "/accounts/{acct}/workers/scripts/no-such-worker/versions"), 404, 10007)

    run = f"/accounts/{{acct}}/ai/run/{EMBEDDING_MODEL}"
    embedded = ok(call("POST", run, json={"text": ["first text", "second text"]}))
    assert embedded["shape"] == [2, 384] and len(embedded["data"][1]) == 384
    assert ok(call("POST", run, json={"text": "one"}))["shape"] == [1, 384]
    fails(call("POST", run, json={"text": 42}), 400, 5006)

    assert ok(call("GET", "/user/tokens/verify"))["status"] == "active"
    account = ok(call("GET", "/accounts/{acct}"))  # Account Details: how the connection test proves the id
    assert account["id"] == lf.account_id and account["name"]
    fails(Client(lf, token="not-the-token")("GET", "/user/tokens/verify"), 401, 1000)
    # wrangler's whoami and account choice
    assert ok(call("GET", "/user"))["email"]
    assert [m["account"]["id"] for m in ok(call("GET", "/memberships"))] == [lf.account_id]
    assert [a["id"] for a in ok(call("GET", "/accounts", params={"page": 1}))] == [lf.account_id]
    fails(call("GET", "/memberships", params={"per_page": 51}), 400, 10001)
    fails(call("GET", "/accounts", params={"per_page": 4}), 400, 10001)


@pytest.fixture(scope="module")
def driven(lf, exchanges_file):
    """Drive every spec-covered operation once; return (scratch tag, the exchanges this produced)."""
    start = exchanges_file.stat().st_size
    call, tag = Client(lf), secrets.token_hex(3)
    drive_d1(call, tag)
    drive_vectorize(call, tag)
    drive_kv(call, tag)
    drive_workers_ai_and_token(call, lf)
    return tag, load_exchanges(exchanges_file, start)


@pytest.fixture(scope="module")
def checker() -> ContractChecker:
    return ContractChecker()


def test_localflare_exchanges_match_the_spec(driven, checker):
    tag, exchanges = driven
    report = checker.check_all(exchanges)
    print(report.format())
    assert not report.violations, "localflare disagrees with the OpenAPI spec:\n" + report.format()
    # Only the calls the drive made to endpoints newer than the 2024 spec are outside it.
    assert set(report.not_covered) == {
        f"GET /client/v4/accounts/*/vectorize/v2/indexes/contract-{tag}/metadata_index/list",
        "POST /client/v4/accounts/*/storage/kv/namespaces/*/bulk/get",
    }, report.format()
    # Successes and errors were both checked against the spec's response schemas.
    statuses = {ex.status for ex in exchanges}
    assert {200, 202, 400, 401, 404} <= statuses, statuses
    # Every allow-list entry is still needed: each one matched something real.
    unused = set(DEVIATIONS) - FAULT_DEVIATIONS - REFUSAL_DEVIATIONS - {d for _, d in report.tolerated}
    assert not unused, "allow-list entries nothing needed:\n" + "\n".join(f"{d.operation} / {d.rule}" for d in unused)


def test_rate_limit_and_server_error_responses_match_the_spec(lf_fresh, exchanges_file, checker):
    start = exchanges_file.stat().st_size
    faults = "429:route=GET */d1/database,retry_after=2;5xx:route=GET */vectorize/v2/indexes,status=503"
    server = lf_fresh("--faults", faults, seed=False)
    call = Client(server)
    limited = call("GET", "/accounts/{acct}/d1/database")
    fails(limited, 429, 971)
    assert limited.headers["retry-after"] == "2"
    fails(call("GET", "/accounts/{acct}/vectorize/v2/indexes"), 503, 10503)
    assert ok(call("GET", "/accounts/{acct}/d1/database")) == []  # each fault fired once
    assert ok(call("GET", "/accounts/{acct}/vectorize/v2/indexes")) == []

    report = checker.check_all(load_exchanges(exchanges_file, start))
    print(report.format())
    assert report.exchanges == 4 and not report.not_covered
    assert not report.violations, report.format()
    assert {d for _, d in report.tolerated} >= FAULT_DEVIATIONS


def test_refusals_of_a_restricted_token_and_another_account_match_the_spec(lf_fresh, exchanges_file, checker):
    """403s the drive never meets: a token without Workers AI (`--token`), and an account that is not the token's."""
    start = exchanges_file.stat().st_size
    server = lf_fresh("--token", "no-ai=D1 Read,Account Settings Read", seed=False)
    fails(
        Client(server, token="no-ai")("POST", f"/accounts/{{acct}}/ai/run/{EMBEDDING_MODEL}", json={"text": "x"}),
        403,
        10000,
    )
    fails(Client(server)("GET", "/accounts/ffffffffffffffffffffffffffffffff"), 403, 9109)
    assert ok(Client(server, token="no-ai")("GET", "/accounts/{acct}"))["id"] == server.account_id

    report = checker.check_all(load_exchanges(exchanges_file, start))
    print(report.format())
    assert report.exchanges == 3 and not report.not_covered
    assert not report.violations, report.format()
    assert {d for _, d in report.tolerated} >= REFUSAL_DEVIATIONS


# ---- (c) coverage -------------------------------------------------------------------------------


def test_every_spec_operation_is_served_and_was_exercised(driven, checker, tmp_path):
    app = LocalFlare(Config(data_dir=str(tmp_path / "routes")))
    spec_ops = {(op.method, op.template): op.operation_id for op in checker.operations}
    for method, template in spec_ops:
        concrete = template.replace("{account_id}", app.cfg.account_id).replace("{", "x").replace("}", "")
        assert app._match(method, concrete)[0] is not None, f"localflare has no route for {method} {template}"

    # Nothing localflare serves that the full spec describes was pruned away.
    source = prune_openapi.DEFAULT_SPEC.resolve()
    if source.exists():
        full = json.loads(source.read_text(encoding="utf-8"))["paths"]
        served = {(method, template.replace(":path}", "}")) for method, template, _, _ in app.routes}
        # The spec's generic run path takes a single-segment {model_name}, which no "@cf/org/model" name
        # fits; the per-model path for the one model localflare runs is kept instead.
        served.discard(("POST", "/accounts/{account_id}/ai/run/{model_name}"))
        missing = {(m, p) for m, p in served if m.lower() in full.get(p, {}) and (m, p) not in spec_ops}
        assert not missing, f"operations localflare serves but the pruned spec lacks: {sorted(missing)}"

    # The drive's part of the session recording used every operation, and each one succeeded at least once.
    tag, exchanges = driven
    seen, succeeded = set(), set()
    for ex in exchanges:
        found = checker.find(ex.method, ex.path)
        if found:
            seen.add((found[0].method, found[0].template))
            if 200 <= ex.status < 300:
                succeeded.add((found[0].method, found[0].template))
    unexercised = sorted(f"{m} {t} ({spec_ops[(m, t)]})" for m, t in set(spec_ops) - seen)
    assert not unexercised, "spec operations never exercised:\n" + "\n".join(unexercised)
    assert succeeded == set(spec_ops), sorted(set(spec_ops) - succeeded)
