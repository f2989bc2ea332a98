"""Prove a backup set restores: load it into scratch resources in the same account and compare.

* **D1**: a new database `prism-verify-<token>` gets the dump through D1's import flow (the same path
  a disaster recovery takes). Its row counts per table must equal the manifest, `PRAGMA quick_check`
  must say ok, and sampled rows must equal the dump's own: the dump is also loaded into a local
  SQLite file (the oracle), so the comparison needs no trust in the export.
* **Vectorize**: a new index with the manifest's dimensions and metric gets every vector (5,000 a
  request); its count must equal the manifest, and sampled vectors must equal the file's (values
  within 1e-6, metadata and namespace equal).
* **The source**: sampled rows, vectors and KV keys are also looked up in the live resources. The
  source keeps changing after the capture, so a difference there is reported, not failed on.

Scratch resources are deleted in a `finally`, and `cleanup` deletes them again by name for a task
whose worker died (the names derive from the run, so a teardown task can find them).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import random
import sqlite3
import tempfile
from pathlib import Path

from prism_cloudflare.backup_sets import OBJECTS, download_object, read_vectors
from prism_cloudflare.errors import CloudflareError, CloudflareNotFound
from prism_cloudflare.hooks.d1 import D1Hook
from prism_cloudflare.hooks.kv import KVHook
from prism_cloudflare.hooks.vectorize import VectorizeHook
from prism_cloudflare.recovery import quick_check, table_counts
from prism_cloudflare.sqldump import quote_ident, split_statements

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "prism-verify-"
SAMPLE = 5  # rows per table, and vectors / keys in all
TOLERANCE = 1e-6
_LIST_TABLES = "SELECT name, type FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'virtual') " \
               "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name"


def scratch_name(token: str) -> str:
    return f"{SCRATCH_PREFIX}{token}"


# ---- the local oracle ---------------------------------------------------------------------------

class DumpOracle:
    """The dump loaded into a local SQLite file: what the backup holds, to compare D1 against."""

    def __init__(self, dump_gz: Path, workdir: Path):
        self.db = sqlite3.connect(workdir / "oracle.sqlite")
        self.db.execute("PRAGMA foreign_keys = OFF")  # the dump's order is D1's concern, checked by the import
        with gzip.open(dump_gz, "rt", encoding="utf-8") as fh:
            for stmt in split_statements(fh):
                self.db.execute(stmt)
        self.db.commit()

    def tables(self) -> dict[str, str]:
        return {name: kind for name, kind in self.db.execute(_LIST_TABLES)}

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.db.execute(f"PRAGMA table_xinfo({quote_ident(table)})") if not r[6]]

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {quote_ident(table)}").fetchone()[0]

    def sample_rowids(self, table: str, n: int, rng: random.Random) -> list[int]:
        try:
            ids = [r[0] for r in self.db.execute(f"SELECT rowid FROM {quote_ident(table)} ORDER BY rowid")]
        except sqlite3.OperationalError:  # WITHOUT ROWID: counted, not sampled
            return []
        return sorted(rng.sample(ids, min(n, len(ids))))

    def rows(self, table: str, rowids: list[int]) -> dict[int, list]:
        return {r[0]: list(r[1:]) for r in self.db.execute(_rows_sql(table, self.columns(table), rowids))}

    def close(self) -> None:
        self.db.close()


def _rows_sql(table: str, columns: list[str], rowids: list[int]) -> str:
    # Row ids inline (ints from the oracle): D1 binds every parameter as text.
    quoted = ", ".join(f"quote({quote_ident(c)})" for c in columns)
    ids = ", ".join(str(int(r)) for r in rowids)
    return f"SELECT rowid, {quoted} FROM {quote_ident(table)} WHERE rowid IN ({ids}) ORDER BY rowid"


def _d1_rows(hook: D1Hook, db: str, table: str, columns: list[str], rowids: list[int]) -> dict[int, list]:
    if not rowids:
        return {}
    rows = hook.raw(db, _rows_sql(table, columns, rowids))[-1]["results"]["rows"]
    return {r[0]: list(r[1:]) for r in rows}


# ---- D1 ---------------------------------------------------------------------------------------

def verify_d1(hook: D1Hook, dump_gz: Path, manifest: dict, scratch: str, source_db: str | None, rng: random.Random,
              workdir: Path) -> dict:
    problems, notes = [], []
    db = hook.create_database(scratch)["uuid"]
    sql = workdir / "dump.sql"
    with gzip.open(dump_gz, "rb") as src, open(sql, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    imported = hook.import_sql(db, sql)
    sql.unlink()
    oracle = DumpOracle(dump_gz, workdir)
    try:
        expected = manifest["d1"]["tables"]
        tables = oracle.tables()
        counts = table_counts(hook, db)
        for table, kind in tables.items():
            restored, in_file = counts.get(table, 0), oracle.count(table)
            if restored != in_file:
                problems.append(f"d1: {table} has {restored} rows restored, the dump holds {in_file}")
            if kind == "table" and in_file != expected.get(table, 0):
                problems.append(f"d1: {table} holds {in_file} rows in the dump, the manifest says {expected.get(table, 0)}")
        for table in set(expected) - set(tables):
            problems.append(f"d1: the manifest lists {table} ({expected[table]} rows), the restore has no such table")
        check = quick_check(hook, db)
        if check != ["ok"]:
            problems.append(f"d1: quick_check of the restored database: {check}")
        sampled = differs_in_source = 0
        for table in tables:
            rowids = oracle.sample_rowids(table, SAMPLE, rng)
            if not rowids:
                continue
            columns = oracle.columns(table)
            want = oracle.rows(table, rowids)
            got = _d1_rows(hook, db, table, columns, rowids)
            sampled += len(rowids)
            for rowid in rowids:
                if got.get(rowid) != want[rowid]:
                    problems.append(f"d1: {table} rowid {rowid} restored as {got.get(rowid)}, the dump holds {want[rowid]}")
            if source_db:
                live = _d1_rows(hook, source_db, table, columns, rowids)
                differs_in_source += sum(live.get(r) != want[r] for r in rowids)
        if differs_in_source:
            notes.append(f"d1: {differs_in_source} of {sampled} sampled rows differ in the source now "
                         "(changed or deleted since the capture)")
    finally:
        oracle.close()
    return {"problems": problems, "notes": notes, "tables": counts, "rows_sampled": sampled,
            "rows_differing_in_source": differs_in_source, "quick_check": check,
            "import_seconds": imported.get("seconds"), "statements_split": imported.get("prepared", {}).get("split")}


# ---- Vectorize --------------------------------------------------------------------------------

def _same_vector(a: dict, b: dict) -> bool:
    return (a["id"] == b["id"] and len(a["values"]) == len(b["values"])
            and all(abs(x - y) <= TOLERANCE for x, y in zip(a["values"], b["values"]))
            and (a.get("metadata") or {}) == (b.get("metadata") or {}) and a.get("namespace") == b.get("namespace"))


def _reservoir(lines, n: int, rng: random.Random) -> list[dict]:
    """n records drawn evenly from a stream, holding n in memory."""
    out: list[dict] = []
    seen = 0
    for line in lines:
        if not line.strip():
            continue
        seen += 1
        if len(out) < n:
            out.append(json.loads(line))
        elif (j := rng.randrange(seen)) < n:
            out[j] = json.loads(line)
    return out


def verify_vectorize(hook: VectorizeHook, vectors_gz: Path, manifest: dict, scratch: str, source_index: str | None,
                     rng: random.Random) -> dict:
    problems, notes = [], []
    spec = manifest["vectorize"]
    hook.create_index(scratch, spec["dimensions"], spec["metric"], description="PRISM backup verification (deleted after)")

    mutations = hook.upsert(scratch, read_vectors(vectors_gz))
    count = hook.wait_for_mutation(scratch, mutations[-1], expected_count=spec["vector_count"])["vectorCount"] \
        if mutations else hook.info(scratch)["vectorCount"]
    if count != spec["vector_count"]:
        problems.append(f"vectorize: {count} vectors restored, the manifest says {spec['vector_count']}")
    with gzip.open(vectors_gz, "rb") as fh:
        sample = _reservoir(fh, SAMPLE, rng)
    by_id = {v["id"]: v for v in sample}
    restored = {v["id"]: v for v in hook.get_by_ids(scratch, list(by_id))}
    for vid, want in by_id.items():
        if vid not in restored or not _same_vector(restored[vid], want):
            problems.append(f"vectorize: vector {vid} did not restore as the backup holds it")
    differs = 0
    if source_index:
        try:
            live = {v["id"]: v for v in hook.get_by_ids(source_index, list(by_id))}
            differs = sum(vid not in live or not _same_vector(live[vid], want) for vid, want in by_id.items())
        except CloudflareNotFound:
            differs = len(by_id)
            notes.append(f"vectorize: the source index {source_index} does not exist now")
    if differs:
        notes.append(f"vectorize: {differs} of {len(by_id)} sampled vectors differ in the source now")
    return {"problems": problems, "notes": notes, "vector_count": count, "vectors_sampled": len(by_id),
            "vectors_differing_in_source": differs, "mutations": len(mutations)}


# ---- KV ---------------------------------------------------------------------------------------

def compare_kv(hook: KVHook, kv_gz: Path, namespace_id: str | None, rng: random.Random) -> dict:
    """Sampled keys of the snapshot against the live namespace (informational: KV changes all day)."""
    with gzip.open(kv_gz, "rb") as fh:
        sample = _reservoir(fh, SAMPLE, rng)
    differs = 0
    if namespace_id and sample:
        for rec in sample:
            try:
                value = hook.get_value(namespace_id, rec["key"])
            except CloudflareNotFound:
                differs += 1
                continue
            if "value_b64" in rec and base64.b64decode(rec["value_b64"]) != value:
                differs += 1
    notes = [f"kv: {differs} of {len(sample)} sampled keys differ in the source now"] if differs else []
    return {"problems": [], "notes": notes, "keys_sampled": len(sample), "keys_differing_in_source": differs}


# ---- the whole test -----------------------------------------------------------------------------

def cleanup(token: str, cloudflare_conn_id: str = "cloudflare_default") -> list[str]:
    """Delete the scratch database and index of a run, if they exist. Returns what was deleted."""
    name, deleted = scratch_name(token), []
    d1 = D1Hook(cloudflare_conn_id)
    for db in d1.list_databases(name):
        if db["name"] == name:
            d1.delete_database(db["uuid"])
            deleted.append(f"d1:{name}")
    vec = VectorizeHook(cloudflare_conn_id)
    try:
        vec.delete_index(name)
        deleted.append(f"vectorize:{name}")
    except CloudflareNotFound:
        pass
    return deleted


def restore_and_compare(s3, bucket: str, base: str, manifest: dict, token: str, *, source_db: str | None = None,
                 source_index: str | None = None, source_namespace: str | None = None,
                 cloudflare_conn_id: str = "cloudflare_default") -> dict:
    """Restore the set under `base` into scratch resources and compare. Returns
    {verified, problems, notes, d1, vectorize, kv}; scratch resources are gone afterwards."""
    rng = random.Random(token)
    scratch = scratch_name(token)
    cleanup(token, cloudflare_conn_id)  # a killed earlier try may have left them
    result: dict = {"scratch": scratch, "problems": [], "notes": []}
    kinds = {o["kind"] for o in manifest["objects"]}
    try:
        with tempfile.TemporaryDirectory(prefix="backup-verify-") as tmp:
            work = Path(tmp)
            for kind in ("d1", "vectorize", "kv"):
                if kind not in kinds:
                    continue
                path = work / OBJECTS[kind]
                size, sha256 = download_object(s3, bucket, base + OBJECTS[kind], path)
                listed = next(o for o in manifest["objects"] if o["kind"] == kind)
                if (size, sha256) != (listed["bytes"], listed["sha256"]):
                    result["problems"].append(f"{kind}: s3://{bucket}/{base}{OBJECTS[kind]} is {size} bytes with sha256 "
                                              f"{sha256}, the manifest says {listed['bytes']} bytes, {listed['sha256']}")
                    continue
                try:
                    if kind == "d1":
                        part = verify_d1(D1Hook(cloudflare_conn_id), path, manifest, scratch, source_db, rng, work)
                    elif kind == "vectorize":
                        part = verify_vectorize(VectorizeHook(cloudflare_conn_id), path, manifest, scratch, source_index, rng)
                    else:
                        part = compare_kv(KVHook(cloudflare_conn_id), path, source_namespace, rng)
                except (CloudflareError, sqlite3.Error, ValueError, OSError) as exc:  # a restore that fails is a finding
                    part = {"problems": [f"{kind}: the test restore failed: {type(exc).__name__}: {exc}"], "notes": []}
                path.unlink()
                result["problems"] += part.pop("problems")
                result["notes"] += part.pop("notes")
                result[kind] = part
    finally:
        result["scratch_deleted"] = cleanup(token, cloudflare_conn_id)
    result["verified"] = not result["problems"]
    return result
