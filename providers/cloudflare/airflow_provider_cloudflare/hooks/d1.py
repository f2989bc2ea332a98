"""D1: databases, queries, native and logical export, import, restore from a dump, Time Travel."""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from airflow_provider_cloudflare.artifacts import HashingWriter, hash_stream
from airflow_provider_cloudflare.errors import CloudflareError, CloudflareNotFound, CloudflareTimeout
from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook
from airflow_provider_cloudflare.polling import poll_gaps
from airflow_provider_cloudflare.sqldump import (
    MAX_PAGE_ROWS,
    PAGE_BYTES,
    _topological,
    prepare_import,
    quote_ident,
    write_logical_dump,
)

log = logging.getLogger(__name__)
READ_ONLY_RE = re.compile(
    r"^\s*(SELECT|WITH|EXPLAIN|PRAGMA\s+(quick_check|integrity_check|table_\w+|index_\w+|foreign_key_\w+))\b", re.I
)
CHUNK = 1 << 20
DOWNLOAD_CHUNK = 16 * 1024
# The first gap between polls' starts, doubled after each poll up to poll_interval: prompt while an
# export is young, and a server that answers without holding a poll is not flooded.


class D1ExportUnsupported(CloudflareError):
    """D1's native export refused the database (it has virtual tables such as FTS5)."""


