"""Contract tests: the unmodified official `cloudflare` SDK (5.9.0) drives localflare.

Every endpoint localflare serves that the SDK covers is called through the SDK the way a real
client would call it, and the assertions describe the real API's behaviour (see
/work/shared/reference/cloudflare-api.md). Where the SDK itself cannot talk to the real API
correctly, the workaround is used and explained next to it (reference section 7.4).

All writes go to scratch databases, indexes and namespaces with unique names that are removed
afterwards; the demo data (claudes-friend-db, claudes-companion, prism-cache) is only read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import cloudflare
import httpx
import pytest
import requests
from cloudflare import Cloudflare

EMBED_MODEL = "@cf/baai/bge-small-en-v1.5"
# Reference 7.4.1: vectorize.indexes.insert/upsert send the NDJSON bytes as application/json,
# which the real API rejects (vectorize.unknown_content_type), so every insert/upsert overrides it.
NDJSON = {"Content-Type": "application/x-ndjson"}

# The SDK's own insert/upsert hand bytes to its transport as `body`, which it then flags as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:Passing raw bytes as `body` is deprecated:DeprecationWarning")


# ---- helpers ------------------------------------------------------------------------------------


def unique(kind: str) -> str:
    # Lower-case letters, digits and '-': valid for D1 names, Vectorize index names and KV titles.
    return f"contract-{kind}-{uuid.uuid4().hex[:10]}"


def ndjson(vectors: list[dict]) -> bytes:
    return "\n".join(json.dumps(v) for v in vectors).encode()


def error_codes(exc: cloudflare.APIStatusError) -> list[int]:
    body = exc.body if isinstance(exc.body, dict) else {}
    return [e.get("code") for e in body.get("errors") or []]


def iso_z(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def wait_for_mutation(sdk: Cloudflare, acct: str, index: str, mutation_id: str, timeout: float = 15.0):
    """Vectorize writes are asynchronous: poll /info until processedUpToMutation reaches ours."""
    deadline = time.monotonic() + timeout
    while True:
        info = sdk.vectorize.indexes.info(index, account_id=acct)
        if info.processed_up_to_mutation == mutation_id:
            return info
        assert time.monotonic() < deadline, f"mutation {mutation_id} not processed; last info {info}"
        time.sleep(0.1)


def run_export(sdk: Cloudflare, acct: str, db_id: str, **kw):
    """wrangler's loop: POST without a bookmark, then re-POST with current_bookmark=at_bookmark."""
    first = sdk.d1.database.export(db_id, account_id=acct, output_format="polling", **kw)
    responses = [first]
    deadline = time.monotonic() + 20
    while responses[-1].status not in ("complete", "error"):
        assert time.monotonic() < deadline, f"export never finished: {responses[-1]}"
        responses.append(
            sdk.d1.database.export(
                db_id, account_id=acct, output_format="polling", current_bookmark=first.at_bookmark, **kw
            )
        )
    return responses


def rows(sdk: Cloudflare, acct: str, db_id: str, sql: str, params: list[str] | None = None) -> list[dict]:
    kw = {"params": params} if params is not None else {}
    return sdk.d1.database.query(db_id, account_id=acct, sql=sql, **kw).result[0].results


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def acct(lf) -> str:
    return lf.account_id


@pytest.fixture
def logged_sdk(lf):
    """An SDK client that records every URL it requests, to check how its paginators walk pages."""
    seen: list[httpx.URL] = []
    http = cloudflare.DefaultHttpxClient(event_hooks={"request": [lambda r: seen.append(r.url)]})
    client = Cloudflare(api_token=lf.token, base_url=lf.api_url, max_retries=0, http_client=http)
    yield client, seen
    client.close()


@pytest.fixture
def new_db(sdk, acct):
    """Factory for scratch D1 databases, deleted at teardown."""
    made = []

    def make(prefix: str = "d1"):
        db = sdk.d1.database.create(account_id=acct, name=unique(prefix))
        made.append(db.uuid)
        return db

    yield make
    for db_id in made:
        try:
            sdk.d1.database.delete(db_id, account_id=acct)
        except cloudflare.NotFoundError:
            pass


@pytest.fixture
def new_index(sdk, acct):
    """Factory for scratch Vectorize indexes, deleted at teardown."""
    made = []

    def make(config: dict | None = None, description: str = "contract test"):
        name = unique("ix")
        sdk.vectorize.indexes.create(
            account_id=acct, name=name, description=description, config=config or {"dimensions": 4, "metric": "cosine"}
        )
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            sdk.vectorize.indexes.delete(name, account_id=acct)
        except cloudflare.NotFoundError:
            pass


@pytest.fixture
def new_ns(sdk, acct):
    """Factory for scratch KV namespaces, deleted at teardown."""
    made = []

    def make():
        ns = sdk.kv.namespaces.create(account_id=acct, title=unique("kv"))
        made.append(ns.id)
        return ns

    yield make
    for ns_id in made:
        try:
            sdk.kv.namespaces.delete(ns_id, account_id=acct)
        except cloudflare.NotFoundError:
            pass


@pytest.fixture
def worker_name(lf) -> str:
    return lf.admin("GET", "info")["worker_name"]


# ---- D1 -----------------------------------------------------------------------------------------


