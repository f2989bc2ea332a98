"""sqldump: statement splitting, long-statement rewriting, import preparation and logical dumps.

Pure functions, checked against in-memory SQLite: every rewritten or dumped statement is executed
and the rows it builds are compared with the originals, byte for byte.
"""

from __future__ import annotations

import io
import random
import re
import sqlite3

import pytest

from airflow_provider_cloudflare.sqldump import (
    FIRST_PAGE_ROWS,
    MAX_STATEMENT_BYTES,
    prepare_import,
    shorten,
    split_statements,
    split_values,
    write_logical_dump,
)

# ---- helpers ---------------------------------------------------------------------------------


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def literal(value) -> str:
    """The literal SQLite's quote() gives, as a dump holds it."""
    return sqlite3.connect(":memory:").execute("SELECT quote(?)", (value,)).fetchone()[0]


def d1_like_query(conn: sqlite3.Connection):
    """query(sql, params) -> rows as dicts, params as strings (the way D1Hook sends them)."""

    def query(sql, params):
        cur = conn.execute(sql, [None if p is None else str(p) for p in (params or [])])
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    return query


def load(sql: str) -> sqlite3.Connection:
    """Load a dump into a fresh database with foreign keys on, in one transaction (as D1's import does)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN")
    for stmt in split_statements(lines(sql)):
        conn.execute(stmt)
    conn.execute("COMMIT")
    return conn


def user_tables(conn: sqlite3.Connection) -> dict[str, str]:
    """{name: 'table'|'virtual'} for the tables a dump must carry (no shadow or internal tables)."""
    return {
        name: kind
        for name, kind, schema in conn.execute("SELECT name, type, schema FROM pragma_table_list")
        if schema == "main" and kind in ("table", "virtual") and not name.startswith("sqlite_")
    }


def table_rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    """Every row as quote() literals (exact for REAL and BLOB), with its rowid where it has one."""
    ident = '"' + table.replace('"', '""') + '"'
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({ident})")]
    sql_cols = ", ".join(f'quote("{c}")' for c in cols)
    without_rowid = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    if re.search(r"WITHOUT\s+ROWID", without_rowid, re.I):
        return conn.execute(f"SELECT {sql_cols} FROM {ident} ORDER BY 1, 2").fetchall()
    return conn.execute(f"SELECT rowid, {sql_cols} FROM {ident} ORDER BY rowid").fetchall()


def assert_all_under_limit(statements) -> None:
    sizes = [len(s.encode()) for s in statements]
    assert max(sizes) <= MAX_STATEMENT_BYTES, f"a statement of {max(sizes)} bytes"


# ---- split_statements ------------------------------------------------------------------------


def test_split_statements_keeps_triggers_and_strings_with_semicolons_whole():
    sql = (
        "CREATE TABLE a(x); -- trailing comment; not a statement\n"
        "CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN\n"
        "  INSERT INTO log VALUES ('a; b');\n"
        "  UPDATE log SET n = n + 1;\n"
        "END;\n"
        "INSERT INTO a VALUES ('first line;\n"
        "second; line');\n"
        "/* a block comment; with a semicolon */\n"
        "-- only a comment;\n"
        "INSERT INTO a VALUES ('it''s; fine');\n"
    )
    got = list(split_statements(lines(sql)))
    assert len(got) == 4
    assert got[0].startswith("CREATE TABLE a(x);")
    assert got[1].startswith("CREATE TRIGGER a_ins") and got[1].endswith("END;") and "UPDATE log" in got[1]
    assert got[2] == "INSERT INTO a VALUES ('first line;\nsecond; line');"
    assert got[3].endswith("INSERT INTO a VALUES ('it''s; fine');")
    assert all(sqlite3.complete_statement(s) for s in got)


def test_split_statements_completes_a_last_statement_without_semicolon():
    assert list(split_statements(lines("SELECT 1;\nSELECT 2\n"))) == ["SELECT 1;", "SELECT 2;"]
    assert list(split_statements(lines("-- nothing but a comment\n\n"))) == []


def test_split_statements_separates_statements_sharing_a_line():
    # Hand-written and some tools' dumps put several statements on one line.
    got = list(split_statements(lines("CREATE TABLE t(v); INSERT INTO t VALUES ('a;b');\nSELECT 1;\n")))
    assert got == ["CREATE TABLE t(v);", "INSERT INTO t VALUES ('a;b');", "SELECT 1;"]


# ---- split_values ----------------------------------------------------------------------------


def test_split_values_handles_quotes_blobs_and_nested_parens():
    text = "'a,b', 'it''s (not) a paren', X'00FF', NULL, -1.5e10, abs(-(3)), 'x)', ''); tail"
    values, end = split_values(text)
    assert values == ["'a,b'", "'it''s (not) a paren'", "X'00FF'", "NULL", "-1.5e10", "abs(-(3))", "'x)'", "''"]
    assert text[end:] == "; tail"


def test_split_values_refuses_an_unterminated_list():
    with pytest.raises(ValueError, match="unterminated"):
        split_values("'a', 'b)")


# ---- shorten ---------------------------------------------------------------------------------


def test_shorten_leaves_short_statements_alone():
    stmt = "INSERT INTO t VALUES('x');"
    assert shorten(stmt, lambda t: ["v"]) == [stmt]


LONG_TEXT = "plain 'quoted' text; " * 6_000  # ASCII with quotes (doubled in the literal)
MULTIBYTE = ("é" * 20_000) + ("😀" * 15_000) + ("漢字'" * 8_000)  # 2-, 4-, 3-byte characters and quotes
BLOB = bytes(random.Random(7).randrange(256) for _ in range(130_000)) + b"\x00\x00"  # hex doubles its size


@pytest.mark.parametrize("value", [LONG_TEXT, MULTIBYTE, BLOB], ids=["text", "multibyte", "blob"])
def test_shorten_rebuilds_the_exact_row(value):
    stmt = f"INSERT INTO t VALUES(7,{literal(value)},{literal(0.1)},'small');"
    assert len(stmt.encode()) > MAX_STATEMENT_BYTES
    parts = shorten(stmt, lambda table: ["id", "v", "r", "s"])
    assert len(parts) > 2 and parts[0].startswith("INSERT INTO t VALUES(7,")
    assert_all_under_limit(parts)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v, r REAL, s TEXT)")
    for part in parts:
        conn.execute(part)
    row = conn.execute("SELECT id, v, typeof(v), r, s FROM t").fetchone()
    assert row == (7, value, "blob" if isinstance(value, bytes) else "text", 0.1, "small")


def test_shorten_splits_several_long_values_with_a_column_list():
    text, blob = "t" * 70_000, bytes(range(256)) * 200
    stmt = f'INSERT INTO "odd ""name"""("b","a") VALUES({literal(blob)},{literal(text)});'
    parts = shorten(stmt, lambda table: pytest.fail("the column list is in the statement"))
    assert_all_under_limit(parts)
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE "odd ""name"""(a TEXT, b BLOB)')
    for part in parts:
        conn.execute(part)
    assert conn.execute('SELECT a, b FROM "odd ""name"""').fetchall() == [(text, blob)]


