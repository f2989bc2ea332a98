"""SQL dumps that import back into D1.

D1's own export fails on virtual (FTS5) tables, blocks the database, orders rows so foreign keys
break, and writes statements longer than the 100 KB D1 accepts. This module

* writes a **logical dump** from paged SELECTs (nothing is blocked; virtual tables included, their
  shadow tables left out; parents before children; values through ``quote()`` so text, numbers and
  BLOBs round-trip exactly; row ids kept; pages sized by bytes, cut by the database itself), and
* **prepares any dump for import**: splits every statement over the limit into an INSERT plus
  UPDATEs that append the rest of the long values, and defers foreign keys.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

MAX_STATEMENT_BYTES = 100_000
CHUNK_BYTES = 60_000  # room for the UPDATE around each appended piece

_INSERT_RE = re.compile(r'^\s*INSERT\s+INTO\s+("(?:[^"]|"")+"|\w+)\s*(\(([^)]*)\))?\s*VALUES\s*\(', re.I | re.S)
_TXN_RE = re.compile(
    r"^\s*(BEGIN(\s+\w+)?(\s+TRANSACTION)?|COMMIT(\s+TRANSACTION)?|END(\s+TRANSACTION)?)\s*;?\s*$", re.I
)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def unquote_ident(name: str) -> str:
    name = name.strip()
    if name[:1] in '"`[' and len(name) > 1:
        return name[1:-1].replace('""', '"')
    return name


_INSERT_TABLE_RE = re.compile(r'^\s*INSERT\s+INTO\s+("(?:[^"]|"")+"|\w+)', re.I)


def inserted_table(stmt: str) -> str | None:
    """The table an INSERT statement fills (None for any other statement): a dump's row count."""
    m = _INSERT_TABLE_RE.match(stmt)
    return unquote_ident(m.group(1)) if m else None


# ---- statement splitting -------------------------------------------------------------------


def split_statements(lines: Iterable[str]) -> Iterator[str]:
    """Stream complete SQL statements from text lines (SQLite decides where a statement ends)."""
    buf = ""
    for line in lines:
        buf += line
        start = 0
        while (semi := buf.find(";", start)) >= 0:
            if sqlite3.complete_statement(buf[: semi + 1]):
                stmt = _LEADING_COMMENTS.sub("", buf[: semi + 1]).strip()
                buf = buf[semi + 1 :]
                start = 0
                if not _only_comments(stmt):
                    yield stmt
            else:
                start = semi + 1
    if not _only_comments(buf):
        tail = _LEADING_COMMENTS.sub("", buf).strip()
        yield tail if tail.endswith(";") else tail + ";"


_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))+", re.S)


def strip_comments(stmt: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.S).strip()


def _only_comments(stmt: str) -> bool:
    return not strip_comments(stmt).strip(";").strip()


def split_values(text: str) -> tuple[list[str], int]:
    """Split the literal list after `VALUES(`: returns the literals and the index after `)`."""
    values, i, start, depth = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i += 1
            while i < len(text):
                if text[i] == "'":
                    if i + 1 < len(text) and text[i + 1] == "'":
                        i += 2
                        continue
                    break
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                values.append(text[start:i].strip())
                return values, i + 1
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
        i += 1
    raise ValueError("unterminated VALUES list")


def _literal_chunks(literal: str, budget: int) -> tuple[str, str, list[str]] | None:
    """For a long text or BLOB literal: (empty literal, SQL to append a piece, pieces)."""
    if literal.startswith("'") and literal.endswith("'"):
        value = literal[1:-1].replace("''", "'")
        pieces, piece, size = [], [], 0
        for ch in value:
            n = len(ch.encode()) + (1 if ch == "'" else 0)
            if size + n > budget and piece:
                pieces.append("".join(piece))
                piece, size = [], 0
            piece.append(ch)
            size += n
        pieces.append("".join(piece))
        return "''", "{col} || {piece}", ["'" + p.replace("'", "''") + "'" for p in pieces]
    if literal[:2].upper() == "X'" and literal.endswith("'"):
        hexes = literal[2:-1]
        step = budget - budget % 2
        return (
            "X''",
            "CAST({col} || {piece} AS BLOB)",
            [f"X'{hexes[i : i + step]}'" for i in range(0, len(hexes), step)],
        )
    return None


