"""SQL text helpers: statement splitting and dump literals, the way D1's own tooling does them."""

from __future__ import annotations

import re
import sqlite3

_TXN_RE = re.compile(
    r"^\s*(BEGIN(\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(\s+TRANSACTION)?|COMMIT(\s+TRANSACTION)?|END(\s+TRANSACTION)?)\s*;?\s*$",
    re.I,
)
_COMMENT_RE = re.compile(r"(--[^\n]*(\n|$))|(/\*.*?\*/)", re.S)


def split_statements(sql: str) -> list[str]:
    """Split on ';' outside strings, comments and trigger bodies (SQLite decides what is complete)."""
    out: list[str] = []
    start = 0
    pos = 0
    while True:
        semi = sql.find(";", pos)
        if semi < 0:
            break
        candidate = sql[start : semi + 1]
        if sqlite3.complete_statement(candidate):
            _append(out, candidate)
            start = semi + 1
        pos = semi + 1
    _append(out, sql[start:])
    return out


def _append(out: list[str], stmt: str) -> None:
    stmt = stmt.strip()
    if _COMMENT_RE.sub("", stmt).strip().strip(";").strip():
        out.append(stmt)


def is_transaction_control(stmt: str) -> bool:
    return bool(_TXN_RE.match(_COMMENT_RE.sub("", stmt)))


def literal(value) -> str:
    """A value as an SQL literal, as in a SQLite .dump."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NULL"
        if value in (float("inf"), float("-inf")):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex().upper() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
