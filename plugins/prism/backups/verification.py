"""Prove a backup set restores: load it into scratch resources in the same account and compare.

* **D1**: a new database `prism-verify-<token>` gets the dump through D1's import flow (the same path
  a disaster recovery takes). Its row counts per table must equal the manifest, `PRAGMA quick_check`
  must say ok, and sampled rows must equal the dump's own: the dump is also loaded into a local
  SQLite file (the oracle), so the comparison needs no trust in the export.
* **Vectorize**: a new index with the manifest's dimensions and metric gets every vector (5,000 a
  request); its count must equal the manifest, and sampled vectors must equal the file's (values
  within 1e-6, metadata and namespace equal).
* **KV**: a new namespace titled `prism-verify-<token>` gets every key through the restore's own
  path (bulk writes, base64 values, metadata, expiration). The number of keys listed must equal the
  snapshot's (less keys that expire meanwhile), and keys, values, metadata and expiration must equal
  the snapshot's for every key up to 1,000 keys, else for 100 drawn evenly. A snapshot taken without
  values cannot restore KV: the set is then `partial` (D1 and Vectorize proven), never `verified`.
* **The source**: sampled rows, vectors and KV keys are also looked up in the live resources. The
  source keeps changing after the capture, so a difference there is reported, not failed on.

The result says what the set can restore (`restorable`, with reasons) and its status: `verified`
(all three), `partial` (some kinds cannot restore by how they were taken) or `failed`.
Scratch resources are deleted in a `finally`, and `cleanup` deletes them again by name for a task
whose worker died (the names derive from the run, so a teardown task can find them).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from airflow_provider_cloudflare.errors import CloudflareError, CloudflareNotFound
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.sqldump import quote_ident, split_statements
from prism.backups.sets import NO_KV_VALUES, OBJECTS, download_object, read_vectors
from prism.recovery.verification import quick_check, table_counts

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "prism-verify-"
SAMPLE = 5  # rows per table, and vectors / keys in all
TOLERANCE = 1e-6
KV_COMPARE_ALL = 1000  # up to this many keys, every key is compared; above, KV_SAMPLE of them
KV_SAMPLE = 100
KV_PROBLEMS_SHOWN = 20
KV_SETTLE_SECONDS, KV_SETTLE_STEP = 60, 10  # KV lists fresh writes late, at most about a minute
_LIST_TABLES = (
    "SELECT name, type FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'virtual') "
    "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name"
)


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
        return dict(self.db.execute(_LIST_TABLES))

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


def verify_d1(
    hook: D1Hook, dump_gz: Path, manifest: dict, scratch: str, source_db: str | None, rng: random.Random, workdir: Path
) -> dict:
    problems, notes = [], []
    db = hook.create_database(scratch)["uuid"]
    imported = hook.restore_dump(db, dump_gz)  # the same import a disaster recovery runs
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
                problems.append(
                    f"d1: {table} holds {in_file} rows in the dump, the manifest says {expected.get(table, 0)}"
                )
        for table in set(expected) - set(tables):
            problems.append(f"d1: the manifest lists {table} ({expected[table]} rows), the restore has no such table")
        check = quick_check(hook, db)
        if check != ["ok"]:
            problems.append(f"d1: quick_check of the restored database: {'; '.join(map(str, check))}")
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
                    problems.append(
                        f"d1: {table} rowid {rowid} restored as {got.get(rowid)}, the dump holds {want[rowid]}"
                    )
            if source_db:
                live = _d1_rows(hook, source_db, table, columns, rowids)
                differs_in_source += sum(live.get(r) != want[r] for r in rowids)
        if differs_in_source:
            notes.append(
                f"d1: {differs_in_source} of {sampled} sampled rows differ in the source now "
                "(changed or deleted since the capture)"
            )
    finally:
        oracle.close()
    return {
        "problems": problems,
        "notes": notes,
        "tables": counts,
        "rows_sampled": sampled,
        "rows_differing_in_source": differs_in_source,
        "quick_check": check,
        "import_seconds": imported.get("seconds"),
        "statements_split": imported.get("prepared", {}).get("split"),
    }


# ---- Vectorize --------------------------------------------------------------------------------


def _same_vector(a: dict, b: dict) -> bool:
    return (
        a["id"] == b["id"]
        and len(a["values"]) == len(b["values"])
        and all(abs(x - y) <= TOLERANCE for x, y in zip(a["values"], b["values"]))
        and (a.get("metadata") or {}) == (b.get("metadata") or {})
        and a.get("namespace") == b.get("namespace")
    )


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


def verify_vectorize(
    hook: VectorizeHook, vectors_gz: Path, manifest: dict, scratch: str, source_index: str | None, rng: random.Random
) -> dict:
    problems, notes = [], []
    spec = manifest["vectorize"]
    hook.create_index(
        scratch, spec["dimensions"], spec["metric"], description="PRISM backup verification (deleted after)"
    )

    mutations = hook.upsert(scratch, read_vectors(vectors_gz))
    count = (
        hook.wait_for_mutation(scratch, mutations[-1], expected_count=spec["vector_count"])["vectorCount"]
        if mutations
        else hook.info(scratch)["vectorCount"]
    )
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
    return {
        "problems": problems,
        "notes": notes,
        "vector_count": count,
        "vectors_sampled": len(by_id),
        "vectors_differing_in_source": differs,
        "mutations": len(mutations),
    }


# ---- KV ---------------------------------------------------------------------------------------


def _kv_digest(rec: dict) -> dict:
    """A snapshot record without its value (which may be 25 MiB): key, expiration, metadata, value hash."""
    out = {"key": rec["key"], "expiration": rec.get("expiration"), "metadata": rec.get("metadata")}
    if "value_b64" in rec:
        value = base64.b64decode(rec["value_b64"], validate=True)
        out["value"] = (len(value), hashlib.sha256(value).hexdigest())
    return out


def read_kv_snapshot(kv_gz: Path, rng: random.Random) -> dict:
    """One pass over a KV snapshot: its record count, the keys without a value, and the records to
    compare (every one up to KV_COMPARE_ALL, else KV_SAMPLE drawn evenly), as digests."""
    pool: list[dict] = []
    records = without_values = 0
    with gzip.open(kv_gz, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            records += 1
            without_values += "value_b64" not in rec
            if len(pool) < KV_COMPARE_ALL:
                pool.append(_kv_digest(rec))
            elif (j := rng.randrange(records)) < KV_COMPARE_ALL:
                pool[j] = _kv_digest(rec)
    every = records <= KV_COMPARE_ALL
    sample = pool if every else rng.sample(pool, KV_SAMPLE)  # a uniform draw of a uniform draw
    return {"records": records, "without_values": without_values, "every_key": every, "sample": sample}


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def compare_kv_namespace(
    hook: KVHook, namespace_id: str, kv_gz: Path, snapshot: dict, *, restored_at: float, skipped_expired: int = 0
) -> dict:
    """Problems where a namespace restored from `kv_gz` at `restored_at` differs from it: the count of
    every key (keys the restore skipped or that expired since allowed for), and keys, values,
    metadata and expiration of `snapshot`'s sample (every key when small)."""
    problems: list[str] = []
    want = {r["key"]: r for r in snapshot["sample"]}
    seen: set[str] = set()
    count = 0
    for item in hook.list_keys(namespace_id):
        count += 1
        name = item["name"]
        rec = want.get(name)
        if rec is None:
            if snapshot["every_key"]:
                problems.append(f"kv: key {_short(name)} is in the restore, not in the snapshot")
            continue
        seen.add(name)
        if item.get("metadata") != rec["metadata"]:
            problems.append(
                f"kv: key {_short(name)} restored with metadata {_short(item.get('metadata'))}, "
                f"the snapshot holds {_short(rec['metadata'])}"
            )
        if item.get("expiration") != rec["expiration"]:
            problems.append(
                f"kv: key {_short(name)} restored with expiration {item.get('expiration')}, "
                f"the snapshot holds {rec['expiration']}"
            )
    listed_at = time.time()

    def gone_by_expiry(expiration) -> bool:  # skipped by the restore, or expired since
        return expiration is not None and expiration <= listed_at + 60

    for name, rec in want.items():
        if name not in seen and not gone_by_expiry(rec["expiration"]):
            problems.append(f"kv: key {_short(name)} is in the snapshot but was not restored")
    values = hook.get_values(namespace_id, sorted(seen)) if seen else {}
    for name in sorted(seen):
        got, (size, digest) = values.get(name), want[name]["value"]
        if got is None:
            if not gone_by_expiry(want[name]["expiration"]):
                problems.append(f"kv: key {_short(name)} is listed but has no value")
        elif (len(got), hashlib.sha256(got).hexdigest()) != (size, digest):
            problems.append(
                f"kv: key {_short(name)} restored with a different value ({len(got)} bytes, sha256 "
                f"{hashlib.sha256(got).hexdigest()[:12]}), the snapshot holds {size} bytes, sha256 {digest[:12]}"
            )

    most = snapshot["records"] - skipped_expired
    if count != most:
        # Keys expiring between the restore and the listing may be gone: count them, allow for them.
        expired_since = 0
        with gzip.open(kv_gz, "rb") as fh:
            for line in fh:
                if line.strip():
                    exp = json.loads(line).get("expiration")
                    expired_since += exp is not None and restored_at + 60 <= exp <= listed_at
        if not most - expired_since <= count <= most:
            problems.insert(
                0,
                f"kv: {count} keys restored, the snapshot holds {snapshot['records']} "
                f"({skipped_expired} skipped as expiring, {expired_since} expired since)",
            )
    if len(problems) > KV_PROBLEMS_SHOWN:  # an alert names some keys, not a thousand
        problems = problems[: KV_PROBLEMS_SHOWN - 1] + [
            f"kv: ... and {len(problems) - KV_PROBLEMS_SHOWN + 1} more differences"
        ]
    return {"problems": problems, "keys_restored": count, "keys_compared": len(want)}


