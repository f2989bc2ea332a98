"""D1 behaviour the hooks rely on: limits, errors, transactions, export, import and Time Travel."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import requests

from localflare.testing import Api


@pytest.fixture
def scratch_db(api):
    """A throwaway database; deleted afterwards."""
    resp = api.post("/accounts/{acct}/d1/database", json={"name": f"scratch-{uuid.uuid4().hex[:10]}"})
    assert resp.status_code == 200, resp.text
    db = resp.json()["result"]["uuid"]
    yield db
    api.delete(f"/accounts/{{acct}}/d1/database/{db}")


def q(api, db, sql, params=None, status=200):
    body = {"sql": sql} if params is None else {"sql": sql, "params": params}
    resp = api.post(f"/accounts/{{acct}}/d1/database/{db}/query", json=body)
    assert resp.status_code == status, resp.text
    return resp.json()


def test_statements_run_as_one_transaction_with_meta(api, scratch_db):
    out = q(
        api,
        scratch_db,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b'); SELECT * FROM t",
    )
    assert [r["success"] for r in out["result"]] == [True, True, True]
    insert, select = out["result"][1], out["result"][2]
    assert insert["meta"]["changes"] == 2 and insert["meta"]["rows_written"] == 2 and insert["meta"]["last_row_id"] == 2
    assert insert["meta"]["changed_db"] is True and insert["meta"]["size_after"] > 0
    assert select["results"] == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    assert set(select["meta"]) >= {"duration", "rows_read", "rows_written", "changes", "last_row_id", "size_after"}
    # A failing statement rolls back the whole call.
    err = q(api, scratch_db, "INSERT INTO t(v) VALUES ('c'); INSERT INTO nope VALUES (1)", status=400)
    assert err["errors"][0] == {"code": 7500, "message": "no such table: nope: SQLITE_ERROR"}
    assert q(api, scratch_db, "SELECT COUNT(*) AS n FROM t")["result"][0]["results"] == [{"n": 2}]


def test_params_and_batch(api, scratch_db):
    q(api, scratch_db, "CREATE TABLE t(a, b)")
    q(api, scratch_db, "INSERT INTO t VALUES (?, ?)", ["x", "7"])
    batch = api.post(
        f"/accounts/{{acct}}/d1/database/{scratch_db}/query",
        json={
            "batch": [
                {"sql": "INSERT INTO t VALUES (?, ?)", "params": ["y", "8"]},
                {"sql": "SELECT a, b FROM t WHERE a = ?", "params": ["y"]},
            ]
        },
    ).json()
    assert batch["result"][1]["results"] == [{"a": "y", "b": "8"}]
    # Params bind to one statement only; several statements with params are refused, not guessed at.
    assert q(api, scratch_db, "SELECT ?; SELECT ?", ["1", "2"], status=400)["errors"][0]["code"] == 7500


def test_limits_bound_params_statement_size_vacuum_and_pragmas(api, scratch_db):
    q(api, scratch_db, "CREATE TABLE t(x)")
    too_many = q(api, scratch_db, "SELECT " + ",".join("?" * 101), [str(i) for i in range(101)], status=400)
    assert "too many SQL variables" in too_many["errors"][0]["message"]
    q(api, scratch_db, "SELECT " + ",".join("?" * 100), [str(i) for i in range(100)])
    big = "INSERT INTO t VALUES ('" + "x" * 100_001 + "')"
    assert q(api, scratch_db, big, status=400)["errors"][0]["message"] == "statement too long: SQLITE_TOOBIG"
    assert "cannot VACUUM" in q(api, scratch_db, "VACUUM", status=400)["errors"][0]["message"]
    assert "not authorized" in q(api, scratch_db, "PRAGMA journal_mode", status=400)["errors"][0]["message"]
    assert "not authorized" in q(api, scratch_db, "ATTACH DATABASE 'x.db' AS x", status=400)["errors"][0]["message"]
    assert q(api, scratch_db, "PRAGMA quick_check")["result"][0]["results"] == [{"quick_check": "ok"}]
    q(api, scratch_db, "PRAGMA optimize")
    q(api, scratch_db, "ANALYZE")


def test_foreign_keys_are_enforced_and_can_be_deferred(api, scratch_db):
    q(
        api,
        scratch_db,
        "CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id REFERENCES parent(id)); CREATE TABLE parent(id INTEGER PRIMARY KEY)",
    )
    err = q(api, scratch_db, "INSERT INTO child VALUES (1, 1)", status=400)
    assert "FOREIGN KEY constraint failed" in err["errors"][0]["message"]
    q(api, scratch_db, "PRAGMA defer_foreign_keys = on; INSERT INTO child VALUES (1, 1); INSERT INTO parent VALUES (1)")


def test_list_pages_and_returns_empty_past_the_end(lf_fresh):
    server = lf_fresh(seed=False)
    api = Api(server)
    for i in range(12):
        api.post("/accounts/{acct}/d1/database", json={"name": f"db-{i:02d}"}).raise_for_status()
    page1 = api.get("/accounts/{acct}/d1/database", params={"per_page": 10}).json()
    page2 = api.get("/accounts/{acct}/d1/database", params={"per_page": 10, "page": 2}).json()
    page3 = api.get("/accounts/{acct}/d1/database", params={"per_page": 10, "page": 3}).json()
    assert [len(p["result"]) for p in (page1, page2, page3)] == [10, 2, 0]
    assert page1["result_info"] == {"page": 1, "per_page": 10, "count": 10, "total_count": 12}
    assert "file_size" not in page1["result"][0]
    assert api.get("/accounts/{acct}/d1/database", params={"per_page": 5}).status_code == 400
    assert api.post("/accounts/{acct}/d1/database", json={"name": "db-00"}).json()["errors"][0]["code"] == 7502


def test_get_and_unknown_database(api, lf):
    info = api.get(f"/accounts/{{acct}}/d1/database/{lf.d1_id}").json()["result"]
    assert info["name"] == "claudes-friend-db" and info["file_size"] > 0 and info["num_tables"] >= 8
    only = api.get(f"/accounts/{{acct}}/d1/database/{lf.d1_id}", params={"fields": "uuid,file_size"}).json()["result"]
    assert set(only) == {"uuid", "file_size"}
    missing = api.get(f"/accounts/{{acct}}/d1/database/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 7404


def _export(api, db, **opts):
    first = api.post(f"/accounts/{{acct}}/d1/database/{db}/export", json={"output_format": "polling", **opts}).json()[
        "result"
    ]
    polls = [first]
    while polls[-1]["status"] == "active":
        polls.append(
            api.post(
                f"/accounts/{{acct}}/d1/database/{db}/export",
                json={"output_format": "polling", "current_bookmark": first["at_bookmark"]},
            ).json()["result"]
        )
    return polls


def test_export_blocks_the_database_and_honours_dump_options(api, scratch_db):
    q(
        api,
        scratch_db,
        "CREATE TABLE a(x); CREATE TABLE b(y BLOB); INSERT INTO a VALUES ('it''s'); INSERT INTO b VALUES (X'00FF')",
    )
    first = api.post(f"/accounts/{{acct}}/d1/database/{scratch_db}/export", json={"output_format": "polling"}).json()[
        "result"
    ]
    assert first["status"] == "active" and first["at_bookmark"]
    busy = q(api, scratch_db, "SELECT 1", status=503)
    assert "Currently processing a long-running export" in busy["errors"][0]["message"]
    polls = _export(api, scratch_db)
    done = polls[-1]
    assert done["status"] == "complete" and done["at_bookmark"] == first["at_bookmark"]
    dump = requests.get(done["result"]["signed_url"], timeout=10).text
    assert "PRAGMA defer_foreign_keys=TRUE;" in dump
    assert "INSERT INTO \"a\" VALUES('it''s');" in dump and "INSERT INTO \"b\" VALUES(X'00FF');" in dump
    q(api, scratch_db, "SELECT 1")  # unblocked
    schema_only = requests.get(
        _export(api, scratch_db, dump_options={"no_data": True})[-1]["result"]["signed_url"], timeout=10
    ).text
    assert "CREATE TABLE" in schema_only and "INSERT" not in schema_only
    only_b = requests.get(
        _export(api, scratch_db, dump_options={"tables": ["b"]})[-1]["result"]["signed_url"], timeout=10
    ).text
    assert '"a"' not in only_b and 'INSERT INTO "b"' in only_b


def test_export_refuses_virtual_tables(api, lf):
    done = _export(api, lf.d1_id)[-1]
    assert done["status"] == "error" and done["success"] is False
    assert "Virtual Tables (fts5)" in done["error"]
    q(api, lf.d1_id, "SELECT 1")  # the failed export released the database


def test_export_nobody_polls_is_cancelled_and_stall_fault(lf_fresh):
    server = lf_fresh("--export-min-seconds", "2", "--export-poll-timeout", "0.5", seed=False)
    api = Api(server)
    db = api.post("/accounts/{acct}/d1/database", json={"name": "x"}).json()["result"]["uuid"]
    first = api.post(f"/accounts/{{acct}}/d1/database/{db}/export", json={"output_format": "polling"}).json()["result"]
    time.sleep(1.5)
    later = api.post(
        f"/accounts/{{acct}}/d1/database/{db}/export",
        json={"output_format": "polling", "current_bookmark": first["at_bookmark"]},
    ).json()["result"]
    assert later["status"] == "error" and "not polled" in later["error"]
    server.add_faults("export_stall:count=1")
    first = api.post(f"/accounts/{{acct}}/d1/database/{db}/export", json={"output_format": "polling"}).json()["result"]
    for _ in range(12):  # polled faster than the timeout, yet never completes
        state = api.post(
            f"/accounts/{{acct}}/d1/database/{db}/export",
            json={"output_format": "polling", "current_bookmark": first["at_bookmark"]},
        ).json()["result"]
        assert state["status"] == "active"


def test_signed_url_download_faults_expiry_and_resume(lf_fresh):
    server = lf_fresh(seed=False)
    api = Api(server)
    db = api.post("/accounts/{acct}/d1/database", json={"name": "x"}).json()["result"]["uuid"]
    q(api, db, "CREATE TABLE t(v); " + "; ".join(f"INSERT INTO t VALUES ('{'r' * 500}{i}')" for i in range(400)))
    url = _export(api, db)[-1]["result"]["signed_url"]
    whole = requests.get(url, timeout=10).content
    assert len(whole) > 100_000
    server.add_faults("drop_download:after_bytes=5000,count=1")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10).content  # noqa: B018 - a short body must be an error, not a file
    part = requests.get(url, headers={"Range": "bytes=5000-"}, timeout=10)
    assert part.status_code == 206 and whole[:5000] + part.content == whole
    assert requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10).status_code == 403
    server.add_faults("url_expiry:seconds=0.2")
    short = _export(api, db)[-1]["result"]["signed_url"]
    time.sleep(0.4)
    expired = requests.get(short, timeout=10)
    assert expired.status_code == 403 and "expired" in expired.text


def _import(api, db, sql: bytes):
    etag = hashlib.md5(sql).hexdigest()
    init = api.post(f"/accounts/{{acct}}/d1/database/{db}/import", json={"action": "init", "etag": etag}).json()[
        "result"
    ]
    put = requests.put(init["upload_url"], data=sql, timeout=10)
    assert put.status_code == 200 and put.headers["ETag"].strip('"') == etag
    state = api.post(
        f"/accounts/{{acct}}/d1/database/{db}/import",
        json={"action": "ingest", "filename": init["filename"], "etag": etag},
    ).json()["result"]
    while state["status"] == "active":
        state = api.post(
            f"/accounts/{{acct}}/d1/database/{db}/import",
            json={"action": "poll", "current_bookmark": state["at_bookmark"]},
        ).json()["result"]
    return state


def test_import_flow_and_its_refusals(api, scratch_db):
    ok_state = _import(
        api, scratch_db, b"CREATE TABLE t(v);\nINSERT INTO t VALUES ('a;b');\nINSERT INTO t VALUES (X'01');\n"
    )
    assert ok_state["status"] == "complete" and ok_state["result"]["num_queries"] == 3
    assert ok_state["result"]["final_bookmark"] > ok_state["at_bookmark"]
    assert q(api, scratch_db, "SELECT COUNT(*) AS n FROM t")["result"][0]["results"] == [{"n": 2}]
    txn = _import(api, scratch_db, b"BEGIN TRANSACTION;\nINSERT INTO t VALUES (1);\nCOMMIT;\n")
    assert txn["status"] == "error" and "BEGIN TRANSACTION" in txn["error"]
    big = _import(api, scratch_db, b"INSERT INTO t VALUES ('" + b"x" * 100_001 + b"');\n")
    assert big["status"] == "error" and "statement too long" in big["error"]
    bad = _import(api, scratch_db, b"INSERT INTO t VALUES (1);\nINSERT INTO nope VALUES (1);\n")
    assert bad["status"] == "error" and "no such table: nope" in bad["error"]
    assert q(api, scratch_db, "SELECT COUNT(*) AS n FROM t")["result"][0]["results"] == [
        {"n": 2}
    ]  # nothing half-applied
    wrong = api.post(
        f"/accounts/{{acct}}/d1/database/{scratch_db}/import",
        json={"action": "ingest", "filename": "nope.sql", "etag": "0" * 32},
    )
    assert wrong.status_code == 400


def test_time_travel_bookmarks_restore_and_undo(api, scratch_db):
    q(api, scratch_db, "CREATE TABLE t(v); INSERT INTO t VALUES (1)")
    mark = api.get(f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/bookmark").json()["result"]["bookmark"]
    time.sleep(1.1)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    q(api, scratch_db, "DELETE FROM t")
    later = api.get(f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/bookmark").json()["result"]["bookmark"]
    assert later > mark  # bookmarks sort lexicographically in time order
    at = api.get(
        f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/bookmark", params={"timestamp": stamp}
    ).json()
    assert at["result"]["bookmark"] == mark
    restored = api.post(
        f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/restore", params={"bookmark": mark}
    ).json()["result"]
    assert restored["previous_bookmark"] == later
    assert q(api, scratch_db, "SELECT v FROM t")["result"][0]["results"] == [{"v": 1}]
    api.post(
        f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/restore",
        params={"bookmark": restored["previous_bookmark"]},
    ).raise_for_status()  # undo the restore
    assert q(api, scratch_db, "SELECT v FROM t")["result"][0]["results"] == []
    old = api.get(
        f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/bookmark",
        params={"timestamp": "2020-01-01T00:00:00Z"},
    )
    assert old.status_code == 400 and "outside the Time Travel window" in old.json()["errors"][0]["message"]
    neither = api.post(f"/accounts/{{acct}}/d1/database/{scratch_db}/time_travel/restore")
    assert neither.status_code == 400


def test_blobs_come_back_as_byte_arrays(api, scratch_db):
    q(api, scratch_db, "CREATE TABLE b(v BLOB); INSERT INTO b VALUES (X'00FF10')")
    assert q(api, scratch_db, "SELECT v FROM b")["result"][0]["results"] == [{"v": [0, 255, 16]}]
