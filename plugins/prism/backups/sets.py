"""Backup sets: one dated directory of backup objects in the bucket, with a manifest written last.

    {cadence}/{period}/d1.sql.gz           the D1 dump (native or logical)
    {cadence}/{period}/vectors.ndjson.gz   every vector: id, values, metadata, namespace
    {cadence}/{period}/kv.ndjson.gz        every KV key: expiration, metadata, value (optional)
    {cadence}/{period}/manifest.json       written last; its presence means "complete"

Cadences: daily (YYYYMMDD), monthly (YYYYMM), safety (YYYYMMDDTHHMMSSZ, taken by disaster recovery
before it restores). The exports write under `staging/{cadence}/{period}/{token}/`; `promote` reads
every staged object back, checks its size and sha256 and counts its content, and only then replaces
the dated directory: the old manifest goes first (so a half-replaced set is never complete), then the
old objects, then the copies (hashed again in place), and the new manifest last. S3 has no rename, so
this order is what makes a backup atomic to its readers: no manifest, no backup.

The manifest's `verification` says how far the set has been proven: `checksummed` (every object read
back and hashed), then `verified` or `failed` after a test restore into scratch resources, or
`partial` when D1 and Vectorize restored but KV cannot (a snapshot taken without values).
`restorable` ({d1, vectorize, kv: bool}, with `restorable_reasons`) says what recovery may restore
from the set: written by the manifest's builder from the content, then by the test restore.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_provider_cloudflare.artifacts import hash_s3_object
from airflow_provider_cloudflare.sqldump import inserted_table, split_statements

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
OBJECTS = {"d1": "d1.sql.gz", "vectorize": "vectors.ndjson.gz", "kv": "kv.ndjson.gz"}
PERIOD_FORMATS = {"daily": "%Y%m%d", "monthly": "%Y%m", "safety": "%Y%m%dT%H%M%SZ"}
STAGING = "staging/"
# Accepted as restorable: a test-restored set, or a disaster recovery's own safety backup (read back
# and hashed when taken; there is no time for a test restore in the middle of an incident).
# "partial": the test restore proved some kinds and others cannot restore (KV taken without values);
# recovery may restore the proven kinds only (see `restorable`).
RESTORABLE = {
    "daily": {"verified", "partial"},
    "monthly": {"verified", "partial"},
    "safety": {"verified", "partial", "checksummed"},
}
NO_KV_VALUES = "taken without values; backups.kv_include_values was false"


class BackupSetError(RuntimeError):
    """A backup set is missing, incomplete, unverified or does not match its manifest."""


# ASCII digits only, the whole string: strptime alone takes '2026011', Unicode digits and padding.
PERIOD_PATTERNS = {"daily": r"[0-9]{8}", "monthly": r"[0-9]{6}", "safety": r"[0-9]{8}T[0-9]{6}Z"}


def is_period(cadence: str, period) -> bool:
    """True for a canonical period only: the exact text PERIOD_FORMATS writes for a real date."""
    if not isinstance(period, str) or not re.fullmatch(PERIOD_PATTERNS[cadence], period):
        return False
    try:
        return datetime.strptime(period, PERIOD_FORMATS[cadence]).strftime(PERIOD_FORMATS[cadence]) == period
    except ValueError:
        return False


def prefix(cadence: str, period: str) -> str:
    if cadence not in PERIOD_FORMATS:
        raise ValueError(f"unknown backup cadence {cadence!r}; expected one of {sorted(PERIOD_FORMATS)}")
    if not is_period(cadence, period):
        raise ValueError(
            f"{period!r} is not a {cadence} period (a real date as {PERIOD_FORMATS[cadence]}, ASCII digits)"
        )
    return f"{cadence}/{period}/"


def staging_prefix(cadence: str, period: str, token: str) -> str:
    return f"{STAGING}{prefix(cadence, period)}{token}/"


def run_token(run_id: str) -> str:
    """A short, stable id for a run: its retries reuse the same staging prefix and scratch names."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:10]


def parse_backup_id(value: str) -> tuple[str, str]:
    """'20261101' -> daily, '202611' -> monthly, 'safety-20261129T180000Z' -> safety."""
    for cadence, name in (("daily", value), ("monthly", value), ("safety", value.removeprefix("safety-"))):
        if (cadence == "safety") == value.startswith("safety-") and re.fullmatch(PERIOD_PATTERNS[cadence], name):
            return cadence, name
    raise ValueError(f"{value!r} is not a backup id: use YYYYMMDD (daily), YYYYMM (monthly) or safety-YYYYMMDDTHHMMSSZ")


