"""SQL dumps that import back into D1.

D1's own export fails on virtual (FTS5) tables, blocks the database, orders rows so foreign keys
break, and writes statements longer than the 100 KB D1 accepts. This module

* writes a **logical dump** from paged SELECTs (nothing is blocked; virtual tables included, their
  shadow tables left out; parents before children; values through ``quote()`` so text, numbers and
  BLOBs round-trip exactly; row ids kept), and
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
PAGE_ROWS = 500

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
    page_rows: int = PAGE_ROWS,
    limit: int = MAX_STATEMENT_BYTES,
) -> dict:
    """Write a dump of the database `query` reaches (query(sql, params) -> rows as dicts).

    Returns {table: rows written}. Statements are all under `limit` bytes.
    """
    listing = {r["name"]: r["type"] for r in query("PRAGMA table_list", None) if r["schema"] == "main"}
    objects = query(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY rowid",
        None,
    )
    tables = [o for o in objects if o["type"] == "table" and listing.get(o["name"]) in ("table", "virtual")]
    parents = {}
    for t in tables:
        if listing[t["name"]] == "table":
            parents[t["name"]] = {r["table"] for r in query(f"PRAGMA foreign_key_list({quote_ident(t['name'])})", None)}
    order = _topological([t["name"] for t in tables], parents)
    by_name = {t["name"]: t for t in tables}
    if header:
        out.write("".join(f"-- {line}\n" for line in header.splitlines()))
    out.write("PRAGMA defer_foreign_keys = true;\n")
    for name in order:
        out.write(by_name[name]["sql"].rstrip(";") + ";\n")
    counts = {}
    for name in order:
        counts[name] = _dump_rows(query, out, name, by_name[name]["sql"], listing[name] == "virtual", page_rows, limit)
    for o in objects:
        if o["type"] in ("index", "trigger", "view"):
            out.write(o["sql"].rstrip(";") + ";\n")
    return counts


def _dump_rows(query, out: TextIO, table: str, create_sql: str, virtual: bool, page_rows: int, limit: int) -> int:
    ident = quote_ident(table)
    if virtual and re.search(r"content\s*=", create_sql, re.I):
        out.write(f"INSERT INTO {ident}({ident}) VALUES('rebuild');\n")  # external content: rebuild the index
        return 0
    info = query(f"PRAGMA table_xinfo({ident})", None)
    columns = [c["name"] for c in info if not c.get("hidden")]
    pk = [c["name"] for c in sorted(info, key=lambda c: c["pk"]) if c["pk"]]
    without_rowid = bool(re.search(r"WITHOUT\s+ROWID", create_sql, re.I))
    rowid_alias = len(pk) == 1 and next(c for c in info if c["name"] == pk[0])["type"].upper() == "INTEGER"
    keep_rowid = not without_rowid and not rowid_alias  # keep row ids (FTS5 maps them to content)
    cols_sql = ", ".join(f"quote({quote_ident(c)}) AS {quote_ident('q_' + c)}" for c in columns)
    insert_cols = (["rowid"] if keep_rowid else []) + [quote_ident(c) for c in columns]
    head = f"INSERT INTO {ident}({','.join(insert_cols)}) VALUES("
    count = 0
    last = None
    offset = 0
    while True:
        if without_rowid:
            order = ", ".join(quote_ident(c) for c in pk)
            rows = query(f"SELECT {cols_sql} FROM {ident} ORDER BY {order} LIMIT {page_rows} OFFSET {offset}", None)
            offset += len(rows)
        else:
            where = "" if last is None else " WHERE rowid > ?"
            rows = query(
                f"SELECT rowid AS __rowid, {cols_sql} FROM {ident}{where} ORDER BY rowid LIMIT {page_rows}",
                None if last is None else [str(last)],
            )
        for row in rows:
            # SQLite quotes infinite REALs as Inf, which does not parse back; 1e999 does.
            literals = [{"Inf": "1e999", "-Inf": "-1e999"}.get(row["q_" + c], row["q_" + c]) for c in columns]
            if keep_rowid:
                literals.insert(0, str(row["__rowid"]))
            stmt = head + ",".join(literals) + ");"
            where = (
                f"rowid = {row['__rowid']}"
                if not without_rowid
                else " AND ".join(f"{quote_ident(c)} = {row['q_' + c]}" for c in pk)
            )
            for part in shorten(stmt, lambda _t: [], limit, where=where):
                out.write(part + "\n")
            count += 1
        if len(rows) < page_rows:
            return count
        if not without_rowid:
            last = rows[-1]["__rowid"]