def shorten(
    stmt: str,
    columns_of: Callable[[str], list[str]],
    limit: int = MAX_STATEMENT_BYTES,
    where: str = "rowid = last_insert_rowid()",
) -> list[str]:
    """Rewrite one over-long INSERT into an INSERT and UPDATEs that are each under `limit` bytes."""
    if len(stmt.encode()) <= limit:
        return [stmt]
    m = _INSERT_RE.match(stmt)
    if not m:
        raise ValueError(
            f"a statement of {len(stmt.encode())} bytes is over D1's {limit}-byte limit and is not an INSERT: {stmt[:80]}..."
        )
    table = m.group(1)
    values, end = split_values(stmt[m.end() :])
    if stmt[m.end() + end :].strip().rstrip(";").strip():
        raise ValueError(f"only single-row INSERTs can be split (table {table})")
    columns = [unquote_ident(c) for c in m.group(3).split(",")] if m.group(3) else columns_of(unquote_ident(table))
    if len(columns) != len(values):
        raise ValueError(f"INSERT into {table} has {len(values)} values for {len(columns)} columns")
    appends = []
    # The longest values move to UPDATEs that append them piece by piece, until the INSERT fits.
    for k in sorted(range(len(values)), key=lambda k: len(values[k]), reverse=True):
        if len(_insert(m, values).encode()) <= limit:
            break
        chunks = _literal_chunks(values[k], CHUNK_BYTES)
        if chunks is None:
            raise ValueError(f"value of {table}.{columns[k]} is too long to split")
        empty, expr, pieces = chunks
        values[k] = empty
        col = quote_ident(columns[k])
        appends += [f"UPDATE {table} SET {col} = {expr.format(col=col, piece=p)} WHERE {where};" for p in pieces]
    first = _insert(m, values)
    if len(first.encode()) > limit:
        raise ValueError(f"INSERT into {table} stays over {limit} bytes after splitting")
    return [first, *appends]


def _insert(m: re.Match, values: list[str]) -> str:
    return f"{m.group(0)}{','.join(values)});"


class SchemaTracker:
    """Learns table columns from the CREATE statements a dump contains (an in-memory SQLite)."""

    def __init__(self):
        self.conn = sqlite3.connect(":memory:")

    def feed(self, stmt: str) -> None:
        head = stmt.lstrip()[:40].upper()
        if head.startswith("CREATE TABLE") or head.startswith("CREATE VIRTUAL TABLE") or head.startswith("ALTER TABLE"):
            try:
                self.conn.execute(stmt)
            except sqlite3.Error:
                pass  # a module SQLite lacks here; its INSERTs must then carry a column list

    def columns(self, table: str) -> list[str]:
        cols = [r[1] for r in self.conn.execute(f"PRAGMA table_info({quote_ident(table)})")]
        if not cols:
            raise ValueError(f"no CREATE TABLE for {table} before its rows: cannot split its long INSERTs")
        return cols


def prepare_import(src: TextIO, dst: TextIO, limit: int = MAX_STATEMENT_BYTES) -> dict:
    """Copy a dump into a form D1's import accepts. Returns counts of what it changed."""
    schema = SchemaTracker()
    stats = {"statements": 0, "split": 0, "dropped_transaction_control": 0}
    dst.write("PRAGMA defer_foreign_keys = true;\n")
    for stmt in split_statements(src):
        bare = strip_comments(stmt)
        if _TXN_RE.match(bare):
            stats["dropped_transaction_control"] += 1
            continue
        if re.match(r"^\s*PRAGMA\s+(defer_)?foreign_keys", bare, re.I):
            continue
        schema.feed(stmt)
        parts = shorten(stmt, schema.columns, limit)
        stats["split"] += len(parts) > 1
        for part in parts:
            dst.write(part.rstrip(";") + ";\n")
            stats["statements"] += 1
    return stats


# ---- logical dump --------------------------------------------------------------------------

# Pages are sized by bytes, not rows. D1 answers at most 50 MB per query (D1 limits page; reference
# cloudflare-api.md 2.8), and JSON can make a quoted value up to 6 times longer (a control character
# becomes \u00XX), so 8 MB of quoted values per page stays under it whatever they hold. A row over the
# target (at most 2 MB, 4 MB quoted as hex) comes alone.
PAGE_BYTES = 8_000_000
# A table's first page, before its row size is known: the old fixed page, so never more work for D1
# than before. Later pages take as many rows as the bytes seen per row fit into PAGE_BYTES.
FIRST_PAGE_ROWS = 500
# Rows per page at most, for very narrow rows: each value costs the worker a Python object, and D1
# reads (and bills) every row a page scans.
MAX_PAGE_ROWS = 100_000
# Statements per batch call (schema reads, first pages): D1's smallest documented queries-per-
# invocation limit (50, Workers Free); a cap for REST batches is not documented.
BATCH_STATEMENTS = 50

_TABLE_LIST = "PRAGMA table_list"
_OBJECTS = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
    "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY rowid"
)
_NON_FINITE = {"Inf": "1e999", "-Inf": "-1e999"}  # SQLite quotes infinite REALs as Inf, which does not parse back