# ---- reading objects back ---------------------------------------------------------------------


def download_object(s3, bucket: str, key: str, dest: Path) -> tuple[int, str]:
    """Stream an object to `dest`; returns (bytes, sha256)."""
    with open(dest, "wb") as fh:
        sha256, size = hash_s3_object(s3, bucket, key, sink=fh)
    return size, sha256


def count_content(kind: str, path: Path, dimensions: int | None = None) -> dict:
    """Decompress and count a backup object: rows per table, vectors (with their dimensions), keys."""
    with gzip.open(path, "rb") as fh:
        if kind == "d1":
            rows: dict[str, int] = {}
            for stmt in split_statements(line.decode("utf-8") for line in fh):
                table = inserted_table(stmt)
                if table:
                    rows[table] = rows.get(table, 0) + 1
            return {"rows": rows}
        count = 0
        for line in fh:
            if not line.strip():
                continue
            record = json.loads(line)
            if kind == "vectorize" and dimensions is not None and len(record["values"]) != dimensions:
                raise ValueError(f"vector {record['id']} has {len(record['values'])} dimensions, not {dimensions}")
            count += 1
        return {"vectors": count} if kind == "vectorize" else {"keys": count}


def read_vectors(path: Path):
    """The vectors of a vectors.ndjson.gz, as Vectorize upserts take them, streamed."""
    with gzip.open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                vec = {"id": rec["id"], "values": rec["values"], "metadata": rec.get("metadata") or {}}
                if rec.get("namespace") is not None:
                    vec["namespace"] = rec["namespace"]
                yield vec


def expected_content(kind: str, result: dict) -> dict:
    """What a backup operator's result says the object holds, in count_content's terms."""
    if kind == "d1":
        return {"rows": {t: n for t, n in result["rows"].items() if n}}
    if kind == "vectorize":
        return {"vectors": result["vector_count"]}
    return {"keys": result["key_count"]}


def read_back(
    s3, bucket: str, key: str, kind: str, sha256: str, size: int, content: dict | None, dimensions: int | None = None
) -> list[str]:
    """Problems found reading one object back (empty: it is what the backup wrote)."""
    where = f"s3://{bucket}/{key}"
    with tempfile.TemporaryDirectory(prefix="backup-read-") as tmp:
        path = Path(tmp) / "object.gz"
        try:
            found_size, found_sha = download_object(s3, bucket, key, path)
        except Exception as exc:  # noqa: BLE001 - a missing or unreadable object is a finding
            return [f"{kind}: cannot read {where}: {exc}"]
        problems = []
        if found_size != size:
            problems.append(f"{kind}: {where} holds {found_size} bytes, the manifest says {size}")
        if found_sha != sha256:
            problems.append(f"{kind}: {where} has sha256 {found_sha}, the manifest says {sha256}")
        if content is not None and not problems:
            try:
                found = count_content(kind, path, dimensions)
            except (OSError, EOFError, ValueError, UnicodeDecodeError, KeyError) as exc:
                return [f"{kind}: {where} does not decompress and parse: {type(exc).__name__}: {exc}"]
            if found != content:
                problems.append(f"{kind}: {where} holds {found}, the backup counted {content}")
        return problems


# ---- manifests ----------------------------------------------------------------------------------