class TestD1Databases:
    def test_list_auto_paginates_until_an_empty_page(self, logged_sdk, acct):
        client, seen = logged_sdk
        prefix = unique("list")
        made = {client.d1.database.create(account_id=acct, name=f"{prefix}-{i:02d}").uuid for i in range(12)}
        try:
            seen.clear()
            listed = list(client.d1.database.list(account_id=acct, name=prefix, per_page=10))
            assert sorted(d.uuid for d in listed) == sorted(made)
            assert all(d.name.startswith(prefix) and d.created_at and d.version for d in listed)
            # The SDK asks for page+1 until a page comes back empty: 10 items, 2 items, then [].
            pages = [httpx.QueryParams(u.query).get("page") for u in seen]
            assert pages == [None, "2", "3"]
            assert all(httpx.QueryParams(u.query).get("per_page") == "10" for u in seen)
            past_end = client.d1.database.list(account_id=acct, name=prefix, per_page=10, page=3)
            assert past_end.result == []
            first = client.d1.database.list(account_id=acct, name=prefix, per_page=10)
            assert first.result_info.page == 1 and first.result_info.per_page == 10
            assert len(first.result) == 10
        finally:
            for db_id in made:
                client.d1.database.delete(db_id, account_id=acct)

    def test_create_get_delete(self, sdk, acct):
        name = unique("crud")
        created = sdk.d1.database.create(account_id=acct, name=name)
        try:
            assert created.name == name and created.uuid
            got = sdk.d1.database.get(created.uuid, account_id=acct)
            assert (got.uuid, got.name) == (created.uuid, name)
            assert got.version == "production"
            assert got.created_at is not None and got.file_size is not None
            assert got.num_tables == 0
            assert got.read_replication is not None and got.read_replication.mode in ("auto", "disabled")
            assert any(d.uuid == created.uuid for d in sdk.d1.database.list(account_id=acct, name=name))
        finally:
            sdk.d1.database.delete(created.uuid, account_id=acct)
        with pytest.raises(cloudflare.NotFoundError):
            sdk.d1.database.get(created.uuid, account_id=acct)
        assert not any(d.uuid == created.uuid for d in sdk.d1.database.list(account_id=acct, name=name))

    def test_duplicate_name_is_rejected(self, sdk, acct, new_db):
        db = new_db()
        with pytest.raises(cloudflare.BadRequestError):
            sdk.d1.database.create(account_id=acct, name=db.name)

    def test_get_with_fields_returns_only_those_fields(self, sdk, lf, acct):
        # The SDK sends a list as repeated parameters: ?fields=uuid&fields=name.
        got = sdk.d1.database.get(lf.d1_id, account_id=acct, fields=["uuid", "name"])
        assert got.uuid == lf.d1_id
        assert got.name == "claudes-friend-db"
        assert got.file_size is None and got.num_tables is None and got.created_at is None


