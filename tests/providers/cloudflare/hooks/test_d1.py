"""D1Hook against localflare: databases, queries, native and logical export, import, Time Travel.

Work on the shared demo server happens in scratch databases; faults go to private servers.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import threading
import uuid
from collections import Counter
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import pytest

from airflow_provider_cloudflare.errors import (
    CloudflareBadRequest,
    CloudflareError,
    CloudflareNotFound,
    CloudflareTimeout,
)
from airflow_provider_cloudflare.hooks.d1 import D1Hook, download
from airflow_provider_cloudflare.polling import FIRST_POLL_GAP, poll_gaps
from airflow_provider_cloudflare.sqldump import FIRST_PAGE_ROWS


class CountingD1Hook(D1Hook):
    """A D1Hook that counts the API calls it sends (by the path's last part: raw, query, export, ...),
    keeps the rows of every page of table rows it reads, and the status of every export answer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: Counter = Counter()
        self.pages: list[list[dict]] = []
        self.export_answers: list[str] = []

    def request(self, method, path, **kwargs):
        self.calls[path.rstrip("/").rsplit("/", 1)[-1]] += 1
        return super().request(method, path, **kwargs)

    def read_rows(self, database_id, statements):
        results = super().read_rows(database_id, statements)
        self.pages += [rows for (sql, _), rows in zip(statements, results) if "__end" in sql]
        return results

    def _checked_operation(self, database_id, kind, result):
        if kind == "export":
            self.export_answers.append(result.get("status"))
        return super()._checked_operation(database_id, kind, result)


EXPORT_ROUTE = "route:POST /accounts/{account_id}/d1/database/{database_id}/export"
RAW_ROUTE = "route:POST /accounts/{account_id}/d1/database/{database_id}/raw"


def scratch_name() -> str:
    return f"d1test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def d1(cf) -> D1Hook:
    return D1Hook()


@pytest.fixture
def scratch(d1):
    """A throwaway database on the shared server; deleted afterwards."""
    db = d1.create_database(scratch_name())["uuid"]
    yield db
    try:
        d1.delete_database(db)
    except CloudflareNotFound:
        pass


@pytest.fixture
def private_d1(lf_fresh, connect):
    """(server, hook, database) on a private server, for faults."""
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = D1Hook()
    db = hook.create_database(scratch_name())["uuid"]
    # About 250 KB of dump, so a download can be cut several times.
    hook.query(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for start in range(0, 500, 50):
        hook.query(
            db,
            "INSERT INTO t(v) SELECT printf('%s-%04d', hex(randomblob(240)), value) FROM json_each(?)",
            [str(list(range(start, start + 50)))],
        )
    return server, hook, db


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_rows(hook: D1Hook, db: str, table: str) -> list[dict]:
    """Every row with its rowid, each value through quote() (exact for REAL and BLOB)."""
    ident = '"' + table.replace('"', '""') + '"'
    cols = [c["name"] for c in hook.rows(db, f"PRAGMA table_info({ident})")]
    quoted = ", ".join(f'quote("{c}") AS "{c}"' for c in cols)
    return hook.rows(db, f"SELECT rowid AS __rowid, {quoted} FROM {ident} ORDER BY rowid")


def user_tables(hook: D1Hook, db: str) -> list[str]:
    return sorted(
        t["name"]
        for t in hook.rows(db, "PRAGMA table_list")
        if t["schema"] == "main" and t["type"] in ("table", "virtual") and not t["name"].startswith("sqlite_")
    )


# ---- databases -------------------------------------------------------------------------------


def test_create_list_get_find_delete(d1, cf):
    name = scratch_name()
    created = d1.create_database(name)
    db = created["uuid"]
    try:
        assert created["name"] == name
        assert {cf.d1_id, db} <= {x["uuid"] for x in d1.list_databases()}
        d1.create_database(name + "-2")  # the name filter matches substrings; find must not
        assert {x["name"] for x in d1.list_databases(name)} == {name, name + "-2"}
        assert d1.find_database(name) == db
        assert d1.find_database("claudes-friend-db") == cf.d1_id
        info = d1.get_database(db)
        assert info["uuid"] == db and info["num_tables"] == 0 and info["file_size"] >= 0
        with pytest.raises(CloudflareBadRequest) as dup:
            d1.create_database(name)
        assert dup.value.code == 7502
    finally:
        d1.delete_database(db)
        d1.delete_database(d1.find_database(name + "-2"))
    with pytest.raises(CloudflareNotFound):
        d1.get_database(db)
    with pytest.raises(CloudflareNotFound, match=name):
        d1.find_database(name)


# ---- queries ---------------------------------------------------------------------------------


def test_query_binds_params_instead_of_pasting_them(d1, scratch):
    d1.query(scratch, "CREATE TABLE students(id INTEGER PRIMARY KEY, name TEXT, score REAL, active INTEGER, note TEXT)")
    evil = "Robert'); DROP TABLE students; --"
    out = d1.query(
        scratch, "INSERT INTO students(name, score, active, note) VALUES (?, ?, ?, ?)", [evil, 2.5, True, "x;y"]
    )
    assert len(out) == 1 and out[0]["success"] is True and out[0]["meta"]["changes"] == 1
    assert d1.rows(scratch, "SELECT name, score, active, note FROM students WHERE name = ?", [evil]) == [
        {"name": evil, "score": 2.5, "active": 1, "note": "x;y"}
    ]
    assert [t["name"] for t in d1.rows(scratch, "SELECT name FROM sqlite_master WHERE type = 'table'")] == ["students"]


def test_query_runs_several_statements_and_rows_gives_the_last(d1, scratch):
    out = d1.query(scratch, "CREATE TABLE t(v); INSERT INTO t VALUES ('a;b'), ('c'); SELECT v FROM t ORDER BY v")
    assert len(out) == 3 and out[2]["results"] == [{"v": "a;b"}, {"v": "c"}]
    assert d1.rows(scratch, "INSERT INTO t VALUES ('d'); SELECT COUNT(*) AS n FROM t") == [{"n": 3}]


def test_batch_is_one_transaction(d1, scratch):
    d1.query(scratch, "CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER)")
    out = d1.batch(
        scratch,
        [
            ("INSERT INTO t VALUES (?, ?)", ["a", 1]),
            ("INSERT INTO t VALUES (?, ?)", ["b", 2]),
            ("SELECT k, n FROM t WHERE n > ? ORDER BY k", [0]),
        ],
    )
    assert len(out) == 3 and out[2]["results"] == [{"k": "a", "n": 1}, {"k": "b", "n": 2}]
    with pytest.raises(CloudflareBadRequest, match="UNIQUE constraint failed"):
        d1.batch(scratch, [("INSERT INTO t VALUES (?, ?)", ["c", 3]), ("INSERT INTO t VALUES (?, ?)", ["a", 9])])
    assert d1.rows(scratch, "SELECT k FROM t ORDER BY k") == [{"k": "a"}, {"k": "b"}]  # 'c' rolled back


def test_raw_returns_columns_and_row_arrays(d1, scratch):
    # Typed columns: params travel as strings, and only a column's affinity makes '1' a number again.
    d1.query(scratch, "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    out = d1.raw(scratch, "SELECT a, b FROM t WHERE a >= ? ORDER BY a", [1])
    assert out[0]["results"] == {"columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]]}


# ---- native export ---------------------------------------------------------------------------


def test_export_native_writes_the_dump_with_its_digest(d1, scratch, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_cloudflare")
    d1.query(
        scratch,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB); "
        "INSERT INTO t(v, b) VALUES ('it''s', X'00FF'), ('two', NULL)",
    )
    bookmark = d1.get_bookmark(scratch)
    dest = tmp_path / "native.sql"
    info = d1.export_native(scratch, dest, poll_interval=0.1)
    text = dest.read_text()
    assert "CREATE TABLE" in text and "INSERT INTO \"t\" VALUES(1,'it''s',X'00FF');" in text
    assert info["mode"] == "native" and info["path"] == str(dest) and info["at_bookmark"] == bookmark
    assert info["bytes"] == dest.stat().st_size and info["sha256"] == sha256(dest)
    assert info["filename"].endswith(".sql") and info["blocked_seconds"] >= 0.3  # --export-min-seconds
    assert any("blocked for" in r.getMessage() and scratch in r.getMessage() for r in caplog.records)
    d1.rows(scratch, "SELECT 1")  # released afterwards


def test_export_native_polls_at_once_and_never_after_completion(lf_fresh, connect, tmp_path):
    # An export that takes 1.5 s: the start's answer says "active", so polls are needed.
    server = lf_fresh("--export-min-seconds", "1.5", seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = CountingD1Hook()
    db = hook.create_database(scratch_name())["uuid"]
    hook.query(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('it''s; -- fine')")
    before = server.counters().get(EXPORT_ROUTE, 0)
    # poll_interval only caps the pauses between polls: had the first poll waited for it, the export
    # would have run into its timeout instead.
    info = hook.export_native(db, tmp_path / "native.sql", poll_interval=3600, timeout=60)
    answers = hook.export_answers
    assert answers[0] == "active" and answers[-1] == "complete" and answers.count("complete") == 1
    # Every export call the server saw is one the hook read, and the complete answer was the last.
    assert server.counters()[EXPORT_ROUTE] - before == len(answers) == hook.calls["export"]
    assert "INSERT INTO \"t\" VALUES(1,'it''s; -- fine');" in (tmp_path / "native.sql").read_text()
    assert info["bytes"] == (tmp_path / "native.sql").stat().st_size


def test_poll_gaps_start_at_once_then_back_off_to_the_interval():
    assert list(islice(poll_gaps(1.0), 8)) == [0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert FIRST_POLL_GAP == 0.05
    assert list(islice(poll_gaps(0.02), 3)) == [0.0, 0.02, 0.02]  # an interval under the first gap caps it too


def test_export_native_survives_a_dropped_download(private_d1, tmp_path):
    server, hook, db = private_d1
    clean = hook.export_native(db, tmp_path / "clean.sql", poll_interval=0.1)
    assert clean["bytes"] > 200_000
    server.add_faults("drop_download:after_bytes=70000,count=1")
    resumed = hook.export_native(db, tmp_path / "resumed.sql", poll_interval=0.1)
    assert server.counters()["downloads_dropped"] == 1
    assert (tmp_path / "resumed.sql").read_bytes() == (tmp_path / "clean.sql").read_bytes()
    assert (resumed["bytes"], resumed["sha256"]) == (clean["bytes"], clean["sha256"])


def test_download_resumes_from_where_each_drop_left_it(private_d1, tmp_path):
    # Every response breaks after 100 KB: only Range resumes that keep what arrived can finish ~250 KB.
    server, hook, db = private_d1
    clean = hook.export_native(db, tmp_path / "clean.sql", poll_interval=0.1)
    server.add_faults("drop_download:after_bytes=100000,count=-1")
    resumed = hook.export_native(db, tmp_path / "resumed.sql", poll_interval=0.1)
    assert (tmp_path / "resumed.sql").read_bytes() == (tmp_path / "clean.sql").read_bytes()
    assert resumed["sha256"] == clean["sha256"]
    assert server.counters()["downloads_dropped"] >= 2  # it went through several drops


class _IgnoresRange(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and the whole body (Range ignored); the first answer breaks halfway."""

    body = bytes(range(256)) * 1000
    served = 0

    def do_GET(self):
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body if self.served > 1 else self.body[: len(self.body) // 2])
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_download_starts_over_when_the_server_ignores_range(tmp_path):
    # A resume answered with 200 is the whole object again: the half already written must not be hashed twice.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IgnoresRange)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        size, digest = download(f"http://127.0.0.1:{server.server_port}/export.sql", tmp_path / "out.sql")
    finally:
        server.shutdown()
        server.server_close()
    body = _IgnoresRange.body
    assert _IgnoresRange.served == 2
    assert (tmp_path / "out.sql").read_bytes() == body
    assert (size, digest) == (len(body), hashlib.sha256(body).hexdigest())


def test_export_native_fails_loudly_when_the_download_keeps_dropping(private_d1, tmp_path):
    server, hook, db = private_d1
    server.add_faults("drop_download:after_bytes=10000,count=-1")
    with pytest.raises(CloudflareError, match=r"broke 6 times; got \d+ of \d+ bytes") as err:
        hook.export_native(db, tmp_path / "broken.sql", poll_interval=0.1)
    got, total = map(int, str(err.value).split("got ")[1].split(" bytes")[0].split(" of "))
    assert got < total
    assert server.counters()["downloads_dropped"] == 6  # the first try and 5 resumes


def test_export_native_stall_times_out_clearly(private_d1, tmp_path):
    server, hook, db = private_d1
    server.add_faults("export_stall:count=1")
    with pytest.raises(CloudflareTimeout, match=r"did not complete within 2 s \(bookmark \S+\)") as err:
        hook.export_native(db, tmp_path / "stalled.sql", timeout=2, poll_interval=0.1)
    assert db in str(err.value) and "blocked" in str(err.value)
    assert not (tmp_path / "stalled.sql").exists()


# ---- logical export and import ---------------------------------------------------------------


def test_logical_export_of_the_demo_imports_back_row_for_row(d1, cf, scratch, tmp_path):
    dump = tmp_path / "logical.sql"
    counting = CountingD1Hook()
    info = counting.export_logical(cf.d1_id, dump, page_bytes=50_000)  # small pages: several a table
    assert len(counting.pages) > len(info["tables"])
    assert all(len(p) == 1 or quoted_bytes(p) <= 50_000 for p in counting.pages)
    assert info["mode"] == "logical" and info["sha256"] == sha256(dump) and info["bytes"] == dump.stat().st_size
    assert dump.read_text().startswith("-- logical D1 dump of claudes-friend-db")
    result = d1.import_sql(scratch, dump, poll_interval=0.2)
    assert result["success"] is True and result["final_bookmark"]
    tables = user_tables(d1, cf.d1_id)
    assert "chunks_fts" in tables and "documents" in tables
    assert user_tables(d1, scratch) == tables
    for table in tables:
        source = all_rows(d1, cf.d1_id, table)
        assert all_rows(d1, scratch, table) == source, table
        assert info["tables"][table] == len(source)
    blobs = d1.rows(scratch, "SELECT COUNT(*) AS n FROM documents WHERE typeof(fingerprint) = 'blob'")
    assert blobs[0]["n"] > 0
    # The full-text index answers as the original does.
    word = "".join(
        ch
        for ch in d1.rows(cf.d1_id, "SELECT content FROM chunks_fts LIMIT 1")[0]["content"].split()[0]
        if ch.isalpha()
    )
    match = "SELECT rowid, chunk_id FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rowid"
    assert d1.rows(scratch, match, [word]) == d1.rows(cf.d1_id, match, [word]) != []
    assert d1.rows(scratch, "PRAGMA foreign_key_check") == []


def quoted_bytes(page: list[dict]) -> int:
    return sum(len(v.encode()) for row in page for k, v in row.items() if k.startswith("q_"))


def test_logical_export_pages_wide_and_narrow_rows_by_bytes(d1, scratch, tmp_path):
    # 40,000 narrow rows around 100 wide ones (30 KB each): far more rows than 500-row pages could
    # carry in a few calls, and a page fitted to narrow rows would be huge with wide ones.
    narrow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        "INSERT INTO events(kind, body, at) SELECT 'n', 'row ' || i || ' ''); DROP TABLE events; --<b>', "
        "CASE i % 3 WHEN 0 THEN '1999-12-31' WHEN 1 THEN '2026-12-07' ELSE '2099-01-01' END FROM n"
    )
    d1.query(
        scratch,
        "CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT, body TEXT, at TEXT); "
        f"{narrow}; "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
        "INSERT INTO events(kind, body, at) SELECT 'w', hex(randomblob(15000)) || char(39, 10, 1), '2026-12-07' FROM n; "
        f"{narrow}",
        read_only=False,
    )
    rows = 40_100
    hook = CountingD1Hook()
    dump = tmp_path / "small-pages.sql"
    info = hook.export_logical(scratch, dump, page_bytes=400_000)
    assert info["tables"] == {"events": rows}
    # bookmark, database, two schema batches, then pages: far fewer calls than rows / 500 = 80.
    assert hook.calls["bookmark"] == 1 and hook.calls["raw"] == 3 + len(hook.pages) - 1
    assert sum(hook.calls.values()) <= 25
    assert len(hook.pages[0]) == FIRST_PAGE_ROWS and max(len(p) for p in hook.pages) > 5_000
    assert all(quoted_bytes(p) <= 400_000 or len(p) == 1 for p in hook.pages)

    # At the default target: one page after the first, and the same dump (but for its header's time).
    default = CountingD1Hook()
    again = default.export_logical(scratch, tmp_path / "default.sql")
    assert sum(default.calls.values()) == 6 and len(default.pages) == 2
    body = [line for line in dump.read_text().splitlines() if not line.startswith("-- captured:")]
    assert [
        line for line in (tmp_path / "default.sql").read_text().splitlines() if not line.startswith("-- captured:")
    ] == body
    assert again["at_bookmark"] == info["at_bookmark"]

    # And it restores row for row.
    target = d1.create_database(scratch_name())["uuid"]
    try:
        d1.import_sql(target, dump, poll_interval=0.2)
        assert all_rows(d1, target, "events") == all_rows(d1, scratch, "events")
    finally:
        d1.delete_database(target)


def test_import_prepares_long_inserts_and_transaction_control(d1, scratch, tmp_path):
    long_text = "ß'x" * 45_000  # 180 KB once quoted
    sql = tmp_path / "with-txn.sql"
    sql.write_text(
        "BEGIN TRANSACTION;\n"
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n"
        f"INSERT INTO t VALUES(1,'{long_text.replace(chr(39), chr(39) * 2)}');\n"
        "COMMIT;\n",
        encoding="utf-8",
    )
    with pytest.raises(CloudflareError, match="BEGIN TRANSACTION"):
        d1.import_sql(scratch, sql, prepare=False, poll_interval=0.2)  # what D1 makes of it unprepared
    result = d1.import_sql(scratch, sql, poll_interval=0.2)
    assert result["prepared"]["split"] == 1 and result["prepared"]["dropped_transaction_control"] == 2
    assert d1.rows(scratch, "SELECT v = ? AS same, length(v) AS n FROM t WHERE id = 1", [long_text]) == [
        {"same": 1, "n": len(long_text)}
    ]


def test_import_of_invalid_sql_raises_and_changes_nothing(d1, scratch, tmp_path):
    d1.query(scratch, "CREATE TABLE t(v); INSERT INTO t VALUES ('kept')")
    before = d1.get_bookmark(scratch)
    sql = tmp_path / "bad.sql"
    sql.write_text("INSERT INTO t VALUES ('half');\nINSERT INTO nope VALUES (1);\n")
    with pytest.raises(CloudflareError, match="no such table: nope"):
        d1.import_sql(scratch, sql, poll_interval=0.2)
    assert d1.rows(scratch, "SELECT v FROM t") == [{"v": "kept"}]
    assert d1.get_bookmark(scratch) == before


# ---- restore from a dump --------------------------------------------------------------------


def test_restore_dump_replaces_every_table_with_a_gzipped_dump(d1, scratch, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_cloudflare")
    # What a damaged database may hold: tables under a foreign key, an FTS5 table, a view, a table the dump lacks.
    d1.query(
        scratch,
        "CREATE TABLE parent(id INTEGER PRIMARY KEY, v TEXT); "
        "CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id)); "
        "INSERT INTO parent VALUES (1, 'old'); INSERT INTO child VALUES (1, 1); "
        "CREATE VIRTUAL TABLE notes USING fts5(body); INSERT INTO notes VALUES ('old'); "
        "CREATE VIEW children AS SELECT * FROM child; CREATE TABLE stray(x)",
        read_only=False,
    )
    long_text = "ß'x" * 45_000  # over D1's statement limit once quoted: the import splits it
    dump = tmp_path / "d1.sql.gz"
    dump.write_bytes(
        gzip.compress(
            (
                "PRAGMA defer_foreign_keys = true;\n"
                "CREATE TABLE parent(id INTEGER PRIMARY KEY, v TEXT);\n"
                "CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));\n"
                f"INSERT INTO parent VALUES(2,'{long_text.replace(chr(39), chr(39) * 2)}');\n"
                "INSERT INTO child VALUES(5,2);\n"
                "CREATE VIRTUAL TABLE notes USING fts5(body);\n"
                "INSERT INTO notes VALUES('new');\n"
            ).encode()
        )
    )
    result = d1.restore_dump(scratch, dump, replace=True, poll_interval=0.2)
    dropped = result["dropped_tables"]
    assert sorted(dropped) == ["child", "notes", "parent", "stray"] and dropped[0] == "notes"
    assert dropped.index("child") < dropped.index("parent")  # children first
    assert result["prepared"]["split"] == 1 and result["at_bookmark"] and result["seconds"] >= 0
    assert sorted(d1.user_tables(scratch)) == [("child", "table"), ("notes", "virtual"), ("parent", "table")]
    assert d1.rows(scratch, "SELECT id, v = ? AS same FROM parent", [long_text]) == [{"id": 2, "same": 1}]
    assert d1.rows(scratch, "SELECT id, p FROM child") == [{"id": 5, "p": 2}]
    assert d1.rows(scratch, "SELECT body FROM notes WHERE notes MATCH 'new'") == [{"body": "new"}]
    assert d1.rows(scratch, "SELECT name FROM sqlite_master WHERE type = 'view'") == []
    assert any("restored into" in r.getMessage() and scratch in r.getMessage() for r in caplog.records)


def test_restore_dump_without_replace_fails_on_an_existing_table_and_changes_nothing(d1, scratch, tmp_path):
    d1.query(scratch, "CREATE TABLE t(v); INSERT INTO t VALUES ('kept')", read_only=False)
    before = d1.get_bookmark(scratch)
    dump = tmp_path / "d1.sql"
    dump.write_text("CREATE TABLE t(v);\nINSERT INTO t VALUES ('dumped');\n")
    with pytest.raises(CloudflareError, match="already exists"):
        d1.restore_dump(scratch, dump, poll_interval=0.2)
    assert d1.rows(scratch, "SELECT v FROM t") == [{"v": "kept"}] and d1.get_bookmark(scratch) == before
    assert d1.drop_user_tables(scratch) == ["t"] and d1.user_tables(scratch) == []


def test_import_takes_a_gzipped_file_unprepared_too(d1, scratch, tmp_path):
    dump = tmp_path / "plain.sql.gz"
    dump.write_bytes(gzip.compress(b"CREATE TABLE t(v);\nINSERT INTO t VALUES ('unzipped');\n"))
    assert d1.import_sql(scratch, dump, prepare=False, poll_interval=0.2)["prepared"] == {}
    assert d1.rows(scratch, "SELECT v FROM t") == [{"v": "unzipped"}]


# ---- Time Travel -----------------------------------------------------------------------------


def test_bookmark_restore_and_redo(d1, scratch):
    d1.query(scratch, "CREATE TABLE t(v); INSERT INTO t VALUES (1), (2)")
    mark = d1.get_bookmark(scratch)
    moment = datetime.now(timezone.utc)
    d1.query(scratch, "DELETE FROM t WHERE v = 1")
    assert d1.get_bookmark(scratch, timestamp=moment) == mark  # a datetime is accepted
    restored = d1.restore(scratch, bookmark=mark)
    assert d1.rows(scratch, "SELECT v FROM t ORDER BY v") == [{"v": 1}, {"v": 2}]  # the delete is undone
    d1.restore(scratch, bookmark=restored["previous_bookmark"])
    assert d1.rows(scratch, "SELECT v FROM t ORDER BY v") == [{"v": 2}]  # and redone
    with pytest.raises(ValueError, match="exactly one"):
        d1.restore(scratch)
    with pytest.raises(ValueError, match="exactly one"):
        d1.restore(scratch, bookmark=mark, timestamp=moment)