def _topological(tables: list[str], parents: dict[str, set[str]]) -> list[str]:
    """Parents before children; tables in a cycle keep their original order."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(t: str) -> None:
        if t in done or t in visiting:
            return
        visiting.add(t)
        for p in sorted(parents.get(t, ())):
            if p in tables:
                visit(p)
        visiting.discard(t)
        done.append(t)

    for t in tables:
        visit(t)
    return done


def write_logical_dump(
    query: Callable[[str, list | None], list[dict]],
    out: TextIO,
    *,
    header: str = "",
    page_bytes: int = PAGE_BYTES,
    first_page_rows: int = FIRST_PAGE_ROWS,
    max_page_rows: int = MAX_PAGE_ROWS,
    limit: int = MAX_STATEMENT_BYTES,
    query_many: Callable[[list[str]], list[list[dict]]] | None = None,
    batch_statements: int = BATCH_STATEMENTS,
) -> dict:
    """Write a dump of the database `query` reaches (query(sql, params) -> rows as dicts).

    Pages are cut by the database at `page_bytes` of quoted values (a longer row comes alone), and
    rows per page follow the bytes per row seen. `query_many(sqls)` returns the rows of each of several
    statements in one call (D1's batch): the schema of up to 25 tables takes two calls, and the first
    pages of up to `batch_statements` tables one more; without it, each statement is a query.

    Returns {table: rows written}. Statements are all under `limit` bytes.
    """

    def many(sqls: list[str]) -> list[list[dict]]:
        results: list[list[dict]] = []
        for i in range(0, len(sqls), batch_statements):
            chunk = sqls[i : i + batch_statements]
            results += query_many(chunk) if query_many else [query(sql, None) for sql in chunk]
        return results

    table_list, objects = many([_TABLE_LIST, _OBJECTS])
    listing = {r["name"]: r["type"] for r in table_list if r["schema"] == "main"}
    tables = [o for o in objects if o["type"] == "table" and listing.get(o["name"]) in ("table", "virtual")]
    by_name = {t["name"]: t for t in tables}
    rebuilt = {n for n, t in by_name.items() if listing[n] == "virtual" and re.search(r"content\s*=", t["sql"], re.I)}
    wanted = []  # foreign keys and columns of every table, batched
    for name in by_name:
        if listing[name] == "table":
            wanted.append(("parents", name, f"PRAGMA foreign_key_list({quote_ident(name)})"))
        if name not in rebuilt:
            wanted.append(("columns", name, f"PRAGMA table_xinfo({quote_ident(name)})"))
    parents: dict[str, set[str]] = {}
    columns: dict[str, list[dict]] = {}
    for (what, name, _), rows in zip(wanted, many([sql for _, _, sql in wanted])):
        if what == "parents":
            parents[name] = {r["table"] for r in rows}
        else:
            columns[name] = rows
    order = _topological(list(by_name), parents)
    if header:
        out.write("".join(f"-- {line}\n" for line in header.splitlines()))
    out.write("PRAGMA defer_foreign_keys = true;\n")
    for name in order:
        out.write(by_name[name]["sql"].rstrip(";") + ";\n")
    counts = {}
    for i in range(0, len(order), batch_statements):
        names = order[i : i + batch_statements]
        pagers = {
            n: _TablePages(n, by_name[n]["sql"], columns[n], page_bytes, first_page_rows, max_page_rows, limit)
            for n in names
            if n not in rebuilt
        }
        # The first pages of these tables in one call, sharing one page's bytes; small tables end there.
        share = max(1, page_bytes // max(1, len(pagers)))
        firsts = dict(zip(pagers, many([p.sql(share)[0] for p in pagers.values()])))
        for name in names:
            if name in rebuilt:
                ident = quote_ident(name)
                out.write(f"INSERT INTO {ident}({ident}) VALUES('rebuild');\n")  # external content: rebuild the index
                counts[name] = 0
                continue
            pager = pagers[name]
            pager.write(firsts[name], out)
            while not pager.done:
                sql, params = pager.sql()
                pager.write(query(sql, params), out)
            counts[name] = pager.count
    for o in objects:
        if o["type"] in ("index", "trigger", "view"):
            out.write(o["sql"].rstrip(";") + ";\n")
    return counts


class _TablePages:
    """One table's rows, page by page: by row id (keyset), or by primary key with OFFSET for a WITHOUT
    ROWID table. The database cuts each page at `page_bytes` of quoted values with a running sum, so a
    page never outgrows the target whatever the rows hold; its row count only bounds the scan."""

    def __init__(
        self, table: str, create_sql: str, info: list[dict], page_bytes: int, first_rows: int, max_rows: int, limit: int
    ):
        self.ident = quote_ident(table)
        self.page_bytes = page_bytes
        self.max_rows = max_rows
        self.limit = limit
        self.columns = [c["name"] for c in info if not c.get("hidden")]
        self.pk = [c["name"] for c in sorted(info, key=lambda c: c["pk"]) if c["pk"]]
        self.without_rowid = bool(re.search(r"WITHOUT\s+ROWID", create_sql, re.I))
        rowid_alias = (
            len(self.pk) == 1 and next(c for c in info if c["name"] == self.pk[0])["type"].upper() == "INTEGER"
        )
        self.keep_rowid = not self.without_rowid and not rowid_alias  # keep row ids (FTS5 maps them to content)
        self.keys = ["q_" + c for c in self.columns]  # each value comes quoted, as q_<column>
        self.quoted = [quote_ident(k) for k in self.keys]
        insert_cols = (["rowid"] if self.keep_rowid else []) + [quote_ident(c) for c in self.columns]
        self.head = f"INSERT INTO {self.ident}({','.join(insert_cols)}) VALUES("
        self.rows = max(1, min(first_rows, max_rows))
        self.last: str | None = None  # the last row id written, as text (exact beyond 2**53)
        self.offset = 0
        self.count = 0
        self.done = False

    def sql(self, page_bytes: int | None = None) -> tuple[str, list | None]:
        """The next page's SELECT and its params."""
        values = ", ".join(f"quote({quote_ident(c)}) AS {q}" for c, q in zip(self.columns, self.quoted))
        if self.without_rowid:
            keys = [f"__k{i}" for i in range(len(self.pk))]
            order = ", ".join(quote_ident(c) for c in self.pk)
            pk_cols = ", ".join(f"{quote_ident(c)} AS {k}" for c, k in zip(self.pk, keys))
            inner = (
                f"SELECT {pk_cols}, {values} FROM {self.ident} ORDER BY {order} LIMIT {self.rows} OFFSET {self.offset}"
            )
            by, picked, params = ", ".join(keys), "", None
        else:
            where = "" if self.last is None else " WHERE rowid > ?"
            inner = (
                f"SELECT rowid AS __r, CAST(rowid AS TEXT) AS __rowid, {values} "
                f"FROM {self.ident}{where} ORDER BY rowid LIMIT {self.rows}"
            )
            by, picked, params = "__r", "__rowid, ", None if self.last is None else [self.last]
        size = " + ".join(f"length(CAST({q} AS BLOB))" for q in self.quoted)
        sql = (
            f"SELECT {picked}{', '.join(self.quoted)}, __end, __i, __next FROM ("
            "SELECT *, sum(__len) OVER __w AS __end, row_number() OVER __w AS __i, lead(__len) OVER __w AS __next "
            f"FROM (SELECT *, {size} AS __len FROM ({inner})) WINDOW __w AS (ORDER BY {by} ROWS UNBOUNDED PRECEDING)"
            f") WHERE __end <= {page_bytes or self.page_bytes} OR __i = 1 ORDER BY __i"
        )
        return sql, params

    def write(self, rows: list[dict], out: TextIO) -> None:
        """Write a page's INSERTs (one write per page) and choose the next page's size."""
        if not rows:
            self.done = True
            return
        lines = []
        for row in rows:
            literals = [_NON_FINITE.get(row[k], row[k]) for k in self.keys]
            if self.keep_rowid:
                literals.insert(0, str(row["__rowid"]))
            stmt = self.head + ",".join(literals) + ");"
            if len(stmt) * 4 <= self.limit:  # under the limit however many bytes each character takes
                lines.append(stmt + "\n")
            else:
                lines.extend(part + "\n" for part in shorten(stmt, lambda _t: [], self.limit, where=self._where(row)))
        out.write("".join(lines))
        self.count += len(rows)
        last = rows[-1]
        if self.without_rowid:
            self.offset += len(rows)
        else:
            self.last = str(last["__rowid"])
        # Done when the scan ended inside this page: nothing was cut after the last row, and fewer
        # rows came than asked for.
        self.done = last["__next"] is None and last["__i"] < self.rows
        per_row = max(1.0, last["__end"] / len(rows))
        self.rows = max(1, min(self.max_rows, int(self.page_bytes / per_row)))

    def _where(self, row: dict) -> str:
        """The row's key, for the UPDATEs that append the rest of its long values."""
        if not self.without_rowid:
            return f"rowid = {row['__rowid']}"
        return " AND ".join(f"{quote_ident(c)} = {row['q_' + c]}" for c in self.pk)