def build_manifest(cadence: str, period: str, results: dict[str, dict], labels: dict, sources: dict) -> dict:
    """The manifest of a set from its backup operators' results ({kind: result})."""
    objects, out = (
        [],
        {
            "format_version": FORMAT_VERSION,
            "cadence": cadence,
            "period": period,
            "logical_date": labels["logical_date"],
            "captured_at": labels["captured_at"],
            "in_backfill": labels.get("in_backfill", False),
            "sources": sources,
        },
    )
    for kind, result in results.items():
        if result.get("absent"):
            out.setdefault("absent", []).append(kind)
            continue
        objects.append({"kind": kind, "key": OBJECTS[kind], "bytes": result["bytes"], "sha256": result["sha256"]})
        if kind == "d1":
            out["d1"] = {
                "database_id": result["database_id"],
                "time_travel_bookmark": result["at_bookmark"],
                "export_mode": result["mode"],
                "fallback_reason": result.get("fallback_reason"),
                "blocked_seconds": result.get("blocked_seconds"),
                "dump_bytes": result.get("dump_bytes"),
                "tables": expected_content("d1", result)["rows"],
            }
        elif kind == "vectorize":
            out["vectorize"] = {
                "index": result["index"],
                "vector_count": result["vector_count"],
                "dimensions": result["dimensions"],
                "metric": result["metric"],
                "missing_during_export": result.get("missing_during_export", 0),
            }
        elif kind == "kv":
            out["kv"] = {
                "namespace_id": result["namespace_id"],
                "key_count": result["key_count"],
                "values_included": result["values_included"],
                "vanished_during_snapshot": result.get("vanished_during_snapshot", 0),
            }
    out["objects"] = objects
    out["restorable"], out["restorable_reasons"] = _restorable_by_content(out)
    return out


def _restorable_by_content(manifest: dict) -> tuple[dict[str, bool], dict[str, str]]:
    """What the objects of a set can restore at all, before any test restore."""
    kinds = {o["kind"] for o in manifest.get("objects") or []}
    ok, reasons = {}, {}
    for kind in OBJECTS:
        if kind not in kinds:
            reasons[kind] = "absent when the set was taken"
        elif kind == "kv" and (manifest.get("kv") or {}).get("values_included") is not True:
            reasons[kind] = NO_KV_VALUES
        ok[kind] = kind not in reasons
    return ok, reasons


def restorable(manifest: dict) -> tuple[dict[str, bool], dict[str, str]]:
    """({kind: can restore}, {kind: why not}) of a set. Manifests written before the `restorable`
    field are judged by what they record (objects present, KV values included); their KV was never
    test-restored, which the reason of a refused kind says."""
    if isinstance(manifest.get("restorable"), dict):
        ok = {kind: manifest["restorable"].get(kind) is True for kind in OBJECTS}
        reasons = dict(manifest.get("restorable_reasons") or {})
        return ok, {k: reasons.get(k) or "not proven restorable" for k, v in ok.items() if not v}
    return _restorable_by_content(manifest)


def _content_of(manifest: dict, kind: str) -> dict:
    if kind == "d1":
        return {"rows": manifest["d1"]["tables"]}
    if kind == "vectorize":
        return {"vectors": manifest["vectorize"]["vector_count"]}
    return {"keys": manifest["kv"]["key_count"]}


def check_objects(s3, bucket: str, base: str, manifest: dict, count: bool = True) -> list[str]:
    """Read every object of a set under `base` back against the manifest: size, sha256, and (with
    `count`) the content counted again."""
    problems = []
    for obj in manifest["objects"]:
        dims = manifest.get("vectorize", {}).get("dimensions")
        problems += read_back(
            s3,
            bucket,
            base + obj["key"],
            obj["kind"],
            obj["sha256"],
            obj["bytes"],
            _content_of(manifest, obj["kind"]) if count else None,
            dims,
        )
    return problems


def load_manifest(s3, bucket: str, cadence: str, period: str) -> dict | None:
    key = prefix(cadence, period) + MANIFEST
    if not s3.check_for_key(key, bucket):
        return None
    return json.loads(s3.read_key(key, bucket))


def write_manifest(s3, bucket: str, cadence: str, period: str, manifest: dict) -> str:
    key = prefix(cadence, period) + MANIFEST
    s3.load_string(json.dumps(manifest, indent=1, sort_keys=True), key=key, bucket_name=bucket, replace=True)
    return f"s3://{bucket}/{key}"


def set_verification(s3, bucket: str, cadence: str, period: str, status: str, details: dict) -> dict:
    """Record a verification result in the set's manifest (a single PUT, so readers see old or new).
    A `restorable` / `restorable_reasons` in `details` replaces the manifest's own; a failed
    verification without them makes every kind unrestorable."""
    manifest = load_manifest(s3, bucket, cadence, period)
    if manifest is None:
        raise BackupSetError(f"no manifest at s3://{bucket}/{prefix(cadence, period)}: the set is not complete")
    details = dict(details)
    ok, reasons = details.pop("restorable", None), details.pop("restorable_reasons", None)
    if ok is None and status == "failed":
        ok = dict.fromkeys(OBJECTS, False)
        reasons = dict.fromkeys(OBJECTS, "the set failed verification")
    if ok is not None:
        manifest["restorable"], manifest["restorable_reasons"] = ok, reasons or {}
    manifest["verification"] = {"status": status, "at": _now(), **details}
    write_manifest(s3, bucket, cadence, period, manifest)
    return manifest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- promotion -----------------------------------------------------------------------------------