def verify_kv(
    hook: KVHook, kv_gz: Path, manifest: dict, scratch: str, source_namespace: str | None, rng: random.Random
) -> dict:
    """Restore the snapshot into a scratch namespace and compare (see compare_kv_namespace); a snapshot
    without values cannot restore KV, which makes the set `partial`, not failed."""
    spec = manifest.get("kv") or {}
    snap = read_kv_snapshot(kv_gz, rng)
    out = {
        "problems": [],
        "notes": [],
        "restorable": True,
        "keys_in_snapshot": snap["records"],
        "compared_every_key": snap["every_key"],
        "keys_sampled": len(snap["sample"]),
    }
    if snap["records"] != spec.get("key_count"):
        out["problems"].append(
            f"kv: the snapshot holds {snap['records']} keys, the manifest says {spec.get('key_count')}"
        )
    if spec.get("values_included") is not True:
        out.update(restorable=False, restorable_reason=NO_KV_VALUES)
        out["notes"].append(
            f"kv: not test-restored: the snapshot was {NO_KV_VALUES}, so KV cannot be restored from this set"
        )
    elif snap["without_values"]:
        out["problems"].append(
            f"kv: {snap['without_values']} of {snap['records']} keys in the snapshot have no value, "
            "though the manifest says values were included"
        )
    if out["restorable"] and not out["problems"]:
        ns = hook.create_namespace(scratch)["id"]
        restored_at = time.time()
        with gzip.open(kv_gz, "rb") as fh:
            stats = hook.restore_snapshot(ns, fh, now=restored_at)
        compared = compare_kv_namespace(
            hook, ns, kv_gz, snap, restored_at=restored_at, skipped_expired=stats["skipped_expired"]
        )
        # KV is eventually consistent: a fresh write may list late. Look again before calling it a difference.
        deadline = time.monotonic() + KV_SETTLE_SECONDS
        while compared["problems"] and time.monotonic() < deadline:
            time.sleep(KV_SETTLE_STEP)
            compared = compare_kv_namespace(
                hook, ns, kv_gz, snap, restored_at=restored_at, skipped_expired=stats["skipped_expired"]
            )
        out["problems"] += compared.pop("problems")
        out.update(compared, written=stats["written"], skipped_expired=stats["skipped_expired"])
    differs = 0
    if source_namespace and snap["sample"]:
        probe = snap["sample"][:SAMPLE]
        live = hook.get_values(source_namespace, [r["key"] for r in probe])
        for rec in probe:
            got = live.get(rec["key"])
            differs += got is None or ("value" in rec and (len(got), hashlib.sha256(got).hexdigest()) != rec["value"])
        if differs:
            out["notes"].append(f"kv: {differs} of {len(probe)} sampled keys differ in the source now")
    out["keys_differing_in_source"] = differs
    return out