class TestD1Query:
    def test_single_statement_with_params(self, sdk, acct, new_db):
        db = new_db()
        rows(sdk, acct, db.uuid, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        # params are typed list[str] in the SDK (reference 7.4.5), so pass strings.
        res = sdk.d1.database.query(db.uuid, account_id=acct, sql="INSERT INTO t(v) VALUES (?), (?)", params=["a", "b"])
        (insert,) = res.result
        assert insert.success is True
        assert insert.meta.changes == 2 and insert.meta.rows_written == 2
        assert insert.meta.last_row_id == 2 and insert.meta.changed_db is True
        assert insert.meta.size_after > 0 and insert.meta.duration >= 0
        assert rows(sdk, acct, db.uuid, "SELECT id, v FROM t WHERE v = ?", ["b"]) == [{"id": 2, "v": "b"}]

    def test_multiple_statements_give_one_result_each(self, sdk, acct, new_db):
        db = new_db()
        res = sdk.d1.database.query(
            db.uuid,
            account_id=acct,
            sql=(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); "
                "INSERT INTO t(v) VALUES ('x; not a separator'); "
                "SELECT v FROM t"
            ),
        )
        assert len(res.result) == 3
        assert all(r.success for r in res.result)
        assert res.result[1].meta.changes == 1
        assert res.result[2].results == [{"v": "x; not a separator"}]
        # SyncSinglePage: iterating yields the same per-statement results.
        assert [r.results for r in res] == [r.results for r in res.result]

    def test_batch_form(self, sdk, acct, new_db):
        db = new_db()
        rows(sdk, acct, db.uuid, "CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER)")
        res = sdk.d1.database.query(
            db.uuid,
            account_id=acct,
            batch=[
                {"sql": "INSERT INTO t VALUES (?, ?)", "params": ["one", "1"]},
                {"sql": "INSERT INTO t VALUES (?, ?)", "params": ["two", "2"]},
                {"sql": "SELECT k FROM t ORDER BY k"},
            ],
        )
        assert [r.meta.changes for r in res.result] == [1, 1, 0]
        assert res.result[2].results == [{"k": "one"}, {"k": "two"}]

    def test_raw_returns_columns_and_rows(self, sdk, acct, new_db):
        db = new_db()
        rows(sdk, acct, db.uuid, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b')")
        res = sdk.d1.database.raw(db.uuid, account_id=acct, sql="SELECT id, v FROM t ORDER BY id")
        (only,) = res.result
        assert only.success is True
        assert only.results.columns == ["id", "v"]
        assert only.results.rows == [[1, "a"], [2, "b"]]
        batch = sdk.d1.database.raw(
            db.uuid, account_id=acct, batch=[{"sql": "SELECT v FROM t WHERE id = ?", "params": ["2"]}]
        )
        assert batch.result[0].results.rows == [["b"]]

    def test_rows_read_counts_scanned_rows(self, sdk, acct, new_db):
        # D1 bills rows *scanned*: a filter on an unindexed column reads the whole table even
        # though it returns one row (D1 pricing docs, reference section 6 notes).
        db = new_db()
        rows(sdk, acct, db.uuid, "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)")
        sdk.d1.database.query(
            db.uuid,
            account_id=acct,
            batch=[{"sql": "INSERT INTO items(name) VALUES (?)", "params": [f"item-{i}"]} for i in range(25)],
        )
        res = sdk.d1.database.query(
            db.uuid, account_id=acct, sql="SELECT id FROM items WHERE name = ?", params=["item-7"]
        )
        assert res.result[0].results == [{"id": 8}]
        assert res.result[0].meta.rows_read >= 25, res.result[0].meta

    def test_read_only_use_of_the_demo_database(self, sdk, lf, acct):
        tables = {r["name"] for r in rows(sdk, acct, lf.d1_id, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"documents", "document_chunks", "chunks_fts"} <= tables
        res = sdk.d1.database.query(lf.d1_id, account_id=acct, sql="SELECT COUNT(*) AS n FROM documents")
        assert res.result[0].results[0]["n"] > 0
        assert res.result[0].meta.changed_db is False and res.result[0].meta.rows_written == 0


class TestD1Export:
    def test_polling_export_and_download(self, sdk, acct, new_db):
        db = new_db("exp")
        rows(
            sdk,
            acct,
            db.uuid,
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); "
            "INSERT INTO notes(body) VALUES ('first'), ('it''s second')",
        )
        responses = run_export(sdk, acct, db.uuid)
        first, last = responses[0], responses[-1]
        assert first.status == "active" and first.success is True and first.type == "export"
        assert len(responses) >= 2
        # at_bookmark identifies the task and does not change while it runs.
        assert {r.at_bookmark for r in responses} == {first.at_bookmark}
        assert last.status == "complete" and last.success is True
        assert last.result.filename and last.result.signed_url
        # The signed URL is fetched without Cloudflare auth, as wrangler does.
        dump = requests.get(last.result.signed_url, timeout=30)
        assert dump.status_code == 200
        assert "CREATE TABLE" in dump.text and "notes" in dump.text
        assert "'first'" in dump.text and "'it''s second'" in dump.text

    def test_dump_options_no_data(self, sdk, acct, new_db):
        db = new_db("exp")
        rows(
            sdk,
            acct,
            db.uuid,
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('secret')",
        )
        last = run_export(sdk, acct, db.uuid, dump_options={"no_data": True})[-1]
        assert last.status == "complete"
        dump = requests.get(last.result.signed_url, timeout=30).text
        assert "CREATE TABLE" in dump and "secret" not in dump

    def test_database_with_fts5_table_fails_to_export(self, sdk, lf, acct):
        # Export of databases with virtual tables is unsupported; the demo DB has chunks_fts (read-only use).
        last = run_export(sdk, acct, lf.d1_id)[-1]
        assert last.status == "error"
        assert last.success is False
        assert last.error
        assert last.result is None


class TestD1Import:
    def test_init_upload_ingest_poll(self, sdk, acct, new_db):
        db = new_db("imp")
        rows(sdk, acct, db.uuid, "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)")
        sql = "".join(f"INSERT INTO items(name) VALUES ('item-{i}');\n" for i in range(25)).encode()
        etag = hashlib.md5(sql).hexdigest()

        init = sdk.d1.database.import_(db.uuid, account_id=acct, action="init", etag=etag)
        assert init.upload_url and init.filename
        # Plain PUT to the presigned URL; the returned ETag (quotes stripped) must be the file's md5.
        put = requests.put(init.upload_url, data=sql, timeout=30)
        assert put.status_code == 200
        assert put.headers["ETag"].strip('"') == etag

        status = sdk.d1.database.import_(db.uuid, account_id=acct, action="ingest", etag=etag, filename=init.filename)
        assert status.type == "import" and status.at_bookmark
        deadline = time.monotonic() + 20
        while status.status not in ("complete", "error"):
            assert time.monotonic() < deadline, f"import never finished: {status}"
            status = sdk.d1.database.import_(
                db.uuid, account_id=acct, action="poll", current_bookmark=status.at_bookmark
            )
        assert status.status == "complete", status.error
        assert status.success is True
        assert status.result.num_queries == 25
        assert status.result.final_bookmark
        assert rows(sdk, acct, db.uuid, "SELECT COUNT(*) AS n FROM items") == [{"n": 25}]
        # The final bookmark is the database's current state.
        current = sdk.d1.database.time_travel.get_bookmark(db.uuid, account_id=acct).bookmark
        assert current == status.result.final_bookmark


class TestD1TimeTravel:
    def test_get_bookmark_and_restore_undoes_a_change(self, sdk, acct, new_db):
        db = new_db("tt")
        rows(sdk, acct, db.uuid, "CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('keep')")
        before = sdk.d1.database.time_travel.get_bookmark(db.uuid, account_id=acct).bookmark
        assert before
        time.sleep(0.05)
        between = datetime.now(timezone.utc)
        time.sleep(0.05)
        rows(sdk, acct, db.uuid, "INSERT INTO t VALUES ('oops')")
        after = sdk.d1.database.time_travel.get_bookmark(db.uuid, account_id=acct).bookmark
        assert after != before
        # With a timestamp: the nearest bookmark at or before it.
        assert sdk.d1.database.time_travel.get_bookmark(db.uuid, account_id=acct, timestamp=between).bookmark == before

        restored = sdk.d1.database.time_travel.restore(db.uuid, account_id=acct, bookmark=before)
        assert restored.bookmark and restored.message
        assert restored.previous_bookmark == after
        assert [r["v"] for r in rows(sdk, acct, db.uuid, "SELECT v FROM t ORDER BY v")] == ["keep"]

        # previous_bookmark undoes the restore.
        sdk.d1.database.time_travel.restore(db.uuid, account_id=acct, bookmark=restored.previous_bookmark)
        assert [r["v"] for r in rows(sdk, acct, db.uuid, "SELECT v FROM t ORDER BY v")] == ["keep", "oops"]

    def test_restore_by_timestamp(self, sdk, acct, new_db):
        db = new_db("tt")
        rows(sdk, acct, db.uuid, "CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('a')")
        time.sleep(0.05)
        mark = datetime.now(timezone.utc)
        time.sleep(0.05)
        rows(sdk, acct, db.uuid, "DELETE FROM t")
        sdk.d1.database.time_travel.restore(db.uuid, account_id=acct, timestamp=mark)
        assert rows(sdk, acct, db.uuid, "SELECT v FROM t") == [{"v": "a"}]


# ---- Vectorize ----------------------------------------------------------------------------------

BASE_VECTORS = [
    {"id": f"v{i}", "values": [1.0, float(i), 0.0, 0.0], "metadata": {"n": i, "tag": "even" if i % 2 == 0 else "odd"}}
    for i in range(5)
] + [{"id": "ns-1", "values": [0.0, 0.0, 1.0, 0.0], "namespace": "alpha", "metadata": {"n": 99}}]


class TestVectorizeIndexes:
    def test_create_list_get_info_delete(self, sdk, acct):
        name = unique("ix")
        created = sdk.vectorize.indexes.create(
            account_id=acct, name=name, description="scratch", config={"dimensions": 8, "metric": "euclidean"}
        )
        try:
            assert created.name == name and created.description == "scratch"
            assert (created.config.dimensions, created.config.metric) == (8, "euclidean")
            assert created.created_on is not None and created.modified_on is not None
            assert name in [i.name for i in sdk.vectorize.indexes.list(account_id=acct)]
            got = sdk.vectorize.indexes.get(name, account_id=acct)
            assert (got.name, got.config.dimensions) == (name, 8)
            info = sdk.vectorize.indexes.info(name, account_id=acct)
            assert info.dimensions == 8 and info.vector_count == 0
        finally:
            sdk.vectorize.indexes.delete(name, account_id=acct)
        with pytest.raises(cloudflare.NotFoundError):
            sdk.vectorize.indexes.get(name, account_id=acct)
        assert name not in [i.name for i in sdk.vectorize.indexes.list(account_id=acct)]

    def test_create_from_preset(self, sdk, acct, new_index):
        name = new_index(config={"preset": EMBED_MODEL})
        got = sdk.vectorize.indexes.get(name, account_id=acct)
        assert (got.config.dimensions, got.config.metric, got.config.preset) == (384, "cosine", EMBED_MODEL)

    def test_demo_index_is_readable(self, sdk, lf, acct):
        info = sdk.vectorize.indexes.info(lf.index_name, account_id=acct)
        assert info.dimensions == 384 and info.vector_count > 0


class TestVectorizeVectors:
    @pytest.fixture
    def index(self, sdk, acct, new_index):
        name = new_index()
        mutation = sdk.vectorize.indexes.insert(name, account_id=acct, body=ndjson(BASE_VECTORS), extra_headers=NDJSON)
        wait_for_mutation(sdk, acct, name, mutation.mutation_id)
        return name

    def test_sdk_default_content_type_is_rejected(self, sdk, acct, new_index):
        # Why NDJSON is needed: without it the SDK labels the NDJSON body application/json.
        name = new_index()
        with pytest.raises(cloudflare.BadRequestError):
            sdk.vectorize.indexes.insert(name, account_id=acct, body=ndjson(BASE_VECTORS[:1]))

    def test_insert_is_asynchronous_and_counted(self, sdk, acct, index):
        info = sdk.vectorize.indexes.info(index, account_id=acct)
        assert info.vector_count == len(BASE_VECTORS)
        assert info.processed_up_to_mutation and info.processed_up_to_datetime is not None

    def test_insert_keeps_existing_upsert_replaces(self, sdk, acct, index):
        ins = sdk.vectorize.indexes.insert(
            index,
            account_id=acct,
            extra_headers=NDJSON,
            body=ndjson([{"id": "v1", "values": [9.0, 9.0, 9.0, 9.0], "metadata": {"n": -1}}]),
        )
        wait_for_mutation(sdk, acct, index, ins.mutation_id)
        (v1,) = sdk.vectorize.indexes.get_by_ids(index, account_id=acct, ids=["v1"])
        assert v1["values"] == [1.0, 1.0, 0.0, 0.0] and v1["metadata"]["n"] == 1

        up = sdk.vectorize.indexes.upsert(
            index, account_id=acct, extra_headers=NDJSON, body=ndjson([{"id": "v1", "values": [0.0, 1.0, 0.0, 0.0]}])
        )
        wait_for_mutation(sdk, acct, index, up.mutation_id)
        (v1,) = sdk.vectorize.indexes.get_by_ids(index, account_id=acct, ids=["v1"])
        assert v1["values"] == [0.0, 1.0, 0.0, 0.0]
        assert not v1.get("metadata")  # upsert replaces the whole vector; metadata is not merged
        assert sdk.vectorize.indexes.info(index, account_id=acct).vector_count == len(BASE_VECTORS)

    def test_query_topk_values_and_metadata(self, sdk, acct, index):
        res = sdk.vectorize.indexes.query(
            index, account_id=acct, vector=[1.0, 0.0, 0.0, 0.0], top_k=3, return_values=True, return_metadata="all"
        )
        assert res.count == 3 and [m.id for m in res.matches] == ["v0", "v1", "v2"]
        scores = [m.score for m in res.matches]
        assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1.0, abs=1e-6)
        assert scores[1] == pytest.approx(2**-0.5, abs=1e-6)  # cosine of [1,0,0,0] and [1,1,0,0]
        assert res.matches[1].values == [1.0, 1.0, 0.0, 0.0]
        assert res.matches[1].metadata == {"n": 1, "tag": "odd"}

        bare = sdk.vectorize.indexes.query(index, account_id=acct, vector=[1.0, 0.0, 0.0, 0.0], top_k=2)
        assert [m.id for m in bare.matches] == ["v0", "v1"]
        assert all(m.values is None and m.metadata is None for m in bare.matches)

    def test_query_topk_limit_with_values(self, sdk, acct, index):
        # topK may be at most 20 when returnValues is true or returnMetadata is 'all'.
        with pytest.raises(cloudflare.BadRequestError):
            sdk.vectorize.indexes.query(
                index, account_id=acct, vector=[1.0, 0.0, 0.0, 0.0], top_k=21, return_values=True
            )
        assert sdk.vectorize.indexes.query(index, account_id=acct, vector=[1.0, 0.0, 0.0, 0.0], top_k=21).count == len(
            BASE_VECTORS
        )

    def test_query_namespace(self, sdk, acct, index):
        # The SDK's query() has no namespace parameter (reference 7.4.4): send it with extra_body.
        res = sdk.vectorize.indexes.query(
            index, account_id=acct, vector=[1.0, 0.0, 0.0, 0.0], top_k=5, extra_body={"namespace": "alpha"}
        )
        assert [(m.id, m.namespace) for m in res.matches] == [("ns-1", "alpha")]

    def test_get_by_ids(self, sdk, acct, index):
        got = sdk.vectorize.indexes.get_by_ids(index, account_id=acct, ids=["v3", "ns-1", "missing"])
        by_id = {v["id"]: v for v in got}
        assert set(by_id) == {"v3", "ns-1"}
        assert by_id["v3"]["values"] == [1.0, 3.0, 0.0, 0.0]
        assert by_id["v3"]["metadata"] == {"n": 3, "tag": "odd"}
        assert by_id["ns-1"]["namespace"] == "alpha"

    def test_delete_by_ids(self, sdk, acct, index):
        res = sdk.vectorize.indexes.delete_by_ids(index, account_id=acct, ids=["v0", "v4"])
        info = wait_for_mutation(sdk, acct, index, res.mutation_id)
        assert info.vector_count == len(BASE_VECTORS) - 2
        assert sdk.vectorize.indexes.get_by_ids(index, account_id=acct, ids=["v0", "v4"]) == []
        top = sdk.vectorize.indexes.query(index, account_id=acct, vector=[1.0, 0.0, 0.0, 0.0], top_k=10)
        assert not {"v0", "v4"} & {m.id for m in top.matches}