class D1Hook(CloudflareBaseHook):
    """Cloudflare D1 over the REST API.

    Queries bind values as D1 params, never by pasting them into SQL. Exports and imports stream
    through files, so memory stays flat whatever the database size.
    """

    hook_name = "Cloudflare D1"

    def _path(self, database_id: str = "", suffix: str = "") -> str:
        return self.account_path("/d1/database" + (f"/{database_id}" if database_id else "") + suffix)

    # ---- databases ------------------------------------------------------------------------
    def list_databases(self, name: str | None = None) -> list[dict]:
        return list(self.paginate_pages(self._path(), {"name": name} if name else None, per_page=100))

    def get_database(self, database_id: str) -> dict:
        return self.get(self._path(database_id))

    def find_database(self, name: str) -> str:
        """The uuid of the database with exactly this name."""
        for db in self.list_databases(name):
            if db["name"] == name:
                return db["uuid"]
        raise CloudflareNotFound(f"no D1 database named {name!r} in account {self.account_id}")

    def create_database(self, name: str) -> dict:
        return self.call("POST", self._path(), idempotent=False, json_body={"name": name})

    def delete_database(self, database_id: str) -> None:
        self.call("DELETE", self._path(database_id), idempotent=True)

    # ---- queries --------------------------------------------------------------------------
    @staticmethod
    def _params(params) -> list:
        # The API types params as strings; SQLite's column affinity turns them back into numbers.
        return [None if p is None else str(int(p)) if isinstance(p, bool) else str(p) for p in (params or [])]

    @staticmethod
    def _read_only(sqls: list[str]) -> bool:
        return all(READ_ONLY_RE.match(s) for s in sqls)

    def query(
        self, database_id: str, sql: str, params: list | None = None, *, read_only: bool | None = None
    ) -> list[dict]:
        """Run SQL (one or more statements); returns one {results, meta, success} per statement.

        Read-only statements are retried on 5xx and timeouts; writes only on 429.
        """
        body = {"sql": sql, **({"params": self._params(params)} if params else {})}
        idempotent = self._read_only([sql]) if read_only is None else read_only
        return self.call("POST", self._path(database_id, "/query"), idempotent=idempotent, json_body=body)

    def batch(
        self, database_id: str, statements: list[tuple[str, list | None]], *, read_only: bool | None = None
    ) -> list[dict]:
        """Several statements with their own params, in one transaction."""
        body = {"batch": [{"sql": sql, "params": self._params(params)} for sql, params in statements]}
        idempotent = self._read_only([s for s, _ in statements]) if read_only is None else read_only
        return self.call("POST", self._path(database_id, "/query"), idempotent=idempotent, json_body=body)

    def raw(self, database_id: str, sql: str, params: list | None = None) -> list[dict]:
        """Like query, with rows as arrays: [{results: {columns, rows}, meta}]."""
        body = {"sql": sql, **({"params": self._params(params)} if params else {})}
        return self.call("POST", self._path(database_id, "/raw"), idempotent=self._read_only([sql]), json_body=body)

    def rows(self, database_id: str, sql: str, params: list | None = None) -> list[dict]:
        """The rows of the last statement."""
        return self.query(database_id, sql, params)[-1]["results"]

    # ---- native export --------------------------------------------------------------------
    def export_request(self, database_id: str, bookmark: str | None = None, dump_options: dict | None = None) -> dict:
        """One export call: starts an export (no bookmark) or polls it."""
        body: dict[str, Any] = {"output_format": "polling"}
        if bookmark:
            body["current_bookmark"] = bookmark
        if dump_options:
            body["dump_options"] = dump_options
        result = self.call("POST", self._path(database_id, "/export"), idempotent=bool(bookmark), json_body=body)
        return self._checked_operation(database_id, "export", result)

    def export_native(
        self,
        database_id: str,
        dest: str | os.PathLike,
        *,
        dump_options: dict | None = None,
        timeout: float = 3600,
        poll_interval: float = 0.5,
    ) -> dict:
        """D1's own export, polled to completion, then streamed to `dest`.

        Polled as wrangler polls (`_poll_to_completion`): at once, and the download starts the moment
        an answer says the export is complete; `poll_interval` is the longest pause between polls.

        The database is unavailable to other queries while this runs; the time is logged.
        """
        started = time.monotonic()
        result = self.export_request(database_id, dump_options=dump_options)
        bookmark = result["at_bookmark"]
        result = self._poll_to_completion(
            database_id,
            "export",
            result,
            started,
            timeout,
            poll_interval,
            lambda: (
                f"D1 export of {database_id} did not complete within {timeout:.0f} s "
                f"(bookmark {bookmark}); the database stays blocked until Cloudflare cancels it"
            ),
        )
        blocked = time.monotonic() - started
        log.info(
            "D1 export of %s completed at bookmark %s; the database was blocked for %.1f s",
            database_id,
            bookmark,
            blocked,
        )
        size, digest = download(result["result"]["signed_url"], dest)
        return {
            "mode": "native",
            "path": str(dest),
            "bytes": size,
            "sha256": digest,
            "at_bookmark": bookmark,
            "filename": result["result"].get("filename"),
            "blocked_seconds": round(blocked, 3),
        }

    # ---- logical export -------------------------------------------------------------------
    def export_logical(
        self,
        database_id: str,
        dest: str | os.PathLike,
        *,
        page_bytes: int = PAGE_BYTES,
        max_page_rows: int = MAX_PAGE_ROWS,
    ) -> dict:
        """A dump from paged SELECTs: nothing is blocked, virtual tables are included, and it imports back.

        Pages are sized by bytes (sqldump.write_logical_dump): D1 cuts each at `page_bytes` of quoted
        values. Reads go through /raw (column names once per answer, not once per row), the schema and
        the first pages of the tables as batches, so a small database takes a handful of calls.
        """
        bookmark = self.get_bookmark(database_id)
        info = self.get_database(database_id)
        captured = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(dest, "wb") as fh:
            out = HashingWriter(fh)  # writes the dump's text as UTF-8 with "\n" line ends, hashing it
            counts = write_logical_dump(
                lambda sql, params: self.read_rows(database_id, [(sql, params)])[0],
                out,
                header=f"logical D1 dump of {info['name']} ({database_id})\nbookmark at start: {bookmark}\ncaptured: {captured}",
                page_bytes=page_bytes,
                max_page_rows=max_page_rows,
                query_many=lambda sqls: self.read_rows(database_id, [(sql, None) for sql in sqls]),
            )
        return {
            "mode": "logical",
            "path": str(dest),
            "bytes": out.bytes,
            "sha256": out.sha256,
            "at_bookmark": bookmark,
            "tables": counts,
        }

    def read_rows(self, database_id: str, statements: list[tuple[str, list | None]]) -> list[list[dict]]:
        """The rows (as dicts) of each read-only statement, in one /raw call (a batch for several).

        /raw names the columns once per statement instead of once per row, which makes pages of
        narrow rows about half as large as /query's. Retried like any read.
        """
        if len(statements) == 1:
            sql, params = statements[0]
            body: dict[str, Any] = {"sql": sql, **({"params": self._params(params)} if params else {})}
        else:
            body = {"batch": [{"sql": sql, "params": self._params(params)} for sql, params in statements]}
        results = self.call("POST", self._path(database_id, "/raw"), idempotent=True, json_body=body)
        out = []
        for r in results:
            columns = r["results"]["columns"]
            out.append([dict(zip(columns, row)) for row in r["results"]["rows"]])
        return out

    # ---- import ---------------------------------------------------------------------------
    def import_request(self, database_id: str, body: dict) -> dict:
        idempotent = body.get("action") in ("init", "poll")
        result = self.call("POST", self._path(database_id, "/import"), idempotent=idempotent, json_body=body)
        return self._checked_operation(database_id, "import", result)

    # ---- export and import polling: one decision for the sync loops and D1PollTrigger ---------
    @staticmethod
    def poll_body(kind: str, bookmark: str) -> dict:
        """The body that polls a running export or import by its bookmark."""
        if kind == "export":
            return {"output_format": "polling", "current_bookmark": bookmark}
        if kind == "import":
            return {"action": "poll", "current_bookmark": bookmark}
        raise ValueError(f"kind must be 'export' or 'import', not {kind!r}")

    @staticmethod
    def is_complete(result: dict) -> bool:
        return result.get("status") == "complete"

    def poll(self, database_id: str, kind: str, bookmark: str) -> dict:
        """One poll of a running export or import; raises when D1 reports that it failed."""
        body = self.poll_body(kind, bookmark)
        result = self.call("POST", self._path(database_id, f"/{kind}"), idempotent=True, json_body=body)
        return self._checked_operation(database_id, kind, result)

    async def apoll(self, database_id: str, kind: str, bookmark: str) -> dict:
        """`poll` from an event loop."""
        body = self.poll_body(kind, bookmark)
        result = await self.acall("POST", self._path(database_id, f"/{kind}"), idempotent=True, json_body=body)
        return self._checked_operation(database_id, kind, result)

    def _poll_to_completion(
        self,
        database_id: str,
        kind: str,
        result: dict,
        started: float,
        timeout: float,
        poll_interval: float,
        late: Callable[[], str],
    ) -> dict:
        """Poll a running export or import until an answer says it is complete; returns that answer.

        Like wrangler (4.86 `pollExport`): the first poll goes at once, and nothing is sent or slept
        after the complete answer. A server that holds a poll while the work runs (localflare does)
        sets the pace, polls following each other without a pause; only an answer that comes back
        sooner than poll_gaps() allows is followed by one, which keeps a long export from spending
        more than a request per `poll_interval` of the account's budget. `late()` is the timeout's
        message.
        """
        gaps, sent = poll_gaps(poll_interval), started
        while not self.is_complete(result):
            pause = max(0.0, sent + next(gaps) - time.monotonic())
            if time.monotonic() + pause - started > timeout:
                raise CloudflareTimeout(late())
            time.sleep(pause)  # an export nobody polls is cancelled, so poll steadily
            sent = time.monotonic()
            result = self.poll(database_id, kind, result["at_bookmark"])
        return result

    def _checked_operation(self, database_id: str, kind: str, result: dict) -> dict:
        """D1 reports a failed export or import inside HTTP 200: raise it, typed."""
        if result.get("status") == "error" or result.get("success") is False:
            error = result.get("error") or str(result.get("errors") or f"{kind} failed")
            unsupported = kind == "export" and "virtual table" in error.lower()
            cls = D1ExportUnsupported if unsupported else CloudflareError
            raise cls(f"D1 {kind} failed: {error}", path=self._path(database_id, f"/{kind}"), method="POST")
        return result

    def start_import(self, database_id: str, sql_path: str | os.PathLike, *, prepare: bool = True) -> tuple[dict, dict]:
        """Prepare the file (plain or gzip-compressed SQL), upload it and start ingesting. Returns (first
        polling result, preparation stats)."""
        stats: dict = {}
        with tempfile.TemporaryDirectory(prefix="d1-import-") as tmp:
            path = Path(sql_path)
            if prepare:
                prepared = Path(tmp) / "prepared.sql"
                with (
                    _open_sql(path) as src,
                    open(prepared, "w", encoding="utf-8", newline="\n") as dst,
                ):
                    stats = prepare_import(src, dst)
                path = prepared
            elif _gzipped(path):  # D1 ingests plain SQL
                plain = Path(tmp) / "plain.sql"
                with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                path = plain
            etag = _file_digest(path, "md5")
            init = self.import_request(database_id, {"action": "init", "etag": etag})
            if "upload_url" not in init:
                return init, stats  # Cloudflare has this file already and is ingesting it
            with open(path, "rb") as fh:
                put = requests.put(
                    init["upload_url"], data=fh, headers={"Content-Length": str(path.stat().st_size)}, timeout=(10, 600)
                )
            if put.status_code != 200 or put.headers.get("ETag", "").strip('"') != etag:
                raise CloudflareError(
                    f"D1 import upload failed: HTTP {put.status_code}, ETag {put.headers.get('ETag')!r} "
                    f"instead of {etag}",
                    status=put.status_code,
                )
            return self.import_request(
                database_id, {"action": "ingest", "filename": init["filename"], "etag": etag}
            ), stats

    def import_sql(
        self,
        database_id: str,
        sql_path: str | os.PathLike,
        *,
        prepare: bool = True,
        timeout: float = 3600,
        poll_interval: float = 1.0,
    ) -> dict:
        """Import an SQL file (init, upload, ingest, poll). The database is blocked while it runs."""
        started = time.monotonic()
        result, stats = self.start_import(database_id, sql_path, prepare=prepare)
        result = self._poll_to_completion(
            database_id,
            "import",
            result,
            started,
            timeout,
            poll_interval,
            lambda: f"D1 import into {database_id} did not complete within {timeout:.0f} s",
        )
        return {
            **result.get("result", {}),
            "at_bookmark": result["at_bookmark"],
            "prepared": stats,
            "seconds": round(time.monotonic() - started, 3),
        }

    # ---- restore from a dump --------------------------------------------------------------
    def user_tables(self, database_id: str) -> list[tuple[str, str]]:
        """(name, type) of the tables a dump holds, type "table" or "virtual": no SQLite or Cloudflare
        internals, no FTS shadow tables (their virtual table owns them)."""
        return [
            (r["name"], r["type"])
            for r in self.rows(database_id, "PRAGMA table_list")
            if r["schema"] == "main"
            and r["type"] in ("table", "virtual")
            and not r["name"].startswith(("sqlite_", "_cf_"))
        ]

    def drop_user_tables(self, database_id: str) -> list[str]:
        """Drop every view and user table (their indexes and triggers go with them), children before
        parents, in one request with foreign keys deferred. Returns the tables in the order dropped."""
        tables = self.user_tables(database_id)
        views = [r["name"] for r in self.rows(database_id, "SELECT name FROM sqlite_master WHERE type = 'view'")]
        parents = {
            name: {r["table"] for r in self.rows(database_id, f"PRAGMA foreign_key_list({quote_ident(name)})")}
            for name, kind in tables
            if kind == "table"
        }
        virtual = [n for n, k in tables if k == "virtual"]  # first: a virtual table drops its shadow tables itself
        order = virtual + [n for n in reversed(_topological([n for n, _ in tables], parents)) if n not in virtual]
        statements = ["PRAGMA defer_foreign_keys = true"] + [f"DROP VIEW IF EXISTS {quote_ident(v)}" for v in views]
        statements += [f"DROP TABLE IF EXISTS {quote_ident(t)}" for t in order]
        if len(statements) > 1:
            self.query(database_id, ";\n".join(statements) + ";", read_only=False)
        return order

    def restore_dump(
        self,
        database_id: str,
        dump_path: str | os.PathLike,
        *,
        replace: bool = False,
        timeout: float = 3600,
        poll_interval: float = 1.0,
    ) -> dict:
        """Load an SQL dump (plain or gzip-compressed) through the import flow of import_sql: statements
        over D1's limit split, transaction control dropped, polled to the end.

        replace=True first drops every table and view (drop_user_tables), so the database ends as the
        dump has it: a restore in place. Without it the database should be empty (a new one). Returns
        import_sql's result with `dropped_tables`.
        """
        dropped = self.drop_user_tables(database_id) if replace else []
        result = self.import_sql(database_id, dump_path, timeout=timeout, poll_interval=poll_interval)
        log.info(
            "D1 dump %s restored into %s at bookmark %s in %.1f s (%d tables dropped first, %s statements split)",
            Path(dump_path).name,
            database_id,
            result["at_bookmark"],
            result["seconds"],
            len(dropped),
            result["prepared"].get("split", 0),
        )
        return {**result, "dropped_tables": dropped}

    # ---- Time Travel ----------------------------------------------------------------------
    def get_bookmark(self, database_id: str, timestamp: str | datetime | None = None) -> str:
        params = {"timestamp": _iso(timestamp)} if timestamp else None
        return self.get(self._path(database_id, "/time_travel/bookmark"), params)["bookmark"]

    def restore(
        self, database_id: str, *, bookmark: str | None = None, timestamp: str | datetime | None = None
    ) -> dict:
        """Restore in place; the result's previous_bookmark undoes it."""
        if bool(bookmark) == bool(timestamp):
            raise ValueError("restore needs exactly one of bookmark or timestamp")
        params = {"bookmark": bookmark} if bookmark else {"timestamp": _iso(timestamp)}
        return self.call("POST", self._path(database_id, "/time_travel/restore"), idempotent=False, params=params)