def promote(s3, bucket: str, cadence: str, period: str, staging: str, manifest: dict) -> dict:
    """Check the staged objects, then make them the dated set (see the module doc for the order)."""
    problems = check_objects(s3, bucket, staging, manifest)
    if problems:
        raise BackupSetError(
            "the staged backup does not match what was exported; nothing was promoted:\n  " + "\n  ".join(problems)
        )
    final = prefix(cadence, period)
    client = s3.get_conn()
    replaced = sorted(s3.list_keys(bucket, prefix=final) or [])
    if final + MANIFEST in replaced:
        client.delete_object(Bucket=bucket, Key=final + MANIFEST)  # from here on the old set is not complete
        log.info("replacing the backup at s3://%s/%s", bucket, final)
    rest = [k for k in replaced if k != final + MANIFEST]
    if rest:
        s3.delete_objects(bucket, rest)
    for obj in manifest["objects"]:
        s3.copy_object(staging + obj["key"], final + obj["key"], source_bucket_name=bucket, dest_bucket_name=bucket)
    problems = check_objects(s3, bucket, final, manifest, count=False)
    if problems:
        raise BackupSetError(
            "the promoted copies do not match; the set has no manifest, so it is not complete:\n  "
            + "\n  ".join(problems)
        )
    manifest = {
        **manifest,
        "verification": {
            "status": "checksummed",
            "at": _now(),
            "note": "every object read back; sizes and sha256 match",
        },
    }
    url = write_manifest(s3, bucket, cadence, period, manifest)
    s3.delete_objects(bucket, sorted(s3.list_keys(bucket, prefix=staging) or []))
    log.info("backup complete: %s (%d objects, replaced %d)", url, len(manifest["objects"]), len(replaced))
    return {"manifest": url, "prefix": final, "replaced": replaced, **manifest}


def require_restorable(s3, bucket: str, backup_id: str, recheck: bool = True) -> tuple[str, str, dict]:
    """The manifest of a backup disaster recovery may restore, or a clear error why not. With
    `recheck`, every object is read back against the manifest first (a corrupted object refuses)."""
    cadence, period = parse_backup_id(backup_id)
    manifest = load_manifest(s3, bucket, cadence, period)
    where = f"s3://{bucket}/{prefix(cadence, period)}"
    if manifest is None:
        found = s3.list_keys(bucket, prefix=prefix(cadence, period))
        raise BackupSetError(
            f"no complete backup {backup_id!r}: {where} "
            + ("has objects but no manifest (an interrupted backup)" if found else "does not exist")
        )
    status = (manifest.get("verification") or {}).get("status")
    if status not in RESTORABLE[cadence]:
        raise BackupSetError(
            f"backup {backup_id!r} is {status or 'unverified'}, not {' or '.join(sorted(RESTORABLE[cadence] - {'partial'}))}: "
            f"it has not been proven restorable ({where})"
        )
    if recheck:
        problems = check_objects(s3, bucket, prefix(cadence, period), manifest)
        if problems:
            raise BackupSetError(f"backup {backup_id!r} no longer matches its manifest:\n  " + "\n  ".join(problems))
    return cadence, period, manifest


def list_sets(s3, bucket: str, cadence: str) -> dict[str, dict | None]:
    """{period: manifest or None (objects without a manifest)} for one cadence."""
    out = {}
    for sub in s3.list_prefixes(bucket, prefix=f"{cadence}/", delimiter="/") or []:
        period = sub[len(cadence) + 1 :].rstrip("/")
        if is_period(cadence, period):  # anything else is not a set (backup_inventory.non_periods reports it)
            out[period] = load_manifest(s3, bucket, cadence, period)
    return out


def summary(manifest: dict) -> dict[str, Any]:
    """The figures people look for in a manifest."""
    return {
        "period": manifest["period"],
        "logical_date": manifest["logical_date"],
        "captured_at": manifest["captured_at"],
        "bytes": sum(o["bytes"] for o in manifest["objects"]),
        "status": (manifest.get("verification") or {}).get("status"),
    }
