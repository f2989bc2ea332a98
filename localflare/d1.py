"""D1: databases as real SQLite files, with query/raw, export, import and Time Travel."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid as uuidlib
from datetime import datetime, timezone
from pathlib import Path

from .core import CFError, Req, ok
from .sqltext import is_transaction_control, literal, quote_ident, split_statements

MAX_STATEMENT_BYTES = 100_000
MAX_BOUND_PARAMS = 100
BUSY_EXPORT = "D1_ERROR: Currently processing a long-running export"
BUSY_IMPORT = "D1_ERROR: Currently processing a long-running import"
# PRAGMAs D1 documents as allowed (plus optimize, added later).
ALLOWED_PRAGMAS = {
    "table_list",
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "quick_check",
    "foreign_key_check",
    "foreign_key_list",
    "case_sensitive_like",
    "ignore_check_constraints",
    "legacy_alter_table",
    "recursive_triggers",
    "reverse_unordered_selects",
    "foreign_keys",
    "defer_foreign_keys",
    "optimize",
    "data_version",  # FTS5 reads it internally; FTS5 tables work on D1
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RESTORES_PER_WINDOW = 10
RESTORE_WINDOW_S = 600


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> float:
    try:
        if value.isdigit():
            return float(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise CFError(400, 7400, f"Invalid timestamp {value!r}: expected RFC 3339 or unix seconds") from None


def sql_error(exc: sqlite3.Error) -> CFError:
    name = getattr(exc, "sqlite_errorname", None) or "SQLITE_ERROR"
    return CFError(400, 7500, f"{exc}: {name}")


def _authorizer(action, arg1, arg2, dbname, source):
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in ALLOWED_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class Job:
    def __init__(self, kind: str, db_uuid: str, at_bookmark: str):
        self.kind = kind
        self.db_uuid = db_uuid
        self.at_bookmark = at_bookmark
        self.status = "active"
        self.messages: list[str] = []
        self.error: str | None = None
        self.result: dict | None = None
        self.last_poll = time.monotonic()
        self.done = threading.Event()

    def drain_messages(self) -> list[str]:
        msgs, self.messages = self.messages, []
        return msgs


class D1:
    def __init__(self, cfg, faults, signer):
        self.cfg = cfg
        self.faults = faults
        self.signer = signer
        self.root = Path(cfg.data_dir) / "d1"
        (self.root / "exports").mkdir(parents=True, exist_ok=True)
        (self.root / "imports").mkdir(parents=True, exist_ok=True)
        self._reg_lock = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        self._busy: dict[str, str] = {}
        self._jobs: dict[tuple[str, str], Job] = {}
        self._restores: dict[str, list[float]] = {}
        with self._registry() as reg:
            reg.executescript(
                """
                CREATE TABLE IF NOT EXISTS databases(uuid TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL,
                    created_at REAL NOT NULL, version TEXT NOT NULL DEFAULT 'production');
                CREATE TABLE IF NOT EXISTS bookmarks(db_uuid TEXT NOT NULL, seq INTEGER NOT NULL,
                    ts REAL NOT NULL, bookmark TEXT NOT NULL, PRIMARY KEY(db_uuid, seq));
                """
            )

    # ---- plumbing -------------------------------------------------------------------------
    def _registry(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.root / "_registry.sqlite", timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def db_path(self, db_uuid: str) -> Path:
        return self.root / f"{db_uuid}.sqlite"

    def _tt_dir(self, db_uuid: str) -> Path:
        return self.root / "timetravel" / db_uuid

    def lock(self, db_uuid: str) -> threading.RLock:
        with self._reg_lock:
            return self._locks.setdefault(db_uuid, threading.RLock())

    def connect(self, db_uuid: str, *, user: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path(db_uuid), timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")  # D1 enforces foreign keys
        if user:
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, MAX_BOUND_PARAMS)
            conn.set_authorizer(_authorizer)
        return conn

    def get_row(self, db_uuid: str) -> sqlite3.Row:
        with self._registry() as reg:
            row = reg.execute("SELECT * FROM databases WHERE uuid = ?", (db_uuid,)).fetchone()
        if row is None or not self.db_path(db_uuid).exists():
            raise CFError(404, 7404, f"The database {db_uuid} could not be found")
        return row

    def find_by_name(self, name: str) -> str | None:
        with self._registry() as reg:
            row = reg.execute("SELECT uuid FROM databases WHERE name = ?", (name,)).fetchone()
        return row["uuid"] if row else None

    def _check_not_busy(self, db_uuid: str) -> None:
        busy = self._busy.get(db_uuid)
        if busy:
            raise CFError(503, 7500, BUSY_EXPORT if busy == "export" else BUSY_IMPORT)

    # ---- Time Travel bookmarks ------------------------------------------------------------
    def _bookmark(self, db_uuid: str, seq: int, ts: float) -> str:
        digest = hashlib.md5(f"{db_uuid}:{seq}".encode()).hexdigest()
        return f"{seq:08x}-{int(ts) & 0xFFFFFFFF:08x}-{(int(ts * 1000) % 1000):08x}-{digest}"

    def snapshot(self, db_uuid: str, conn: sqlite3.Connection | None = None) -> str:
        """Record the current state as a new bookmark (called after every change)."""
        now = time.time()
        with self._registry() as reg:
            seq = (
                (
                    reg.execute(
                        "SELECT COALESCE(MAX(seq), -1) FROM bookmarks WHERE db_uuid = ?", (db_uuid,)
                    ).fetchone()[0]
                )
                + 1
            )
            bookmark = self._bookmark(db_uuid, seq, now)
            if self.cfg.time_travel:
                tt_dir = self._tt_dir(db_uuid)
                tt_dir.mkdir(parents=True, exist_ok=True)
                src = conn or self.connect(db_uuid, user=False)
                dst = sqlite3.connect(tt_dir / f"{seq:08x}.sqlite")
                try:
                    src.backup(dst)
                finally:
                    dst.close()
                    if conn is None:
                        src.close()
            reg.execute("INSERT INTO bookmarks VALUES (?, ?, ?, ?)", (db_uuid, seq, now, bookmark))
            self._prune_bookmarks(reg, db_uuid, now)
        return bookmark

    def _prune_bookmarks(self, reg, db_uuid: str, now: float) -> None:
        cutoff = now - self.cfg.time_travel_days * 86400
        old = reg.execute(
            "SELECT seq FROM bookmarks WHERE db_uuid = ? AND ts < ? AND seq < (SELECT MAX(seq) FROM bookmarks WHERE db_uuid = ?)",
            (db_uuid, cutoff, db_uuid),
        ).fetchall()
        for (seq,) in old:
            (self._tt_dir(db_uuid) / f"{seq:08x}.sqlite").unlink(missing_ok=True)
            reg.execute("DELETE FROM bookmarks WHERE db_uuid = ? AND seq = ?", (db_uuid, seq))

    def current_bookmark(self, db_uuid: str) -> str:
        with self._registry() as reg:
            row = reg.execute(
                "SELECT bookmark FROM bookmarks WHERE db_uuid = ? ORDER BY seq DESC LIMIT 1", (db_uuid,)
            ).fetchone()
        return row["bookmark"] if row else self.snapshot(db_uuid)

    def _bookmark_at(self, db_uuid: str, ts: float) -> sqlite3.Row:
        now = time.time()
        if ts < now - self.cfg.time_travel_days * 86400:
            raise CFError(
                400, 7400, f"Timestamp {iso(ts)} is outside the Time Travel window of {self.cfg.time_travel_days} days"
            )
        if ts > now + 60:
            raise CFError(400, 7400, f"Timestamp {iso(ts)} is in the future")
        with self._registry() as reg:
            row = reg.execute(
                "SELECT * FROM bookmarks WHERE db_uuid = ? AND ts <= ? ORDER BY seq DESC LIMIT 1", (db_uuid, ts)
            ).fetchone()
        if row is None:
            raise CFError(400, 7400, f"No bookmark at or before {iso(ts)}: the database did not exist yet")
        return row

    # ---- routes ---------------------------------------------------------------------------
    def routes(self):
        base = "/accounts/{account_id}/d1/database"
        return [
            ("GET", base, self.list_databases),
            ("POST", base, self.create_database),
            ("GET", base + "/{database_id}", self.get_database),
            ("DELETE", base + "/{database_id}", self.delete_database),
            ("POST", base + "/{database_id}/query", self.query),
            ("POST", base + "/{database_id}/raw", self.raw),
            ("POST", base + "/{database_id}/export", self.export),
            ("POST", base + "/{database_id}/import", self.import_),
            ("GET", base + "/{database_id}/time_travel/bookmark", self.tt_bookmark),
            ("POST", base + "/{database_id}/time_travel/restore", self.tt_restore),
        ]

    def list_databases(self, req: Req):
        page = req.int_arg("page", 1, 1, 10**9)
        per_page = req.int_arg("per_page", 1000, 10, 10000)
        name = req.query.get("name")
        with self._registry() as reg:
            if name:
                rows = reg.execute(
                    "SELECT * FROM databases WHERE name LIKE ? ORDER BY created_at, uuid", (f"%{name}%",)
                ).fetchall()
            else:
                rows = reg.execute("SELECT * FROM databases ORDER BY created_at, uuid").fetchall()
        chunk = rows[(page - 1) * per_page : page * per_page]
        items = [
            {"uuid": r["uuid"], "name": r["name"], "version": r["version"], "created_at": iso(r["created_at"])}
            for r in chunk
        ]
        return ok(items, {"page": page, "per_page": per_page, "count": len(items), "total_count": len(rows)})

    def describe(self, db_uuid: str) -> dict:
        row = self.get_row(db_uuid)
        conn = self.connect(db_uuid, user=False)
        try:
            num_tables = conn.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'"
            ).fetchone()[0]
        finally:
            conn.close()
        return {
            "uuid": row["uuid"],
            "name": row["name"],
            "created_at": iso(row["created_at"]),
            "version": row["version"],
            "num_tables": num_tables,
            "file_size": self.db_path(db_uuid).stat().st_size,
            "running_in_region": "WNAM",
            "read_replication": {"mode": "disabled"},
        }

    def get_database(self, req: Req):
        info = self.describe(req.params["database_id"])
        # The SDK repeats the key (?fields=a&fields=b); others send one comma-separated value.
        fields = ",".join(req.query_all.get("fields", []))
        if fields:
            wanted = {f.strip() for f in fields.split(",") if f.strip()}
            info = {k: v for k, v in info.items() if k in wanted}
        return ok(info)

    def create(self, name: str) -> dict:
        if not NAME_RE.match(name or ""):
            raise CFError(400, 7400, "Database name must be 1-64 characters: letters, digits, '-' and '_'")
        with self._reg_lock:
            if self.find_by_name(name):
                raise CFError(400, 7502, "A database with that name already exists")
            with self._registry() as reg:
                count = reg.execute("SELECT COUNT(*) FROM databases").fetchone()[0]
                if count >= self.cfg.max_databases:
                    raise CFError(400, 7406, f"System limit reached: databases per account ({self.cfg.max_databases})")
                db_uuid = str(uuidlib.uuid4())
                sqlite3.connect(self.db_path(db_uuid)).close()
                reg.execute(
                    "INSERT INTO databases(uuid, name, created_at) VALUES (?, ?, ?)", (db_uuid, name, time.time())
                )
        self.snapshot(db_uuid)
        return self.describe(db_uuid)

    def create_database(self, req: Req):
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise CFError(400, 7400, "Request body must be an object with a string 'name'")
        return ok(self.create(body["name"]))

    def delete_database(self, req: Req):
        db_uuid = req.params["database_id"]
        self.get_row(db_uuid)
        with self.lock(db_uuid):
            self._check_not_busy(db_uuid)
            with self._registry() as reg:
                reg.execute("DELETE FROM databases WHERE uuid = ?", (db_uuid,))
                reg.execute("DELETE FROM bookmarks WHERE db_uuid = ?", (db_uuid,))
            self.db_path(db_uuid).unlink(missing_ok=True)
            shutil.rmtree(self._tt_dir(db_uuid), ignore_errors=True)
        return ok(None)

    # ---- query / raw ----------------------------------------------------------------------
    def _parse_query_body(self, req: Req) -> list[tuple[str, list]]:
        body = req.json(code=7400)
        if not isinstance(body, dict):
            raise CFError(400, 7400, "Request body must be a JSON object")
        if "batch" in body:
            batch = body["batch"]
            if not isinstance(batch, list) or not batch:
                raise CFError(400, 7400, "'batch' must be a non-empty array of {sql, params}")
            items = []
            for item in batch:
                if not isinstance(item, dict) or not isinstance(item.get("sql"), str):
                    raise CFError(400, 7400, "Each batch item needs a string 'sql'")
                items.extend(self._expand(item["sql"], item.get("params")))
            return items
        if not isinstance(body.get("sql"), str):
            raise CFError(400, 7400, "Request body needs a string 'sql'")
        return self._expand(body["sql"], body.get("params"))

    def _expand(self, sql: str, params) -> list[tuple[str, list]]:
        stmts = split_statements(sql)
        if not stmts:
            raise CFError(400, 7500, "No SQL statements detected.: SQLITE_ERROR")
        params = [] if params is None else params
        if not isinstance(params, list):
            raise CFError(400, 7400, "'params' must be an array")
        for value in params:
            if isinstance(value, (dict, list)):
                raise CFError(400, 7400, "'params' items must be strings, numbers, booleans or null")
        if params and len(stmts) > 1:
            raise CFError(
                400, 7500, "params can only be bound to a single statement; use 'batch' for several: SQLITE_ERROR"
            )
        return [(s, params if i == 0 else []) for i, s in enumerate(stmts)]

    def execute(self, db_uuid: str, statements: list[tuple[str, list]]) -> list[dict]:
        """Run statements as one transaction, D1-style: all or nothing."""
        self.get_row(db_uuid)
        for sql, _ in statements:
            if len(sql.encode()) > MAX_STATEMENT_BYTES:
                raise CFError(400, 7500, "statement too long: SQLITE_TOOBIG")
        with self.lock(db_uuid):
            self._check_not_busy(db_uuid)
            conn = self.connect(db_uuid)
            try:
                out = self._run(conn, statements)
                changed = any(r["meta"]["changed_db"] for r in out)
                if changed:
                    self.snapshot(db_uuid, conn)
                return out
            finally:
                conn.close()

    def _run(self, conn: sqlite3.Connection, statements: list[tuple[str, list]]) -> list[dict]:
        out = []
        conn.execute("BEGIN")
        try:
            for sql, params in statements:
                params = [int(p) if isinstance(p, bool) else p for p in params]
                scanned = _scanned_rows(conn, sql, params)
                start = time.perf_counter()
                before = conn.total_changes
                cur = conn.execute(sql, params)
                columns = [d[0] for d in cur.description] if cur.description else []
                # BLOBs travel as arrays of byte values in D1's JSON.
                rows = [tuple(list(v) if isinstance(v, bytes) else v for v in row) for row in cur.fetchall()]
                changes = conn.total_changes - before
                duration = (time.perf_counter() - start) * 1000
                out.append(
                    {
                        "columns": columns,
                        "rows": rows,
                        "meta": {
                            "served_by": "localflare",
                            "served_by_region": "WNAM",
                            "served_by_primary": True,
                            "timings": {"sql_duration_ms": round(duration, 4)},
                            "duration": round(duration, 4),
                            "changes": changes,
                            "last_row_id": conn.execute("SELECT last_insert_rowid()").fetchone()[0] if changes else 0,
                            "changed_db": changes > 0 or _is_ddl(sql),
                            "size_after": 0,
                            "rows_read": scanned + max(len(rows), changes),
                            "rows_written": changes,
                        },
                    }
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise sql_error(exc) from None
        size_after = self._size(conn)
        for r in out:
            r["meta"]["size_after"] = size_after
        return out

    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        conn.set_authorizer(None)
        try:
            return conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        finally:
            conn.set_authorizer(_authorizer)

    def query(self, req: Req):
        results = self.execute(req.params["database_id"], self._parse_query_body(req))
        return ok(
            [
                {"success": True, "meta": r["meta"], "results": [dict(zip(r["columns"], row)) for row in r["rows"]]}
                for r in results
            ]
        )

    def raw(self, req: Req):
        results = self.execute(req.params["database_id"], self._parse_query_body(req))
        return ok(
            [
                {
                    "success": True,
                    "meta": r["meta"],
                    "results": {"columns": r["columns"], "rows": [list(row) for row in r["rows"]]},
                }
                for r in results
            ]
        )

    # ---- export ---------------------------------------------------------------------------
    def export(self, req: Req):
        db_uuid = req.params["database_id"]
        self.get_row(db_uuid)
        body = req.json(code=7400)
        if not isinstance(body, dict) or body.get("output_format") != "polling":
            raise CFError(400, 7400, "output_format must be 'polling'")
        opts = body.get("dump_options") or {}
        if not isinstance(opts, dict):
            raise CFError(400, 7400, "dump_options must be an object")
        bookmark = body.get("current_bookmark")
        if bookmark:
            job = self._jobs.get(("export", bookmark))
            if job is None or job.db_uuid != db_uuid:
                raise CFError(400, 7400, f"No export in progress at bookmark {bookmark}")
        else:
            job = self._active_job(db_uuid, "export") or self._start_export(db_uuid, opts)
        job.last_poll = time.monotonic()
        job.done.wait(timeout=self.cfg.poll_wait)
        return self._job_response(job)

    def _job_response(self, job: Job):
        """A polling answer: 202 while the job runs, 200 once it is complete or failed."""
        return ok(self._job_view(job), status=202 if job.status == "active" else 200)

    def _active_job(self, db_uuid: str, kind: str) -> Job | None:
        for (k, _), job in list(self._jobs.items()):
            if k == kind and job.db_uuid == db_uuid and job.status == "active":
                return job
        return None

    def _job_view(self, job: Job) -> dict:
        view = {
            "success": job.status != "error",
            "type": job.kind,
            "at_bookmark": job.at_bookmark,
            "status": job.status,
            "messages": job.drain_messages(),
        }
        if job.error:
            view["error"] = job.error
        if job.result is not None:
            view["result"] = job.result
        return view

    def _start_export(self, db_uuid: str, opts: dict) -> Job:
        with self.lock(db_uuid):
            self._check_not_busy(db_uuid)
            bookmark = self.current_bookmark(db_uuid)
            job = Job("export", db_uuid, bookmark)
            self._jobs[("export", bookmark)] = job
            self._busy[db_uuid] = "export"
        stall = self.faults.take("export_stall") is not None
        threading.Thread(target=self._run_job, args=(job, lambda: self._export(job, opts, stall)), daemon=True).start()
        return job

    def _run_job(self, job: Job, work) -> None:
        """Run an export or import in its thread; the outcome goes to the poller, and the database is released."""
        try:
            work()
            job.status = "complete"
        except Exception as exc:  # noqa: BLE001 - reported to the poller
            job.status = "error"
            job.error = str(exc)
        finally:
            self._busy.pop(job.db_uuid, None)
            job.done.set()

    def _export(self, job: Job, opts: dict, stall: bool) -> None:
        started = time.monotonic()
        conn = self.connect(job.db_uuid, user=False)
        try:
            virtual = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
            ).fetchall()
            if virtual:
                raise RuntimeError(
                    "cannot export databases with Virtual Tables (fts5): " + ", ".join(r[0] for r in virtual)
                )
            filename = f"{self.get_row(job.db_uuid)['name']}-{job.at_bookmark}.sql"
            path = self.root / "exports" / filename
            tmp = path.with_suffix(".part")
            with open(tmp, "w", encoding="utf-8") as fh:
                parts = write_dump(conn, fh, opts)
            os.replace(tmp, path)
            job.messages.append(f"Uploaded part {parts}")
        finally:
            conn.close()
        # Hold the database for at least export_min_seconds, and cancel if nobody polls.
        while stall or time.monotonic() - started < self.cfg.export_min_seconds:
            if time.monotonic() - job.last_poll > self.cfg.export_poll_timeout:
                raise RuntimeError("Export cancelled: the export was not polled")
            time.sleep(0.05)
        job.result = {"filename": filename, "signed_url": self.signer.sign(f"exports/{filename}")}

    def export_file(self, filename: str) -> Path | None:
        path = self.root / "exports" / Path(filename).name
        return path if path.exists() else None

    # ---- import ---------------------------------------------------------------------------
    def import_(self, req: Req):
        db_uuid = req.params["database_id"]
        self.get_row(db_uuid)
        body = req.json(code=7400)
        if not isinstance(body, dict):
            raise CFError(400, 7400, "Request body must be an object")
        action = body.get("action")
        if action == "init":
            etag = body.get("etag")
            if not isinstance(etag, str) or not re.fullmatch(r"[0-9a-f]{32}", etag):
                raise CFError(400, 7400, "init needs 'etag': the MD5 hex digest of the SQL file")
            filename = f"{db_uuid}-{etag}.sql"
            if (self.root / "imports" / filename).exists():
                return self._job_response(self._start_import(db_uuid, filename, etag))
            return ok({"filename": filename, "upload_url": self.signer.sign(f"imports/{filename}")})
        if action == "ingest":
            filename, etag = body.get("filename"), body.get("etag")
            if not isinstance(filename, str) or not isinstance(etag, str):
                raise CFError(400, 7400, "ingest needs 'filename' and 'etag'")
            path = self.root / "imports" / Path(filename).name
            if not path.exists():
                raise CFError(400, 7400, f"No uploaded file {filename}: upload it to upload_url first")
            if _md5(path) != etag:
                raise CFError(400, 7400, "The uploaded file does not match the etag")
            job = self._start_import(db_uuid, path.name, etag)
            job.done.wait(timeout=self.cfg.poll_wait)
            return self._job_response(job)
        if action == "poll":
            bookmark = body.get("current_bookmark")
            job = self._jobs.get(("import", bookmark or ""))
            if job is None or job.db_uuid != db_uuid:
                raise CFError(400, 7400, f"No import at bookmark {bookmark}")
            job.done.wait(timeout=self.cfg.poll_wait)
            return self._job_response(job)
        raise CFError(400, 7400, "action must be one of init, ingest, poll")

    def store_upload(self, filename: str, data_iter) -> str:
        path = self.root / "imports" / Path(filename).name
        tmp = path.with_suffix(".part")
        md5 = hashlib.md5()
        with open(tmp, "wb") as fh:
            for chunk in data_iter:
                md5.update(chunk)
                fh.write(chunk)
        os.replace(tmp, path)
        return md5.hexdigest()

    def _start_import(self, db_uuid: str, filename: str, etag: str) -> Job:
        with self.lock(db_uuid):
            self._check_not_busy(db_uuid)
            bookmark = self.current_bookmark(db_uuid)
            job = Job("import", db_uuid, bookmark)
            self._jobs[("import", bookmark)] = job
            self._busy[db_uuid] = "import"
        threading.Thread(target=self._run_job, args=(job, lambda: self._import(job, filename)), daemon=True).start()
        return job

    def _import(self, job: Job, filename: str) -> None:
        sql = (self.root / "imports" / filename).read_text(encoding="utf-8")
        statements = split_statements(sql)
        for stmt in statements:
            if is_transaction_control(stmt):
                raise RuntimeError("SQL files must not contain BEGIN TRANSACTION or COMMIT statements")
            if len(stmt.encode()) > MAX_STATEMENT_BYTES:
                raise RuntimeError("statement too long: SQLITE_TOOBIG")
        job.messages.append("Uploaded part 1")
        conn = self.connect(job.db_uuid)
        try:
            start = time.perf_counter()
            before = conn.total_changes
            conn.execute("BEGIN")
            try:
                for stmt in statements:
                    conn.execute(stmt).fetchall()
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise RuntimeError(f"{exc}: {getattr(exc, 'sqlite_errorname', 'SQLITE_ERROR')}") from None
            changes = conn.total_changes - before
            final = self.snapshot(job.db_uuid, conn)
            job.result = {
                "success": True,
                "final_bookmark": final,
                "num_queries": len(statements),
                "meta": {
                    "served_by": "localflare",
                    "duration": round((time.perf_counter() - start) * 1000, 3),
                    "changes": changes,
                    "last_row_id": conn.execute("SELECT last_insert_rowid()").fetchone()[0],
                    "changed_db": changes > 0,
                    "size_after": self._size(conn),
                    "rows_read": changes,
                    "rows_written": changes,
                },
            }
        finally:
            conn.close()
        job.messages.append(f"Imported {len(statements)} queries")

    # ---- Time Travel ----------------------------------------------------------------------
    def tt_bookmark(self, req: Req):
        db_uuid = req.params["database_id"]
        self.get_row(db_uuid)
        ts = req.query.get("timestamp")
        if ts:
            return ok({"bookmark": self._bookmark_at(db_uuid, parse_iso(ts))["bookmark"]})
        return ok({"bookmark": self.current_bookmark(db_uuid)})

    def tt_restore(self, req: Req):
        db_uuid = req.params["database_id"]
        self.get_row(db_uuid)
        bookmark, ts = req.query.get("bookmark"), req.query.get("timestamp")
        if bool(bookmark) == bool(ts):
            raise CFError(400, 7400, "Pass exactly one of the query parameters 'bookmark' or 'timestamp'")
        if ts:
            row = self._bookmark_at(db_uuid, parse_iso(ts))
        else:
            with self._registry() as reg:
                row = reg.execute(
                    "SELECT * FROM bookmarks WHERE db_uuid = ? AND bookmark = ?", (db_uuid, bookmark)
                ).fetchone()
            if row is None:
                raise CFError(
                    400,
                    7400,
                    f"Bookmark {bookmark} is not valid for this database or is outside the Time Travel window",
                )
        now = time.time()
        recent = [t for t in self._restores.get(db_uuid, []) if t > now - RESTORE_WINDOW_S]
        if len(recent) >= RESTORES_PER_WINDOW:
            raise CFError(429, 7429, "Too many restores: at most 10 per 10 minutes per database")
        snap = self._tt_dir(db_uuid) / f"{row['seq']:08x}.sqlite"
        if not snap.exists():
            raise CFError(400, 7400, "Time Travel is off in this localflare (--no-time-travel)")
        with self.lock(db_uuid):
            self._check_not_busy(db_uuid)
            previous = self.current_bookmark(db_uuid)
            src = sqlite3.connect(snap)
            dst = self.connect(db_uuid, user=False)
            try:
                src.backup(dst)
            finally:
                src.close()
            try:
                new = self.snapshot(db_uuid, dst)
            finally:
                dst.close()
        self._restores[db_uuid] = recent + [now]
        return ok(
            {
                "bookmark": new,
                "previous_bookmark": previous,
                "message": f"Restored database {db_uuid} to bookmark {row['bookmark']}",
            }
        )


_SCAN_RE = re.compile(r"^SCAN (\w+)(?: |$)")


def _scanned_rows(conn: sqlite3.Connection, sql: str, params: list) -> int:
    """Estimate rows read the way D1 bills them: a full scan reads every row of the table.

    Indexed lookups are counted by the rows they return (added by the caller)."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head not in {"SELECT", "WITH", "UPDATE", "DELETE", "INSERT", "REPLACE"}:
        return 0
    try:
        plan = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        total = 0
        for row in plan:
            m = _SCAN_RE.match(row[-1])
            if m and m.group(1) != "CONSTANT" and "VIRTUAL TABLE" not in row[-1]:
                total += conn.execute(f"SELECT COUNT(*) FROM {quote_ident(m.group(1))}").fetchone()[0]
        return total
    except sqlite3.Error:
        return 0  # an alias or an invalid statement: the statement itself reports any error


def _is_ddl(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {"CREATE", "DROP", "ALTER"}


def _md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
    return md5.hexdigest()


def write_dump(conn: sqlite3.Connection, fh, opts: dict) -> int:
    """Write an SQL dump the way D1's export does: schema in creation order, then rows as INSERTs."""
    tables_wanted = set(opts.get("tables") or [])
    no_data, no_schema = bool(opts.get("no_data")), bool(opts.get("no_schema"))
    fh.write("PRAGMA defer_foreign_keys=TRUE;\n")
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY rowid"
    ).fetchall()
    later = []
    for kind, name, tbl, sql in objects:
        if tables_wanted and tbl not in tables_wanted:
            continue
        if kind != "table":
            later.append(sql)
            continue
        if not no_schema:
            fh.write(sql.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1) + ";\n")
        if not no_data:
            cur = conn.execute(f"SELECT * FROM {quote_ident(name)}")
            for row in cur:
                fh.write(f"INSERT INTO {quote_ident(name)} VALUES(" + ",".join(literal(v) for v in row) + ");\n")
    if not no_schema:
        for sql in later:
            fh.write(sql + ";\n")
    return 1
