"""Workers KV: namespaces and key/value pairs with metadata and expiration, in one SQLite file."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from . import clock
from .core import CFError, Req, ok, raw_response

MAX_BULK_WRITE = 10_000
MAX_BULK_DELETE = 10_000
MAX_BULK_GET = 100
MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024
MAX_METADATA_BYTES = 1024
MIN_TTL = 60


def ns_not_found() -> CFError:
    return CFError(404, 10013, "list keys: 'namespace not found'")


class KV:
    def __init__(self, cfg, faults):
        self.cfg = cfg
        self.faults = faults
        root = Path(cfg.data_dir) / "kv"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "kv.sqlite"
        self._lock = threading.Lock()
        with self.conn() as c:
            c.executescript(
                """
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS namespaces(id TEXT PRIMARY KEY, title TEXT UNIQUE NOT NULL, created REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS pairs(ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                    expiration INTEGER, metadata TEXT, PRIMARY KEY(ns, key)) WITHOUT ROWID;
                """
            )

    def conn(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        c.row_factory = sqlite3.Row
        return c

    def routes(self):
        base = "/accounts/{account_id}/storage/kv/namespaces"
        return [
            ("GET", base, self.list_namespaces),
            ("POST", base, self.create_namespace),
            ("GET", base + "/{namespace_id}", self.get_namespace),
            ("DELETE", base + "/{namespace_id}", self.delete_namespace),
            ("GET", base + "/{namespace_id}/keys", self.list_keys),
            ("GET", base + "/{namespace_id}/values/{key_name:path}", self.get_value),
            ("PUT", base + "/{namespace_id}/values/{key_name:path}", self.put_value),
            ("DELETE", base + "/{namespace_id}/values/{key_name:path}", self.delete_value),
            ("GET", base + "/{namespace_id}/metadata/{key_name:path}", self.get_metadata),
            ("PUT", base + "/{namespace_id}/bulk", self.bulk_write),
            ("POST", base + "/{namespace_id}/bulk/delete", self.bulk_delete),
            ("DELETE", base + "/{namespace_id}/bulk", self.bulk_delete),
            ("POST", base + "/{namespace_id}/bulk/get", self.bulk_get),
        ]

    # ---- namespaces -----------------------------------------------------------------------
    @staticmethod
    def _ns_view(row) -> dict:
        return {"id": row["id"], "title": row["title"], "supports_url_encoding": True}

    def _ns(self, ns_id: str) -> sqlite3.Row:
        with self.conn() as c:
            row = c.execute("SELECT * FROM namespaces WHERE id = ?", (ns_id,)).fetchone()
        if row is None:
            raise ns_not_found()
        return row

    def list_namespaces(self, req: Req):
        page = req.int_arg("page", 1, 1, 10**9)
        # The spec says 5-100, but wrangler's `kv namespace list` asks for 1000 and Cloudflare serves it.
        per_page = req.int_arg("per_page", 20, 5, 1000)
        order = req.query.get("order", "id")
        direction = req.query.get("direction", "asc")
        if order not in ("id", "title") or direction not in ("asc", "desc"):
            raise CFError(400, 10001, "order must be id|title and direction asc|desc")
        with self.conn() as c:
            rows = c.execute(f"SELECT * FROM namespaces ORDER BY {order} {direction}").fetchall()
        chunk = rows[(page - 1) * per_page : page * per_page]
        total_pages = (len(rows) + per_page - 1) // per_page
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(rows),
            "total_pages": total_pages,
        }
        return ok([self._ns_view(r) for r in chunk], info)

    def create(self, title: str) -> dict:
        if not isinstance(title, str) or not title.strip() or len(title) > 512:
            raise CFError(400, 10019, "title must be a non-empty string of at most 512 characters")
        with self._lock, self.conn() as c:
            if c.execute("SELECT 1 FROM namespaces WHERE title = ?", (title,)).fetchone():
                raise CFError(
                    400, 10014, "create namespace: 'a namespace with this account ID and title already exists'"
                )
            ns_id = secrets.token_hex(16)
            c.execute("INSERT INTO namespaces VALUES (?, ?, ?)", (ns_id, title, time.time()))
        return {"id": ns_id, "title": title, "supports_url_encoding": True}

    def create_namespace(self, req: Req):
        body = req.json(code=10026)
        return ok(self.create((body or {}).get("title") if isinstance(body, dict) else None))

    def get_namespace(self, req: Req):
        return ok(self._ns_view(self._ns(req.params["namespace_id"])))

    def delete_namespace(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        with self._lock, self.conn() as c:
            c.execute("DELETE FROM pairs WHERE ns = ?", (ns["id"],))
            c.execute("DELETE FROM namespaces WHERE id = ?", (ns["id"],))
        return ok(None)

    def find_by_title(self, title: str) -> str | None:
        with self.conn() as c:
            row = c.execute("SELECT id FROM namespaces WHERE title = ?", (title,)).fetchone()
        return row["id"] if row else None

    # ---- keys and values ------------------------------------------------------------------
    def _live(self) -> str:
        return f"(expiration IS NULL OR expiration > {int(clock.now())})"

    def list_keys(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        limit = req.int_arg("limit", 1000, 10, 1000, code=10026)
        prefix = req.query.get("prefix") or ""
        cursor = req.query.get("cursor") or ""
        after = ""
        if cursor:
            try:
                after = base64.urlsafe_b64decode(cursor.encode()).decode()
            except ValueError:
                raise CFError(400, 10026, "invalid cursor") from None
        with self.conn() as c:
            rows = c.execute(
                f"SELECT key, expiration, metadata FROM pairs WHERE ns = ? AND key > ? AND substr(key, 1, ?) = ? AND {self._live()}"
                " ORDER BY key LIMIT ?",
                (ns["id"], after, len(prefix), prefix, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = []
        for r in rows:
            item = {"name": r["key"]}
            if r["expiration"] is not None:
                item["expiration"] = r["expiration"]
            if r["metadata"] is not None:
                item["metadata"] = json.loads(r["metadata"])
            items.append(item)
        next_cursor = base64.urlsafe_b64encode(rows[-1]["key"].encode()).decode() if more else ""
        return ok(items, {"count": len(items), "cursor": next_cursor})

    def _get_pair(self, ns_id: str, key: str):
        with self.conn() as c:
            return c.execute(
                f"SELECT * FROM pairs WHERE ns = ? AND key = ? AND {self._live()}", (ns_id, key)
            ).fetchone()

    def get_value(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        row = self._get_pair(ns["id"], req.params["key_name"])
        if row is None:
            raise CFError(404, 10009, "get: 'key not found'")
        headers = {"expiration": str(row["expiration"])} if row["expiration"] is not None else {}
        return raw_response(bytes(row["value"]), headers=headers)

    def get_metadata(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        row = self._get_pair(ns["id"], req.params["key_name"])
        if row is None:
            raise CFError(404, 10009, "get: 'key not found'")
        return ok(json.loads(row["metadata"]) if row["metadata"] is not None else None)

    @staticmethod
    def _expiration(expiration, ttl) -> int | None:
        now = int(clock.now())
        if ttl not in (None, ""):
            try:
                ttl = int(ttl)
            except (TypeError, ValueError):
                raise CFError(400, 10037, f"Invalid expiration_ttl of {ttl}") from None
            if ttl < MIN_TTL:
                raise CFError(
                    400, 10037, f"Invalid expiration_ttl of {ttl}. Expiration TTL must be at least {MIN_TTL}."
                )
            return now + ttl
        if expiration not in (None, ""):
            try:
                expiration = int(expiration)
            except (TypeError, ValueError):
                raise CFError(400, 10037, f"Invalid expiration of {expiration}") from None
            if expiration < now + MIN_TTL:
                raise CFError(
                    400,
                    10037,
                    f"Invalid expiration of {expiration}. Expiration times must be at least {MIN_TTL} seconds in the future.",
                )
            return expiration
        return None

    @staticmethod
    def _check_pair(key: str, value: bytes, metadata) -> str | None:
        if not key or len(key.encode()) > MAX_KEY_BYTES or key in (".", ".."):
            raise CFError(400, 10033, f"key names must be 1 to {MAX_KEY_BYTES} bytes and not '.' or '..'")
        if len(value) > MAX_VALUE_BYTES:
            raise CFError(413, 10006, "value too large: at most 25 MiB")
        if metadata is None:
            return None
        text = json.dumps(metadata)
        if len(text.encode()) > MAX_METADATA_BYTES:
            raise CFError(413, 10028, f"metadata too large: at most {MAX_METADATA_BYTES} bytes")
        return text

    def put_value(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        key = req.params["key_name"]
        metadata = None
        if req.content_type == "multipart/form-data":
            if "value" not in req.form:
                raise CFError(400, 10001, "multipart body needs a 'value' part")
            value = req.form["value"]
            if req.form.get("metadata") not in (None, b"", ""):
                try:
                    metadata = json.loads(req.form["metadata"])
                except ValueError:
                    raise CFError(400, 10029, "metadata must be valid JSON") from None
        else:
            value = req.body
        exp = self._expiration(req.query.get("expiration"), req.query.get("expiration_ttl"))
        meta_text = self._check_pair(key, value, metadata)
        with self.conn() as c:
            c.execute("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?)", (ns["id"], key, value, exp, meta_text))
        return ok({})

    def delete_value(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        with self.conn() as c:
            c.execute("DELETE FROM pairs WHERE ns = ? AND key = ?", (ns["id"], req.params["key_name"]))
        return ok({})

    # ---- bulk -----------------------------------------------------------------------------
    def bulk_write(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        items = req.json(code=10026)
        if not isinstance(items, list):
            raise CFError(400, 10026, "body must be an array of {key, value, ...}")
        if len(items) > MAX_BULK_WRITE:
            raise CFError(400, 10026, f"bulk write takes at most {MAX_BULK_WRITE} pairs")
        rows = []
        for item in items:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("key"), str)
                or not isinstance(item.get("value"), str)
            ):
                raise CFError(400, 10026, "each item needs a string 'key' and a string 'value'")
            value = item["value"]
            if item.get("base64"):
                try:
                    data = base64.b64decode(value, validate=True)
                except ValueError:
                    raise CFError(400, 10026, f"value of {item['key']!r} is not valid base64") from None
            else:
                data = value.encode()
            exp = self._expiration(item.get("expiration"), item.get("expiration_ttl"))
            rows.append((ns["id"], item["key"], data, exp, self._check_pair(item["key"], data, item.get("metadata"))))
        with self.conn() as c:
            c.executemany("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?)", rows)
        return ok({"successful_key_count": len(rows), "unsuccessful_keys": []})

    def bulk_delete(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        keys = req.json(code=10026)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise CFError(400, 10026, "body must be an array of key names")
        if len(keys) > MAX_BULK_DELETE:
            raise CFError(400, 10026, f"bulk delete takes at most {MAX_BULK_DELETE} keys")
        with self.conn() as c:
            c.executemany("DELETE FROM pairs WHERE ns = ? AND key = ?", [(ns["id"], k) for k in keys])
        return ok({"successful_key_count": len(keys), "unsuccessful_keys": []})

    def bulk_get(self, req: Req):
        ns = self._ns(req.params["namespace_id"])
        body = req.json(code=10026)
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise CFError(400, 10026, "body must be {keys: [string], type?, withMetadata?}")
        if len(keys) > MAX_BULK_GET:
            raise CFError(400, 10026, f"bulk get takes at most {MAX_BULK_GET} keys")
        kind = body.get("type", "text")
        if kind not in ("text", "json"):
            raise CFError(400, 10026, "type must be text or json")
        with_meta = bool(body.get("withMetadata"))
        values = {}
        for key in keys:
            row = self._get_pair(ns["id"], key)
            if row is None:
                values[key] = None
                continue
            try:
                text = bytes(row["value"]).decode("utf-8")
                value = json.loads(text) if kind == "json" else text
            except ValueError:
                raise CFError(
                    400, 10026, f"bulk get does not support binary or invalid {kind} values: {key!r}"
                ) from None
            if with_meta:
                entry = {"value": value, "metadata": json.loads(row["metadata"]) if row["metadata"] else None}
                if row["expiration"] is not None:
                    entry["expiration"] = row["expiration"]
                values[key] = entry
            else:
                values[key] = value
        return ok({"values": values})