class TestVectorizeListVectors:
    def test_cursor_paging_is_a_snapshot(self, sdk, acct, new_index):
        index = new_index()
        original = [{"id": f"m{i:02d}", "values": [1.0, float(i), 1.0, 0.0]} for i in range(7)]
        mutation = sdk.vectorize.indexes.insert(index, account_id=acct, body=ndjson(original), extra_headers=NDJSON)
        wait_for_mutation(sdk, acct, index, mutation.mutation_id)

        page = sdk.vectorize.indexes.list_vectors(index, account_id=acct, count=3)
        assert page.count == 3 and page.total_count == 7 and page.is_truncated is True
        assert page.next_cursor and page.cursor_expiration_timestamp is not None
        seen = [v.id for v in page.vectors]

        # Changes after the first page do not show up in the pages of this listing.
        late = sdk.vectorize.indexes.insert(
            index,
            account_id=acct,
            extra_headers=NDJSON,
            body=ndjson(
                [{"id": "a-late", "values": [0.0, 1.0, 0.0, 0.0]}, {"id": "z-late", "values": [0.0, 0.0, 0.0, 1.0]}]
            ),
        )
        wait_for_mutation(sdk, acct, index, late.mutation_id)

        while page.is_truncated:
            page = sdk.vectorize.indexes.list_vectors(index, account_id=acct, count=3, cursor=page.next_cursor)
            assert page.total_count == 7
            seen += [v.id for v in page.vectors]
        assert sorted(seen) == sorted(v["id"] for v in original)
        assert len(seen) == len(set(seen))
        assert not page.next_cursor

        fresh = sdk.vectorize.indexes.list_vectors(index, account_id=acct, count=100)
        assert fresh.total_count == 9 and fresh.is_truncated is False
        assert {"a-late", "z-late"} <= {v.id for v in fresh.vectors}


