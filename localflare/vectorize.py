"""Vectorize v2: indexes in SQLite, exact search with numpy, asynchronous mutations."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
import uuid as uuidlib
from pathlib import Path

import numpy as np

from .core import CFError, Req, ok
from .d1 import iso

MAX_VECTORS_PER_REQUEST = 5000
MAX_IDS_PER_DELETE = 100
MAX_DIMENSIONS = 1536
MAX_TOPK = 100
MAX_TOPK_WITH_DATA = 20
MAX_ID_BYTES = 64
MAX_METADATA_BYTES = 10 * 1024
MAX_METADATA_INDEXES = 10
LIST_CURSOR_TTL_S = 3600
NAME_RE = re.compile(r"^([a-z]+[a-z0-9_-]*[a-z0-9]+)$")
METRICS = ("cosine", "euclidean", "dot-product")
PRESETS = {
    "@cf/baai/bge-small-en-v1.5": (384, "cosine"),
    "@cf/baai/bge-base-en-v1.5": (768, "cosine"),
    "@cf/baai/bge-large-en-v1.5": (1024, "cosine"),
}


def not_found(name: str) -> CFError:
    return CFError(404, 3000, f"vectorize.index.not_found: index {name} was not found")


class Index:
    """One index: a SQLite file with vectors, pending mutations and list snapshots."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()
        self._matrix = None  # (ids, namespaces, float32 matrix), rebuilt after mutations apply
        with self.conn() as c:
            c.executescript(
                """
                CREATE TABLE IF NOT EXISTS vectors(id TEXT PRIMARY KEY, namespace TEXT, vals BLOB NOT NULL, metadata TEXT);
                CREATE TABLE IF NOT EXISTS mutations(seq INTEGER PRIMARY KEY AUTOINCREMENT, mutation_id TEXT NOT NULL,
                    created REAL NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, applied REAL);
                CREATE TABLE IF NOT EXISTS meta_indexes(property TEXT PRIMARY KEY, index_type TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshots(token TEXT PRIMARY KEY, created REAL NOT NULL, total INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshot_ids(token TEXT NOT NULL, pos INTEGER NOT NULL, id TEXT NOT NULL,
                    PRIMARY KEY(token, pos)) WITHOUT ROWID;
                """
            )

    def conn(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        c.execute("PRAGMA journal_mode=WAL")
        return c

    def enqueue(self, kind: str, payload) -> str:
        mutation_id = str(uuidlib.uuid4())
        with self.lock, self.conn() as c:
            c.execute(
                "INSERT INTO mutations(mutation_id, created, kind, payload) VALUES (?, ?, ?, ?)",
                (mutation_id, time.time(), kind, json.dumps(payload)),
            )
        return mutation_id

    def apply_due(self, lag: float) -> None:
        """Apply, in order, every mutation older than the lag."""
        with self.lock, self.conn() as c:
            due = c.execute(
                "SELECT seq, kind, payload FROM mutations WHERE applied IS NULL AND created <= ? ORDER BY seq",
                (time.time() - lag,),
            ).fetchall()
            for seq, kind, payload in due:
                data = json.loads(payload)
                if kind == "delete":
                    c.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for i in data])
                else:
                    rows = [
                        (
                            v["id"],
                            v.get("namespace"),
                            np.asarray(v["values"], dtype="<f4").tobytes(),
                            json.dumps(v["metadata"]) if v.get("metadata") is not None else None,
                        )
                        for v in data
                    ]
                    verb = "INSERT OR IGNORE" if kind == "insert" else "INSERT OR REPLACE"
                    c.executemany(f"{verb} INTO vectors VALUES (?, ?, ?, ?)", rows)
                c.execute("UPDATE mutations SET applied = ?, payload = '[]' WHERE seq = ?", (time.time(), seq))
            if due:
                self._matrix = None

    def processed(self) -> tuple[str | None, float | None]:
        with self.conn() as c:
            row = c.execute(
                "SELECT mutation_id, applied FROM mutations WHERE applied IS NOT NULL ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def count(self) -> int:
        with self.conn() as c:
            return c.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def matrix(self, dims: int):
        with self.lock:
            if self._matrix is None:
                with self.conn() as c:
                    n = c.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                    ids: list[str] = []
                    namespaces: list = []
                    mat = np.empty((n, dims), dtype=np.float32)
                    for i, (vid, ns, vals) in enumerate(c.execute("SELECT id, namespace, vals FROM vectors")):
                        ids.append(vid)
                        namespaces.append(ns)
                        mat[i] = np.frombuffer(vals, dtype="<f4")
                self._matrix = (ids, np.array(namespaces, dtype=object), mat)
            return self._matrix


class Vectorize:
    def __init__(self, cfg, faults):
        self.cfg = cfg
        self.faults = faults
        self.root = Path(cfg.data_dir) / "vectorize"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._indexes: dict[str, Index] = {}
        with self._registry() as reg:
            reg.execute(
                "CREATE TABLE IF NOT EXISTS indexes(name TEXT PRIMARY KEY, description TEXT, dimensions INTEGER NOT NULL,"
                " metric TEXT NOT NULL, preset TEXT, created_on REAL NOT NULL, modified_on REAL NOT NULL, file TEXT NOT NULL)"
            )

    def _registry(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.root / "_registry.sqlite", timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def lag(self) -> float:
        fault = self.faults.peek("mutation_lag")
        return float(fault.opts["seconds"]) if fault else self.cfg.mutation_lag

    def _row(self, name: str) -> sqlite3.Row:
        with self._registry() as reg:
            row = reg.execute("SELECT * FROM indexes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise not_found(name)
        return row

    def index(self, name: str) -> tuple[sqlite3.Row, Index]:
        row = self._row(name)
        with self._lock:
            idx = self._indexes.get(row["file"])
            if idx is None:
                idx = self._indexes[row["file"]] = Index(self.root / row["file"])
        idx.apply_due(self.lag())
        return row, idx

    @staticmethod
    def _view(row) -> dict:
        config = {"dimensions": row["dimensions"], "metric": row["metric"]}
        if row["preset"]:
            config["preset"] = row["preset"]
        return {
            "name": row["name"],
            "description": row["description"] or "",
            "config": config,
            "created_on": iso(row["created_on"]),
            "modified_on": iso(row["modified_on"]),
        }

    def routes(self):
        base = "/accounts/{account_id}/vectorize/v2/indexes"
        return [
            ("GET", base, self.list_indexes),
            ("POST", base, self.create_index),
            ("GET", base + "/{index_name}", self.get_index),
            ("DELETE", base + "/{index_name}", self.delete_index),
            ("GET", base + "/{index_name}/info", self.info),
            ("POST", base + "/{index_name}/insert", self.insert),
            ("POST", base + "/{index_name}/upsert", self.upsert),
            ("POST", base + "/{index_name}/query", self.query),
            ("POST", base + "/{index_name}/get_by_ids", self.get_by_ids),
            ("POST", base + "/{index_name}/delete_by_ids", self.delete_by_ids),
            ("GET", base + "/{index_name}/list", self.list_vectors),
            ("POST", base + "/{index_name}/metadata_index/create", self.meta_create),
            ("GET", base + "/{index_name}/metadata_index/list", self.meta_list),
            ("POST", base + "/{index_name}/metadata_index/delete", self.meta_delete),
        ]

    # ---- indexes --------------------------------------------------------------------------
    def list_indexes(self, req: Req):
        with self._registry() as reg:
            rows = reg.execute("SELECT * FROM indexes ORDER BY created_on, name").fetchall()
        return ok([self._view(r) for r in rows])

    def create(self, name: str, dimensions: int, metric: str, description: str = "", preset: str | None = None) -> dict:
        if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 64:
            raise CFError(400, 40004, f"vectorize.invalid_index_name: {name!r} must match {NAME_RE.pattern}")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
            raise CFError(
                400, 40002, f"vectorize.invalid_dimensions: dimensions must be between 1 and {MAX_DIMENSIONS}"
            )
        if metric not in METRICS:
            raise CFError(400, 40003, f"vectorize.invalid_metric: metric must be one of {', '.join(METRICS)}")
        with self._lock, self._registry() as reg:
            if reg.execute("SELECT 1 FROM indexes WHERE name = ?", (name,)).fetchone():
                raise CFError(409, 3002, f"vectorize.index.duplicate_name: an index named {name} already exists")
            now = time.time()
            reg.execute(
                "INSERT INTO indexes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, description, dimensions, metric, preset, now, now, f"{name}-{secrets.token_hex(4)}.sqlite"),
            )
        return self._view(self._row(name))

    def create_index(self, req: Req):
        body = req.json(expect_json_content_type=True)
        if not isinstance(body, dict):
            raise CFError(400, 40001, "Request body must be an object")
        config = body.get("config") or {}
        if "preset" in config:
            if config["preset"] not in PRESETS:
                raise CFError(400, 40005, f"vectorize.invalid_preset: unknown preset {config['preset']!r}")
            dims, metric = PRESETS[config["preset"]]
            return ok(self.create(body.get("name"), dims, metric, body.get("description") or "", config["preset"]))
        return ok(
            self.create(body.get("name"), config.get("dimensions"), config.get("metric"), body.get("description") or "")
        )

    def get_index(self, req: Req):
        return ok(self._view(self._row(req.params["index_name"])))

    def delete_index(self, req: Req):
        row = self._row(req.params["index_name"])
        with self._lock, self._registry() as reg:
            reg.execute("DELETE FROM indexes WHERE name = ?", (row["name"],))
            self._indexes.pop(row["file"], None)
            for suffix in ("", "-wal", "-shm"):
                (self.root / (row["file"] + suffix)).unlink(missing_ok=True)
        return ok(None)

    def info(self, req: Req):
        row, idx = self.index(req.params["index_name"])
        mutation, applied = idx.processed()
        return ok(
            {
                "dimensions": row["dimensions"],
                "vectorCount": idx.count(),
                "processedUpToDatetime": iso(applied) if applied else None,
                "processedUpToMutation": mutation,
            }
        )

    # ---- writes ---------------------------------------------------------------------------
    def _ndjson(self, req: Req) -> bytes:
        if req.content_type == "application/x-ndjson":
            return req.body
        if req.content_type == "multipart/form-data":
            part = req.form.get("vectors")
            if part is None:
                raise CFError(400, 40001, "vectorize.missing_vectors: the multipart body needs a 'vectors' file part")
            return part
        raise CFError(
            400,
            40026,
            "vectorize.unknown_content_type: send application/x-ndjson or multipart/form-data with a 'vectors' part",
        )

    def _parse_vectors(self, req: Req, dims: int) -> list[dict]:
        discard = req.query.get("unparsable-behavior", "error") == "discard"
        vectors = []
        for lineno, line in enumerate(self._ndjson(req).decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                vec = self._check_vector(json.loads(line), dims)
            except (ValueError, TypeError) as exc:
                if discard:
                    continue
                raise CFError(
                    400, 40023, f"vectorize.upstream_error - failed to parse ndjson line {lineno}: {exc}"
                ) from None
            vectors.append(vec)
            if len(vectors) > MAX_VECTORS_PER_REQUEST:
                raise CFError(
                    400, 40006, f"vectorize.too_many_vectors: at most {MAX_VECTORS_PER_REQUEST} vectors per request"
                )
        if not vectors:
            raise CFError(400, 40023, "vectorize.upstream_error - no vectors in the request body")
        return vectors

    @staticmethod
    def _check_vector(obj, dims: int) -> dict:
        if not isinstance(obj, dict):
            raise ValueError("each line must be a JSON object")
        vid = obj.get("id")
        if not isinstance(vid, str) or not vid or len(vid.encode()) > MAX_ID_BYTES:
            raise ValueError(f"id must be a non-empty string of at most {MAX_ID_BYTES} bytes")
        values = obj.get("values")
        if not isinstance(values, list) or len(values) != dims:
            raise ValueError(
                f"vector {vid} has {len(values) if isinstance(values, list) else 'no'} dimensions; the index has {dims}"
            )
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
            raise ValueError(f"vector {vid} values must be numbers")
        meta = obj.get("metadata")
        if meta is not None:
            if not isinstance(meta, dict):
                raise ValueError("metadata must be an object")
            for key in meta:
                if not key or "." in key or '"' in key or key.startswith("$"):
                    raise ValueError(f"invalid metadata key {key!r}")
            if len(json.dumps(meta).encode()) > MAX_METADATA_BYTES:
                raise ValueError(f"metadata of {vid} is over {MAX_METADATA_BYTES} bytes")
        ns = obj.get("namespace")
        if ns is not None and not isinstance(ns, str):
            raise ValueError("namespace must be a string")
        return {"id": vid, "values": values, "metadata": meta, "namespace": ns}

    def _write(self, req: Req, kind: str):
        row, idx = self.index(req.params["index_name"])
        vectors = self._parse_vectors(req, row["dimensions"])
        return ok({"mutationId": idx.enqueue(kind, vectors)})

    def insert(self, req: Req):
        return self._write(req, "insert")

    def upsert(self, req: Req):
        return self._write(req, "upsert")

    def _ids(self, req: Req, cap: int | None) -> list[str]:
        body = req.json(expect_json_content_type=True)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CFError(400, 40001, 'Request body must be {"ids": [string, ...]}')
        if cap is not None and len(ids) > cap:
            raise CFError(400, 40007, f"too many ids in payload; max id count is {cap}")
        return ids

    def delete_by_ids(self, req: Req):
        _, idx = self.index(req.params["index_name"])
        ids = self._ids(req, MAX_IDS_PER_DELETE)
        return ok({"mutationId": idx.enqueue("delete", ids)})

    def get_by_ids(self, req: Req):
        _, idx = self.index(req.params["index_name"])
        ids = self._ids(req, self.cfg.get_by_ids_max)
        out = []
        with idx.conn() as c:
            for vid in dict.fromkeys(ids):
                r = c.execute("SELECT id, namespace, vals, metadata FROM vectors WHERE id = ?", (vid,)).fetchone()
                if r:
                    out.append(_vector_view(r, values=True, metadata=True))
        return ok(out)

    # ---- query ----------------------------------------------------------------------------
    def query(self, req: Req):
        row, idx = self.index(req.params["index_name"])
        body = req.json(expect_json_content_type=True)
        if not isinstance(body, dict):
            raise CFError(400, 40001, "Request body must be an object")
        return_values = bool(body.get("returnValues", False))
        rm = body.get("returnMetadata", "none")
        rm = {True: "all", False: "none"}.get(rm, rm) if isinstance(rm, bool) else rm
        if rm not in ("none", "indexed", "all"):
            raise CFError(400, 40001, "returnMetadata must be one of none, indexed, all")
        top_k = body.get("topK", 5)
        if not isinstance(top_k, int) or top_k < 1:
            raise CFError(400, 40001, "topK must be a positive integer")
        cap = MAX_TOPK_WITH_DATA if (return_values or rm == "all") else MAX_TOPK
        if top_k > cap:
            raise CFError(
                400,
                40008,
                f"vectorize.invalid_topk: topK must be <= {cap}"
                + (" when returnValues is true or returnMetadata is 'all'" if cap == MAX_TOPK_WITH_DATA else ""),
            )
        vector = body.get("vector")
        if vector is None and body.get("vectorId"):
            found = self._fetch(idx, [body["vectorId"]])
            if not found:
                raise CFError(404, 40009, f"vectorize.vector_not_found: {body['vectorId']}")
            vector = list(np.frombuffer(found[0][2], dtype="<f4"))
        if not isinstance(vector, list) or len(vector) != row["dimensions"]:
            raise CFError(400, 40001, f"vector must be an array of {row['dimensions']} numbers")
        ids, namespaces, mat = idx.matrix(row["dimensions"])
        mask = np.ones(len(ids), dtype=bool)
        if body.get("namespace") is not None:
            mask &= namespaces == body["namespace"]
        q = np.asarray(vector, dtype=np.float32)
        scores = _score(row["metric"], mat, q)
        if body.get("filter"):
            mask &= self._filter_mask(idx, ids, body["filter"])
        candidates = np.flatnonzero(mask)
        order = candidates[
            np.argsort(scores[candidates] if row["metric"] == "euclidean" else -scores[candidates], kind="stable")
        ][:top_k]
        picked = self._fetch(idx, [ids[i] for i in order]) if (return_values or rm != "none") else None
        by_id = {r[0]: r for r in picked or []}
        indexed = self._meta_props(idx) if rm == "indexed" else None
        matches = []
        for i in order:
            match = {"id": ids[i], "score": float(scores[i])}
            if namespaces[i] is not None:
                match["namespace"] = namespaces[i]
            r = by_id.get(ids[i])
            if r is not None and return_values:
                match["values"] = [float(x) for x in np.frombuffer(r[2], dtype="<f4")]
            if r is not None and rm != "none" and r[3]:
                meta = json.loads(r[3])
                match["metadata"] = meta if rm == "all" else {k: v for k, v in meta.items() if k in indexed}
            matches.append(match)
        return ok({"count": len(matches), "matches": matches})

    @staticmethod
    def _fetch(idx: Index, ids: list[str]) -> list:
        with idx.conn() as c:
            return [
                r
                for vid in ids
                for r in c.execute("SELECT id, namespace, vals, metadata FROM vectors WHERE id = ?", (vid,))
            ]

    @staticmethod
    def _meta_props(idx: Index) -> dict:
        with idx.conn() as c:
            return dict(c.execute("SELECT property, index_type FROM meta_indexes"))

    def _filter_mask(self, idx: Index, ids: list[str], flt: dict) -> np.ndarray:
        if not isinstance(flt, dict):
            raise CFError(400, 40001, "filter must be an object")
        props = self._meta_props(idx)
        with idx.conn() as c:
            metas = dict(c.execute("SELECT id, metadata FROM vectors"))
        mask = np.zeros(len(ids), dtype=bool)
        for i, vid in enumerate(ids):
            meta = json.loads(metas.get(vid) or "{}")
            mask[i] = all(k in props and _match(meta.get(k), cond) for k, cond in flt.items())
        return mask

    # ---- list -----------------------------------------------------------------------------
    def list_vectors(self, req: Req):
        _, idx = self.index(req.params["index_name"])
        count = req.int_arg("count", 100, 1, 1000, code=40001)
        cursor = req.query.get("cursor")
        now = time.time()
        with idx.lock, idx.conn() as c:
            c.execute(
                "DELETE FROM snapshot_ids WHERE token IN (SELECT token FROM snapshots WHERE created < ?)",
                (now - LIST_CURSOR_TTL_S,),
            )
            c.execute("DELETE FROM snapshots WHERE created < ?", (now - LIST_CURSOR_TTL_S,))
            if cursor:
                token, _, pos = cursor.partition(".")
                snap = c.execute("SELECT created, total FROM snapshots WHERE token = ?", (token,)).fetchone()
                if snap is None or not pos.isdigit():
                    raise CFError(
                        400,
                        40010,
                        "vectorize.invalid_cursor: the cursor is invalid or has expired; start again without a cursor",
                    )
                start = int(pos)
            else:
                token, start = secrets.token_hex(8), 0
                c.execute(
                    "INSERT INTO snapshot_ids(token, pos, id) SELECT ?, ROW_NUMBER() OVER (ORDER BY id) - 1, id FROM vectors",
                    (token,),
                )
                total = c.execute("SELECT COUNT(*) FROM snapshot_ids WHERE token = ?", (token,)).fetchone()[0]
                c.execute("INSERT INTO snapshots VALUES (?, ?, ?)", (token, now, total))
                snap = (now, total)
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT id FROM snapshot_ids WHERE token = ? AND pos >= ? AND pos < ? ORDER BY pos",
                    (token, start, start + count),
                )
            ]
        created, total = snap
        truncated = start + len(ids) < total
        result = {"count": len(ids), "totalCount": total, "isTruncated": truncated, "vectors": [{"id": i} for i in ids]}
        if truncated:
            result["nextCursor"] = f"{token}.{start + len(ids)}"
            result["cursorExpirationTimestamp"] = iso(created + LIST_CURSOR_TTL_S)
        return ok(result)

    # ---- metadata indexes -----------------------------------------------------------------
    def meta_create(self, req: Req):
        _, idx = self.index(req.params["index_name"])
        body = req.json(expect_json_content_type=True)
        prop, kind = (body or {}).get("propertyName"), (body or {}).get("indexType")
        if not isinstance(prop, str) or kind not in ("string", "number", "boolean"):
            raise CFError(400, 40001, "Body must be {propertyName, indexType: string|number|boolean}")
        with idx.conn() as c:
            if c.execute("SELECT COUNT(*) FROM meta_indexes").fetchone()[0] >= MAX_METADATA_INDEXES:
                raise CFError(400, 40011, f"vectorize.too_many_metadata_indexes: at most {MAX_METADATA_INDEXES}")
            c.execute("INSERT OR REPLACE INTO meta_indexes VALUES (?, ?)", (prop, kind))
        return ok({"mutationId": idx.enqueue("upsert", [])})

    def meta_list(self, req: Req):
        _, idx = self.index(req.params["index_name"])
        return ok({"metadataIndexes": [{"propertyName": p, "indexType": t} for p, t in self._meta_props(idx).items()]})

    def meta_delete(self, req: Req):
        _, idx = self.index(req.params["index_name"])
        body = req.json(expect_json_content_type=True)
        prop = (body or {}).get("propertyName")
        with idx.conn() as c:
            if not c.execute("DELETE FROM meta_indexes WHERE property = ?", (prop,)).rowcount:
                raise CFError(404, 40012, f"vectorize.metadata_index_not_found: {prop}")
        return ok({"mutationId": idx.enqueue("upsert", [])})


def _vector_view(r, values: bool, metadata: bool) -> dict:
    out = {"id": r[0]}
    if values:
        out["values"] = [float(x) for x in np.frombuffer(r[2], dtype="<f4")]
    if metadata:
        out["metadata"] = json.loads(r[3]) if r[3] else {}
    out["namespace"] = r[1]
    return out


def _score(metric: str, mat: np.ndarray, q: np.ndarray) -> np.ndarray:
    if len(mat) == 0:
        return np.zeros(0, dtype=np.float32)
    if metric == "euclidean":
        return np.linalg.norm(mat - q, axis=1)
    dots = mat @ q
    if metric == "dot-product":
        return dots
    norms = np.linalg.norm(mat, axis=1) * float(np.linalg.norm(q))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, dots / np.where(norms > 0, norms, 1), 0.0)


def _match(value, cond) -> bool:
    if not isinstance(cond, dict):
        return value == cond
    ops = {
        "$eq": lambda a, b: a == b,
        "$ne": lambda a, b: a != b,
        "$in": lambda a, b: a in b,
        "$nin": lambda a, b: a not in b,
        "$lt": lambda a, b: a is not None and a < b,
        "$lte": lambda a, b: a is not None and a <= b,
        "$gt": lambda a, b: a is not None and a > b,
        "$gte": lambda a, b: a is not None and a >= b,
    }
    try:
        return all(ops[op](value, arg) for op, arg in cond.items())
    except (KeyError, TypeError):
        raise CFError(400, 40001, f"unsupported filter {cond!r}") from None