def test_shorten_refuses_what_it_cannot_split():
    with pytest.raises(ValueError, match=r"over D1's 100000-byte limit and is not an INSERT"):
        shorten("UPDATE t SET v = '" + "x" * MAX_STATEMENT_BYTES + "';", lambda t: ["v"])
    with pytest.raises(ValueError, match="single-row"):
        shorten(f"INSERT INTO t VALUES('{'x' * 60_000}'),('{'y' * 60_000}');", lambda t: ["v"])


# ---- prepare_import --------------------------------------------------------------------------


def test_prepare_import_drops_transactions_defers_foreign_keys_and_splits():
    long_text = "ü'" * 40_000
    src = (
        "PRAGMA foreign_keys=OFF;\n"
        "BEGIN TRANSACTION;\n"
        "CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id), body TEXT);\n"
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);\n"
        f"INSERT INTO child VALUES(1,1,{literal(long_text)});\n"  # before its parent, and over the limit
        "INSERT INTO parent VALUES(1);\n"
        "COMMIT;\n"
    )
    out = io.StringIO()
    stats = prepare_import(io.StringIO(src), out)
    text = out.getvalue()
    statements = list(split_statements(lines(text)))
    assert statements[0] == "PRAGMA defer_foreign_keys = true;"
    assert not any(re.match(r"\s*(BEGIN|COMMIT|END)\b", s, re.I) for s in statements)
    assert not any(re.match(r"\s*PRAGMA\s+foreign_keys", s, re.I) for s in statements)
    assert stats["dropped_transaction_control"] == 2 and stats["split"] == 1
    assert stats["statements"] == len(statements) - 1  # all but the PRAGMA it adds
    assert_all_under_limit(statements)
    conn = load(text)
    assert conn.execute("SELECT id, parent_id, body FROM child").fetchall() == [(1, 1, long_text)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


@pytest.mark.parametrize(
    "src",
    [
        "-- dump of t\nBEGIN TRANSACTION;\nCREATE TABLE t(v);\nINSERT INTO t VALUES(1);\n-- end of data\nCOMMIT;\n",
        "CREATE TABLE t(v);\nBEGIN TRANSACTION; INSERT INTO t VALUES(1); COMMIT;\n",
    ],
    ids=["after-a-comment", "sharing-a-line"],
)
def test_prepare_import_drops_transaction_control_wherever_it_sits(src):
    # D1's import refuses BEGIN/COMMIT anywhere, so a dump's comments or layout must not hide them.
    out = io.StringIO()
    stats = prepare_import(io.StringIO(src), out)
    code = re.sub(r"--[^\n]*", "", out.getvalue()).upper()
    assert "BEGIN" not in code and "COMMIT" not in code
    assert stats["dropped_transaction_control"] == 2
    assert load(out.getvalue()).execute("SELECT v FROM t").fetchall() == [(1,)]


def test_prepare_import_raises_on_an_over_long_statement_it_cannot_split():
    src = "CREATE TABLE t(v);\nCREATE VIEW v AS SELECT '" + "x" * MAX_STATEMENT_BYTES + "' AS big;\n"
    with pytest.raises(ValueError, match="not an INSERT"):
        prepare_import(io.StringIO(src), io.StringIO())


# ---- write_logical_dump ----------------------------------------------------------------------

REALS = [0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, float(2**53 + 2), -2.5, 123456789.123456789]


@pytest.fixture
def source() -> sqlite3.Connection:
    """A database with everything a logical dump must carry."""
    rng = random.Random(42)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript("""
        -- the child is declared before its parent, as documents/repos are in PRISM
        CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent(code), note TEXT);
        CREATE TABLE parent(code TEXT PRIMARY KEY, name TEXT NOT NULL, fingerprint BLOB, score REAL);
        CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT);
        CREATE TABLE pairs(k1 TEXT, k2 INTEGER, payload TEXT, PRIMARY KEY (k1, k2)) WITHOUT ROWID;
        CREATE TABLE "odd ""table"" name"(v);
        CREATE VIRTUAL TABLE docs_fts USING fts5(doc_id UNINDEXED, body);
        CREATE INDEX idx_child_parent ON child(parent_id);
        CREATE UNIQUE INDEX idx_parent_name ON parent(name);
    """)
    for i in range(30):
        fp = bytes(rng.randrange(256) for _ in range(32))
        conn.execute(
            "INSERT INTO parent VALUES (?, ?, ?, ?)", (f"p{i:02d}", f"parent {i} 'quoted'", fp, REALS[i % len(REALS)])
        )
    conn.execute("INSERT INTO parent VALUES ('empty', 'no blob', X'', NULL)")
    conn.execute("INSERT INTO parent VALUES ('zeros', 'nul bytes', X'000100FF00', 0.0)")
    for i in range(1, 41):
        conn.execute("INSERT INTO child VALUES (?, ?, ?)", (i * 3, f"p{i % 30:02d}", f"note; {i} ✓"))
    # A row over 100 KB in each kind of table: rowid, WITHOUT ROWID, and a BLOB.
    conn.execute("INSERT INTO child VALUES (1000, 'p01', ?)", ("長い'行" * 30_000,))
    conn.execute(
        "INSERT INTO parent VALUES ('big', 'big blob', ?, 1e-5)", (bytes(rng.randrange(256) for _ in range(120_000)),)
    )
    conn.execute("INSERT INTO pairs VALUES ('a', 1, 'x'), ('a', 2, 'y'), ('b', 1, ?)", ("z" * 150_000,))
    conn.execute('INSERT INTO "odd ""table"" name" VALUES (1), (\'two\'), (NULL)')
    conn.execute('DELETE FROM "odd ""table"" name" WHERE v = 1')  # a gap in its row ids
    for i in range(25):
        conn.execute(
            "INSERT INTO docs_fts(rowid, doc_id, body) VALUES (?, ?, ?)",
            (i * 7 + 1, f"d{i}", f"chunk {i} about {'alpha' if i % 2 else 'beta'} text"),
        )
    conn.execute("DELETE FROM docs_fts WHERE rowid = 8")
    conn.executescript("""
        INSERT INTO audit(what) VALUES ('seeded'), ('checked');
        CREATE TRIGGER parent_audit AFTER INSERT ON parent BEGIN
            INSERT INTO audit(what) VALUES ('parent ' || NEW.code || '; added');
        END;
        CREATE VIEW parent_names AS SELECT name FROM parent;
    """)
    return conn


def test_logical_dump_loads_back_row_for_row(source):
    out = io.StringIO()
    # Small pages, so every table takes several.
    counts = write_logical_dump(
        d1_like_query(source), out, header="test dump\nsecond line", page_bytes=2_000, first_page_rows=7
    )
    dump = out.getvalue()
    statements = list(split_statements(lines(dump)))
    assert dump.startswith("-- test dump\n-- second line\n")
    assert statements[0] == "PRAGMA defer_foreign_keys = true;"  # the header comments come before it
    assert_all_under_limit(statements)
    # Parents before children, whatever the creation order; shadow tables are rebuilt, not dumped.
    assert dump.index('INSERT INTO "parent"') < dump.index('INSERT INTO "child"')
    assert "docs_fts_data" not in dump and "sqlite_sequence" not in dump
    # Triggers come after the rows, so loading does not fire them again.
    assert dump.index("CREATE TRIGGER") > dump.rindex('INSERT INTO "')

    loaded = load(dump)
    assert user_tables(loaded) == user_tables(source)
    for table in user_tables(source):
        assert table_rows(loaded, table) == table_rows(source, table), table
    assert counts == {t: len(table_rows(source, t)) for t in user_tables(source)}
    assert loaded.execute("PRAGMA foreign_key_check").fetchall() == []
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    assert loaded.execute(schema).fetchall() == source.execute(schema).fetchall()
    # The full-text index works, and the trigger still does its job.
    match = "SELECT rowid, doc_id FROM docs_fts WHERE docs_fts MATCH 'alpha' ORDER BY rowid"
    assert loaded.execute(match).fetchall() == source.execute(match).fetchall() != []
    loaded.execute("INSERT INTO parent VALUES ('new', 'new one', NULL, NULL)")
    assert loaded.execute("SELECT what FROM audit ORDER BY id DESC LIMIT 1").fetchone() == ("parent new; added",)


def test_logical_dump_keeps_reals_exact(source):
    out = io.StringIO()
    write_logical_dump(d1_like_query(source), out)
    loaded = load(out.getvalue())
    back = dict(loaded.execute("SELECT code, score FROM parent WHERE code LIKE 'p%'").fetchall())
    assert [back[f"p{i:02d}"] for i in range(len(REALS))] == REALS  # == on floats: bit for bit


def test_logical_dump_needs_no_further_preparation(source):
    out = io.StringIO()
    write_logical_dump(d1_like_query(source), out)
    prepared = io.StringIO()
    stats = prepare_import(io.StringIO(out.getvalue()), prepared)
    assert stats["split"] == 0 and stats["dropped_transaction_control"] == 0
    loaded = load(prepared.getvalue())
    for table in user_tables(source):
        assert table_rows(loaded, table) == table_rows(source, table), table


def test_logical_dump_of_an_empty_database():
    out = io.StringIO()
    assert write_logical_dump(d1_like_query(sqlite3.connect(":memory:")), out) == {}
    assert out.getvalue() == "PRAGMA defer_foreign_keys = true;\n"


# ---- logical dump: pages sized by bytes ------------------------------------------------------


class Recorder:
    """query and query_many over a SQLite connection, counting calls (a batch is one) and keeping the
    rows of every page of table rows."""

    def __init__(self, conn: sqlite3.Connection):
        self.base = d1_like_query(conn)
        self.calls = 0
        self.pages: list[list[dict]] = []

    def query(self, sql, params):
        self.calls += 1
        return self._keep(sql, self.base(sql, params))

    def query_many(self, sqls):
        self.calls += 1
        return [self._keep(sql, self.base(sql, None)) for sql in sqls]

    def _keep(self, sql, rows):
        if "__end" in sql:
            self.pages.append(rows)
        return rows

    def dump(self, **kwargs) -> str:
        out = io.StringIO()
        write_logical_dump(self.query, out, query_many=self.query_many, **kwargs)
        return out.getvalue()


def page_bytes(rows: list[dict]) -> int:
    """The bytes of a page's quoted values, as D1 sends them."""
    return sum(len(v.encode()) for row in rows for k, v in row.items() if k.startswith("q_"))


HOSTILE = [
    "'; DROP TABLE events; --",
    "<script>alert(1)</script>",
    "tab\tnul\x00bell\x07",
    "line\u2028sep ✓ 😀",
    '"dq"',
]


@pytest.fixture
def mixed() -> sqlite3.Connection:
    """Narrow rows, then wide ones, then narrow again: a row count fitted to the first part would make
    a page of the second far too large."""
    rng = random.Random(13)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript("""
        CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT, body TEXT, at TEXT);
        CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
        CREATE TABLE sparse(v);
    """)
    conn.execute("BEGIN")
    dates = ["1999-12-31T23:59:59Z", "2026-12-07T00:00:00Z", "2099-01-01T00:00:00Z"]  # past, present, future
    rows = [(HOSTILE[i % len(HOSTILE)] + str(i), dates[i % 3]) for i in range(12_000)]
    conn.executemany("INSERT INTO events(kind, body, at) VALUES ('n', ?, ?)", rows)
    for i in range(120):  # about 30 KB each once quoted
        body = "".join(rng.choice(["x", "'", "é", "😀", "\x01", HOSTILE[i % len(HOSTILE)]]) for _ in range(6_000))
        conn.execute("INSERT INTO events(kind, body, at) VALUES ('w', ?, ?)", (body, dates[i % 3]))
    conn.executemany("INSERT INTO events(kind, body, at) VALUES ('n', ?, ?)", rows)
    conn.executemany("INSERT INTO kv VALUES (?, ?)", [(f"k{i:05d}", bytes([i % 256])) for i in range(3_000)])
    conn.executemany("INSERT INTO kv VALUES (?, ?)", [(f"w{i:03d}", rng.randbytes(20_000)) for i in range(40)])
    # Row ids past 2**53, where a JSON number (as D1 sends one) is no longer exact.
    conn.executemany(
        "INSERT INTO sparse(rowid, v) VALUES (?, ?)", [(2**53 + i, i) for i in range(1, 40)] + [(-7, "neg")]
    )
    conn.execute("COMMIT")
    return conn


def test_logical_dump_pages_follow_bytes_not_rows(mixed):
    rec = Recorder(mixed)
    dump = rec.dump(page_bytes=400_000)
    rows = sum(len(table_rows(mixed, t)) for t in user_tables(mixed))
    # Fewer calls than 500-row pages would take, even with a target 20 times smaller than the default.
    assert rec.calls <= 25 < rows // 500
    # Every page holds at most the target's bytes, unless it is a single row over it.
    sizes = [(len(p), page_bytes(p)) for p in rec.pages]
    assert all(size <= 400_000 or n == 1 for n, size in sizes), sizes
    # The first page of a table is small; narrow rows then come many to a page.
    assert len(rec.pages[0]) == FIRST_PAGE_ROWS and max(n for n, _ in sizes) > 10 * FIRST_PAGE_ROWS
    loaded = load(dump)
    for table in user_tables(mixed):
        assert table_rows(loaded, table) == table_rows(mixed, table), table
    assert "9007199254740993" in dump  # 2**53 + 1, exact


def test_logical_dump_is_the_same_whatever_the_pages(mixed):
    default = Recorder(mixed)
    reference = default.dump()  # the default target: few, large pages
    rows = sum(len(table_rows(mixed, t)) for t in user_tables(mixed))
    # 27,000 rows (5.5 MB): two calls for the schema, one for the three first pages, one more page for
    # each of the two large tables; 500-row pages took 55 calls for the rows alone.
    assert default.calls == 5 and rows // 500 > 50
    tiny = Recorder(mixed)
    assert tiny.dump(page_bytes=40_000, first_page_rows=3, max_page_rows=700) == reference
    assert len(tiny.pages) > 10 * len(default.pages)
    single_rows = Recorder(mixed)  # rows over the target come alone; no batches
    dump = io.StringIO()
    write_logical_dump(single_rows.query, dump, page_bytes=25_000, batch_statements=1)
    assert dump.getvalue() == reference
    assert any(len(p) == 1 and page_bytes(p) > 25_000 for p in single_rows.pages)


def test_logical_dump_batches_the_schema_and_first_pages():
    # Sixty small tables, 50 statements a batch: one call lists them, three read their foreign keys and
    # columns (120 statements), two bring their first pages, and each fits into its share of a page.
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for i in range(60):
        conn.execute(f'CREATE TABLE "t{i} ""x"""(id INTEGER PRIMARY KEY, v TEXT)')
        conn.executemany(f'INSERT INTO "t{i} ""x"""(v) VALUES (?)', [(h,) for h in HOSTILE])
    rec = Recorder(conn)
    dump = rec.dump()
    assert rec.calls == 1 + 3 + 2
    loaded = load(dump)
    assert {t: table_rows(loaded, t) for t in user_tables(conn)} == {t: table_rows(conn, t) for t in user_tables(conn)}