class TestVectorizeMetadataIndex:
    def test_create_list_filter_delete(self, sdk, acct, new_index):
        index = new_index()
        created = sdk.vectorize.indexes.metadata_index.create(
            index, account_id=acct, property_name="tag", index_type="string"
        )
        assert created.mutation_id
        wait_for_mutation(sdk, acct, index, created.mutation_id)
        listed = sdk.vectorize.indexes.metadata_index.list(index, account_id=acct)
        assert [(m.property_name, m.index_type) for m in listed.metadata_indexes] == [("tag", "string")]

        # Vectors written after the metadata index exists are filterable on it.
        mutation = sdk.vectorize.indexes.insert(index, account_id=acct, body=ndjson(BASE_VECTORS), extra_headers=NDJSON)
        wait_for_mutation(sdk, acct, index, mutation.mutation_id)
        res = sdk.vectorize.indexes.query(
            index,
            account_id=acct,
            vector=[1.0, 0.0, 0.0, 0.0],
            top_k=10,
            filter={"tag": {"$eq": "even"}},
            return_metadata="indexed",
        )
        assert sorted(m.id for m in res.matches) == ["v0", "v2", "v4"]
        assert all(m.metadata == {"tag": "even"} for m in res.matches)  # 'indexed' returns only indexed keys

        deleted = sdk.vectorize.indexes.metadata_index.delete(index, account_id=acct, property_name="tag")
        assert deleted.mutation_id
        assert not sdk.vectorize.indexes.metadata_index.list(index, account_id=acct).metadata_indexes


# ---- Workers KV ---------------------------------------------------------------------------------