def _iso(value: str | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return value


def _gzipped(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_sql(path: Path):
    """An SQL file as text, gzip-compressed or not."""
    return gzip.open(path, "rt", encoding="utf-8") if _gzipped(path) else open(path, encoding="utf-8")


def _file_digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as fh:
        return hash_stream(fh, algorithm=algorithm)[0]


def download(url: str, dest: str | os.PathLike, *, max_resumes: int = 5, timeout=(10, 120)) -> tuple[int, str]:
    """Stream a presigned URL to a file, resuming with Range after a dropped connection.

    No Cloudflare credentials go to the presigned URL. A body shorter than announced is never
    passed off as whole: it resumes, or fails loudly and leaves no file. Returns (bytes, sha256).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    total, attempts = None, 0
    try:
        with open(part, "wb") as fh:
            out = HashingWriter(fh)
            while True:
                headers = {"Range": f"bytes={out.bytes}-"} if out.bytes else {}
                try:
                    with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
                        if resp.status_code not in (200, 206):
                            raise CloudflareError(
                                f"download of the export failed: HTTP {resp.status_code} {resp.text[:200]}",
                                status=resp.status_code,
                            )
                        if out.bytes and resp.status_code == 200:  # the server ignored Range: start over
                            fh.seek(0)
                            fh.truncate()
                            out = HashingWriter(fh)
                        if total is None:
                            total = _total_size(resp)
                        # Small reads: what arrived before a drop is kept, and the resume starts there.
                        for chunk in resp.iter_content(DOWNLOAD_CHUNK):
                            out.write(chunk)
                    if total is None or out.bytes == total:
                        break
                    raise requests.exceptions.ChunkedEncodingError(f"got {out.bytes} of {total} bytes")
                except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
                    attempts += 1
                    if attempts > max_resumes:
                        raise CloudflareError(
                            f"download of the export broke {attempts} times; got {out.bytes} of {total} bytes "
                            f"({type(exc).__name__})"
                        ) from None
                    log.warning("export download dropped at %d of %s bytes; resuming", out.bytes, total)
        os.replace(part, dest)
        return out.bytes, out.sha256
    finally:
        part.unlink(missing_ok=True)


def _total_size(resp: requests.Response) -> int | None:
    rng = resp.headers.get("Content-Range")
    if rng and "/" in rng:
        tail = rng.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None