# ---- the whole test -----------------------------------------------------------------------------


def cleanup(token: str, cloudflare_conn_id: str = "cloudflare_default") -> list[str]:
    """Delete the scratch database, index and KV namespace of a run, if they exist. Returns what was deleted."""
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
    kv = KVHook(cloudflare_conn_id)
    for ns in kv.list_namespaces():
        if ns["title"] == name:
            kv.delete_namespace(ns["id"])
            deleted.append(f"kv:{name}")
    return deleted


def restore_and_compare(
    s3,
    bucket: str,
    base: str,
    manifest: dict,
    token: str,
    *,
    source_db: str | None = None,
    source_index: str | None = None,
    source_namespace: str | None = None,
    cloudflare_conn_id: str = "cloudflare_default",
) -> dict:
    """Restore the set under `base` into scratch resources and compare. Returns {status, verified,
    restorable, restorable_reasons, problems, notes, d1, vectorize, kv}; scratch resources are gone
    afterwards."""
    rng = random.Random(token)
    scratch = scratch_name(token)
    cleanup(token, cloudflare_conn_id)  # a killed earlier try may have left them
    result: dict = {"scratch": scratch, "problems": [], "notes": []}
    kinds = {o["kind"] for o in manifest["objects"]}
    proven: set[str] = set()
    reasons = {kind: "absent when the set was taken" for kind in OBJECTS if kind not in kinds}
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
                    result["problems"].append(
                        f"{kind}: s3://{bucket}/{base}{OBJECTS[kind]} is {size} bytes with sha256 "
                        f"{sha256}, the manifest says {listed['bytes']} bytes, {listed['sha256']}"
                    )
                    reasons[kind] = "its object does not match the manifest (changed in the bucket)"
                    path.unlink()
                    continue
                try:
                    if kind == "d1":
                        part = verify_d1(D1Hook(cloudflare_conn_id), path, manifest, scratch, source_db, rng, work)
                    elif kind == "vectorize":
                        part = verify_vectorize(
                            VectorizeHook(cloudflare_conn_id), path, manifest, scratch, source_index, rng
                        )
                    else:
                        part = verify_kv(KVHook(cloudflare_conn_id), path, manifest, scratch, source_namespace, rng)
                except (
                    CloudflareError,
                    sqlite3.Error,
                    ValueError,
                    OSError,
                ) as exc:  # a restore that fails is a finding
                    part = {"problems": [f"{kind}: the test restore failed: {type(exc).__name__}: {exc}"], "notes": []}
                path.unlink()
                if part["problems"]:
                    reasons.setdefault(kind, part["problems"][0].removeprefix(f"{kind}: "))
                elif part.get("restorable") is False:
                    reasons.setdefault(kind, part.get("restorable_reason") or "cannot restore")
                else:
                    proven.add(kind)
                result["problems"] += part.pop("problems")
                result["notes"] += part.pop("notes")
                result[kind] = part
    finally:
        result["scratch_deleted"] = cleanup(token, cloudflare_conn_id)
    # A kind is restorable only when its test restore ran and found nothing; any problem fails the set.
    result["restorable"] = {kind: kind in proven and not result["problems"] for kind in OBJECTS}
    result["restorable_reasons"] = {
        kind: reasons.get(kind) or "the set failed verification" for kind, ok in result["restorable"].items() if not ok
    }
    result["status"] = (
        "failed"
        if result["problems"] or not proven
        else "verified"
        if all(result["restorable"].values())
        else "partial"
    )
    result["verified"] = result["status"] == "verified"
    return result