class TestKVNamespaces:
    def test_create_get_list_delete(self, logged_sdk, acct):
        client, seen = logged_sdk
        made = [client.kv.namespaces.create(account_id=acct, title=unique("kvl")) for _ in range(6)]
        try:
            assert all(ns.id and ns.title.startswith("contract-kvl-") for ns in made)
            got = client.kv.namespaces.get(made[0].id, account_id=acct)
            assert (got.id, got.title) == (made[0].id, made[0].title)
            seen.clear()
            listed = list(client.kv.namespaces.list(account_id=acct, per_page=5))
            ids = [ns.id for ns in listed]
            assert len(ids) == len(set(ids))
            assert {ns.id for ns in made} <= set(ids)
            # page+1 until an empty page: ceil(n/5) full or partial pages, then one empty one.
            pages = [httpx.QueryParams(u.query).get("page") for u in seen]
            n_pages = -(-len(ids) // 5)
            assert pages == [None] + [str(p) for p in range(2, n_pages + 2)]
        finally:
            for ns in made:
                client.kv.namespaces.delete(ns.id, account_id=acct)
        with pytest.raises(cloudflare.NotFoundError):
            client.kv.namespaces.get(made[0].id, account_id=acct)


class TestKVKeys:
    def test_list_keys_follows_the_cursor(self, logged_sdk, acct, new_ns):
        client, seen = logged_sdk
        ns = new_ns()
        expiration = int(time.time()) + 3600
        pairs = []
        for i in range(1205):
            pair = {"key": f"key-{i:05d}", "value": f"value-{i}"}
            if i % 2 == 0:
                pair["expiration"] = expiration
            if i % 3 == 0:
                pair["metadata"] = {"i": i}
            pairs.append(pair)
        res = client.kv.namespaces.bulk_update(ns.id, account_id=acct, body=pairs)
        assert res.successful_key_count == 1205 and res.unsuccessful_keys == []

        seen.clear()
        keys = list(client.kv.namespaces.keys.list(ns.id, account_id=acct))
        assert [k.name for k in keys] == [p["key"] for p in pairs]
        assert all(k.expiration == p.get("expiration") for k, p in zip(keys, pairs))
        assert all(k.metadata == p.get("metadata") for k, p in zip(keys, pairs))
        # Default limit 1000: a second request carries the cursor from result_info, then it stops.
        cursors = [httpx.QueryParams(u.query).get("cursor") for u in seen]
        assert len(cursors) == 2 and cursors[0] is None and cursors[1]

        first = client.kv.namespaces.keys.list(ns.id, account_id=acct, limit=1000)
        assert first.result_info.count == 1000 and first.result_info.cursor
        last = client.kv.namespaces.keys.list(ns.id, account_id=acct, cursor=first.result_info.cursor)
        assert len(last.result) == 205 and not last.result_info.cursor

    def test_prefix(self, sdk, acct, new_ns):
        ns = new_ns()
        sdk.kv.namespaces.bulk_update(
            ns.id, account_id=acct, body=[{"key": k, "value": "x"} for k in ("cache:a", "cache:b", "cachex", "other")]
        )
        names = [k.name for k in sdk.kv.namespaces.keys.list(ns.id, account_id=acct, prefix="cache:")]
        assert names == ["cache:a", "cache:b"]


class TestKVValues:
    def test_binary_value_roundtrip_with_metadata_and_ttl(self, sdk, acct, new_ns):
        ns = new_ns()
        key = "blobs/thumb 1.png"  # '/' and ' ' must survive the URL encoding
        blob = bytes(range(256)) + b"\x00\xff\xfe"
        before = int(time.time())
        # values.update needs bytes: a str raises RuntimeError inside the SDK (reference 7.4.2).
        sdk.kv.namespaces.values.update(
            key,
            account_id=acct,
            namespace_id=ns.id,
            value=blob,
            metadata={"content_type": "image/png"},
            expiration_ttl=300,
        )
        got = sdk.kv.namespaces.values.get(key, account_id=acct, namespace_id=ns.id)
        assert got.read() == blob
        # The `expiration` header carries the absolute expiry (epoch seconds) the TTL produced.
        expires = int(got.headers["expiration"])
        assert expires >= before + 300
        assert sdk.kv.namespaces.metadata.get(key, account_id=acct, namespace_id=ns.id) == {"content_type": "image/png"}
        (listed,) = sdk.kv.namespaces.keys.list(ns.id, account_id=acct)
        assert listed.name == key and listed.metadata == {"content_type": "image/png"}
        assert listed.expiration == expires

        sdk.kv.namespaces.values.delete(key, account_id=acct, namespace_id=ns.id)
        with pytest.raises(cloudflare.NotFoundError):
            sdk.kv.namespaces.values.get(key, account_id=acct, namespace_id=ns.id)

    def test_overwrite_replaces_value_and_metadata(self, sdk, acct, new_ns):
        ns = new_ns()
        sdk.kv.namespaces.values.update("k", account_id=acct, namespace_id=ns.id, value=b"one", metadata={"v": 1})
        sdk.kv.namespaces.values.update("k", account_id=acct, namespace_id=ns.id, value=b"two")
        assert sdk.kv.namespaces.values.get("k", account_id=acct, namespace_id=ns.id).read() == b"two"
        assert sdk.kv.namespaces.metadata.get("k", account_id=acct, namespace_id=ns.id) is None

    def test_bulk_get_with_and_without_metadata(self, sdk, acct, new_ns):
        ns = new_ns()
        expiration = int(time.time()) + 3600
        sdk.kv.namespaces.bulk_update(
            ns.id,
            account_id=acct,
            body=[
                {"key": "plain", "value": "hello"},
                {"key": "json", "value": json.dumps({"a": 1}), "metadata": {"kind": "json"}, "expiration": expiration},
                {"key": "b64", "value": base64.b64encode(b"decoded!").decode(), "base64": True},
            ],
        )
        assert sdk.kv.namespaces.values.get("b64", account_id=acct, namespace_id=ns.id).read() == b"decoded!"

        text = sdk.kv.namespaces.bulk_get(ns.id, account_id=acct, keys=["plain", "json", "absent"])
        assert text.values == {"plain": "hello", "json": '{"a": 1}', "absent": None}

        parsed = sdk.kv.namespaces.bulk_get(ns.id, account_id=acct, keys=["json"], type="json")
        assert parsed.values == {"json": {"a": 1}}

        meta = sdk.kv.namespaces.bulk_get(ns.id, account_id=acct, keys=["plain", "json", "absent"], with_metadata=True)
        assert meta.values["json"].value == '{"a": 1}'
        assert meta.values["json"].metadata == {"kind": "json"}
        assert meta.values["json"].expiration == expiration
        assert meta.values["plain"].value == "hello" and meta.values["plain"].metadata is None
        assert meta.values["absent"] is None

    def test_bulk_delete(self, sdk, acct, new_ns):
        ns = new_ns()
        sdk.kv.namespaces.bulk_update(ns.id, account_id=acct, body=[{"key": f"k{i}", "value": "v"} for i in range(5)])
        res = sdk.kv.namespaces.bulk_delete(ns.id, account_id=acct, body=["k1", "k3"])
        assert res.successful_key_count == 2 and res.unsuccessful_keys == []
        assert [k.name for k in sdk.kv.namespaces.keys.list(ns.id, account_id=acct)] == ["k0", "k2", "k4"]

    def test_demo_namespace_is_readable(self, sdk, lf, acct):
        keys = list(sdk.kv.namespaces.keys.list(lf.kv_id, account_id=acct, prefix="config:"))
        assert "config:feature-flags" in [k.name for k in keys]
        flags = sdk.kv.namespaces.values.get("config:feature-flags", account_id=acct, namespace_id=lf.kv_id)
        assert isinstance(json.loads(flags.read()), dict)


# ---- Workers: deployments, versions, AI ----------------------------------------------------------


class TestWorkersScripts:
    def test_deployments_list(self, sdk, api, acct, worker_name):
        page = sdk.workers.scripts.deployments.list(worker_name, account_id=acct)
        # SDK 5.9.0 pages deployments with SyncV4PagePagination, which reads result.items; the real
        # body is result.deployments, so iterating yields nothing (reference 7.4.3/5.1). The data is
        # kept as an extra attribute on .result, which is what clients have to read.
        assert list(page) == []
        deployments = page.result.deployments
        raw = api.get(f"/accounts/{{acct}}/workers/scripts/{worker_name}/deployments").json()
        assert raw["success"] is True and deployments == raw["result"]["deployments"]
        assert deployments
        for dep in deployments:
            assert dep["id"] and dep["created_on"] and dep["strategy"] == "percentage"
            assert sum(v["percentage"] for v in dep["versions"]) == pytest.approx(100.0)
        # The first deployment is the latest one, actively serving traffic.
        created = [dep["created_on"] for dep in deployments]
        assert created == sorted(created, reverse=True), f"deployments not newest-first: {created}"

    def test_versions_list_and_get(self, sdk, acct, worker_name):
        versions = list(sdk.workers.scripts.versions.list(worker_name, account_id=acct, per_page=1))
        assert versions and len({v.id for v in versions}) == len(versions)
        # deployable=true ignores pagination, so read the first page only: iterating it would make
        # the SDK ask for page 2, 3, ... and get the same items back forever.
        deployable = sdk.workers.scripts.versions.list(worker_name, account_id=acct, deployable=True).result.items
        assert [v.id for v in deployable] == [v.id for v in versions]

        # versions.get() cannot parse any response in SDK 5.9.0: VersionGetResponse has a field typed
        # with a plain class (ResourcesBindings), so pydantic fails to build it. Read the raw body.
        raw = sdk.workers.scripts.versions.with_raw_response.get(
            versions[0].id, account_id=acct, script_name=worker_name
        )
        one = raw.http_response.json()["result"]
        assert one["id"] == versions[0].id and one["number"] == versions[0].number

        deployments = sdk.workers.scripts.deployments.list(worker_name, account_id=acct).result.deployments
        assert {v["version_id"] for d in deployments for v in d["versions"]} <= {v.id for v in versions}

        # The first version is the latest: numbers count down and so do creation times.
        numbers = [v.number for v in versions]
        created = [v.metadata.created_on for v in versions]
        assert numbers == sorted(numbers, reverse=True)
        assert created == sorted(created, reverse=True), (
            f"version {numbers[0]} is not the newest: {list(zip(numbers, created))}"
        )

    def test_unknown_script(self, sdk, acct):
        with pytest.raises(cloudflare.NotFoundError):
            list(sdk.workers.scripts.versions.list(unique("nope"), account_id=acct))


class TestWorkersAI:
    def test_text_embeddings(self, sdk, acct):
        one = sdk.ai.run(EMBED_MODEL, account_id=acct, text="vector search with cloudflare")
        again = sdk.ai.run(EMBED_MODEL, account_id=acct, text="vector search with cloudflare")
        # The result type is a union that includes `object`, so the SDK hands back the plain dict.
        assert one["shape"] == [1, 384] and len(one["data"]) == 1 and len(one["data"][0]) == 384
        assert one["data"] == again["data"]

        batch = sdk.ai.run(EMBED_MODEL, account_id=acct, text=["vector search with cloudflare", "a different sentence"])
        assert batch["shape"] == [2, 384]
        assert batch["data"][0] == pytest.approx(one["data"][0], abs=1e-6)
        assert batch["data"][1] != batch["data"][0]

    def test_unknown_model(self, sdk, acct):
        with pytest.raises(cloudflare.BadRequestError):
            sdk.ai.run("@cf/nope/not-a-model", account_id=acct, text="x")


# ---- GraphQL Analytics (not in the SDK: reference 7.2, use client.post) ------------------------------

GQL_WINDOW = """query($acct: string!, $start: Time!, $end: Time!, $script: string!) {
  viewer { accounts(filter: {accountTag: $acct}) {
    total: workersInvocationsAdaptive(limit: 10000, filter: {scriptName: $script, datetime_geq: $start, datetime_leq: $end}) {
      sum { requests errors subrequests cpuTimeUs wallTime }
      quantiles { wallTimeP50 wallTimeP95 wallTimeP99 cpuTimeP50 cpuTimeP99 }
    }
    hourly: workersInvocationsAdaptive(limit: 10000, orderBy: [datetimeHour_ASC],
        filter: {scriptName: $script, datetime_geq: $start, datetime_leq: $end}) {
      sum { requests errors } dimensions { datetimeHour scriptName }
    }
    byStatus: workersInvocationsAdaptive(limit: 100, filter: {scriptName: $script, datetime_geq: $start, datetime_leq: $end}) {
      sum { requests errors } dimensions { status }
    }
    d1Total: d1AnalyticsAdaptiveGroups(limit: 10000, filter: {datetimeHour_geq: $start, datetimeHour_leq: $end}) {
      sum { readQueries writeQueries rowsRead rowsWritten } dimensions { databaseId }
    }
    d1Hourly: d1AnalyticsAdaptiveGroups(limit: 10000, orderBy: [datetimeHour_ASC], filter: {datetimeHour_geq: $start, datetimeHour_leq: $end}) {
      sum { readQueries writeQueries rowsRead rowsWritten } dimensions { datetimeHour }
    }
    aiTotal: aiInferenceAdaptiveGroups(limit: 10000, filter: {datetime_geq: $start, datetime_leq: $end}) {
      count sum { totalNeurons } dimensions { modelId }
    }
    aiHourly: aiInferenceAdaptiveGroups(limit: 10000, orderBy: [datetimeHour_ASC], filter: {datetime_geq: $start, datetime_leq: $end}) {
      count sum { totalNeurons } dimensions { datetimeHour }
    }
  } }
}"""


@pytest.fixture
def window():
    """The last two days, up to now."""
    end = datetime.now(timezone.utc)
    return end - timedelta(days=2), end


class TestGraphQL:
    @pytest.fixture
    def account(self, sdk, lf, window, worker_name):
        start, end = window
        body = {
            "query": GQL_WINDOW,
            "variables": {"acct": lf.account_id, "start": iso_z(start), "end": iso_z(end), "script": worker_name},
        }
        # GraphQL is not in the SDK; the generic post keeps the client's auth and retries.
        res = sdk.post("/graphql", body=body, cast_to=object)
        assert res["errors"] is None, res["errors"]
        (account,) = res["data"]["viewer"]["accounts"]
        return account

    def test_workers_invocations_are_consistent(self, account, window, worker_name):
        (total,) = account["total"]
        hourly, by_status = account["hourly"], account["byStatus"]
        assert total["sum"]["requests"] > 0
        assert 0 <= total["sum"]["errors"] <= total["sum"]["requests"]
        for field in ("requests", "errors"):
            assert sum(h["sum"][field] for h in hourly) == total["sum"][field]
            assert sum(s["sum"][field] for s in by_status) == total["sum"][field]
        assert (
            sum(s["sum"]["requests"] for s in by_status if s["dimensions"]["status"] != "success")
            == total["sum"]["errors"]
        )
        q = total["quantiles"]
        assert 0 < q["wallTimeP50"] <= q["wallTimeP95"] <= q["wallTimeP99"]
        assert 0 < q["cpuTimeP50"] <= q["cpuTimeP99"]

        hours = [h["dimensions"]["datetimeHour"] for h in hourly]
        assert hours == sorted(hours) and len(hours) == len(set(hours))
        assert 46 <= len(hours) <= 49  # about 48 hourly groups in a 2-day window
        start, end = window
        for hour in hours:
            assert start - timedelta(hours=1) <= datetime.fromisoformat(hour.replace("Z", "+00:00")) <= end
        assert {h["dimensions"]["scriptName"] for h in hourly} == {worker_name}

    def test_d1_analytics_are_consistent(self, account, lf):
        (total,) = account["d1Total"]
        assert total["dimensions"]["databaseId"] == lf.d1_id
        assert total["sum"]["readQueries"] > 0
        for field in ("readQueries", "writeQueries", "rowsRead", "rowsWritten"):
            assert sum(h["sum"][field] for h in account["d1Hourly"]) == total["sum"][field]

    def test_ai_inference_is_consistent(self, account):
        (total,) = account["aiTotal"]
        assert total["dimensions"]["modelId"] == EMBED_MODEL
        assert total["count"] > 0 and total["sum"]["totalNeurons"] > 0
        assert sum(h["count"] for h in account["aiHourly"]) == total["count"]
        assert sum(h["sum"]["totalNeurons"] for h in account["aiHourly"]) == pytest.approx(total["sum"]["totalNeurons"])

    def test_unknown_field_is_a_graphql_error_with_http_200(self, sdk, lf, window):
        start, end = window
        query = (
            '{ viewer { accounts(filter: {accountTag: "%s"}) { workersInvocationsAdaptive(limit: 1, '
            'filter: {datetime_geq: "%s", datetime_leq: "%s"}) { sum { notAField } } } } }'
        ) % (lf.account_id, iso_z(start), iso_z(end))
        resp = sdk.post("/graphql", body={"query": query}, cast_to=httpx.Response)
        assert resp.status_code == 200
        body = resp.json()
        assert body["data"] is None
        assert body["errors"] and "notAField" in body["errors"][0]["message"]


# ---- SDK error types --------------------------------------------------------------------------------


class TestErrors:
    def test_bad_token(self, lf, acct):
        bad = Cloudflare(api_token="not-the-token", base_url=lf.api_url, max_retries=0)
        with pytest.raises((cloudflare.AuthenticationError, cloudflare.PermissionDeniedError)) as info:
            bad.d1.database.list(account_id=acct)
        assert 10000 in error_codes(info.value)
        assert info.value.body["success"] is False and info.value.body["result"] is None

    def test_unknown_database(self, sdk, acct):
        with pytest.raises(cloudflare.NotFoundError) as info:
            sdk.d1.database.query(str(uuid.uuid4()), account_id=acct, sql="SELECT 1")
        assert info.value.status_code == 404 and error_codes(info.value)

    def test_invalid_sql(self, sdk, lf, acct):
        with pytest.raises(cloudflare.BadRequestError) as info:
            sdk.d1.database.query(lf.d1_id, account_id=acct, sql="SELECT * FROM no_such_table")
        assert 7500 in error_codes(info.value)
        assert "no_such_table" in info.value.body["errors"][0]["message"]

    def test_unknown_index_and_namespace(self, sdk, acct):
        with pytest.raises(cloudflare.NotFoundError):
            sdk.vectorize.indexes.info(unique("ix"), account_id=acct)
        with pytest.raises(cloudflare.NotFoundError):
            list(sdk.kv.namespaces.keys.list(uuid.uuid4().hex, account_id=acct))

    def test_429_is_retried_after_retry_after(self, lf_fresh):
        server = lf_fresh(seed=False)
        server.add_faults("429:count=1,retry_after=1")
        no_retry = Cloudflare(api_token=server.token, base_url=server.api_url, max_retries=0)
        with pytest.raises(cloudflare.RateLimitError) as info:
            _ = no_retry.d1.database.list(account_id=server.account_id).result
        assert 971 in error_codes(info.value)
        assert info.value.response.headers["retry-after"] == "1"

        server.add_faults("429:count=1,retry_after=1")
        one_retry = Cloudflare(api_token=server.token, base_url=server.api_url, max_retries=1)
        started = time.monotonic()
        page = one_retry.d1.database.list(account_id=server.account_id)
        waited = time.monotonic() - started
        assert page.result == []
        assert 0.9 <= waited < 2.5, f"expected a ~1 s wait (Retry-After), got {waited:.2f}s"
        assert server.counters()["429_sent"] == 2
