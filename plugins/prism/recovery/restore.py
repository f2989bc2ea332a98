"""Disaster recovery: restore D1, Vectorize and KV from a backup set, in place, and prove it.

Every function here changes live resources; `prism_disaster_recovery` calls them only after its
input is checked and a safety backup of the current state is complete.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

from airflow_provider_cloudflare.errors import CloudflareNotFound
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.sqldump import _topological, quote_ident
from prism.backups.sets import read_vectors, restorable
from prism.param_checks import check_backup_date, parse_iso_with_zone, shown

log = logging.getLogger(__name__)
TARGETS = ("d1", "vectorize", "kv")
CONFIRMATION = "RESTORE"
SAMPLE_QUERIES = 5


class RecoveryInputError(ValueError):
    """The disaster recovery's input is wrong; nothing has changed."""


# ---- input ---------------------------------------------------------------------------------------


def check_params(params: dict, now: datetime, time_travel_days: int) -> dict:
    """Cross-field checks the Param schema cannot express, and the calendar: every value is checked
    again here, whatever reached the task. Returns the normalised request."""
    raw_targets = params.get("targets")
    if not isinstance(raw_targets, list) or not all(isinstance(t, str) for t in raw_targets):
        raise RecoveryInputError(f"targets must be a non-empty subset of {list(TARGETS)}, not {shown(raw_targets)}")
    targets = list(dict.fromkeys(raw_targets))
    if not targets or set(targets) - set(TARGETS):
        raise RecoveryInputError(f"targets must be a non-empty subset of {list(TARGETS)}, not {shown(raw_targets)}")
    if params.get("confirm") != CONFIRMATION:
        raise RecoveryInputError(
            f"type {CONFIRMATION} in `confirm` (capital letters, nothing else) to restore over "
            f"the live data; got {shown(params.get('confirm'))}"
        )
    source = params.get("source")
    if source == "s3":
        if not params.get("backup_date"):
            raise RecoveryInputError(
                "source s3 needs backup_date: YYYYMMDD (daily), YYYYMM (monthly) or "
                "safety-YYYYMMDDTHHMMSSZ (the safety backup of an earlier recovery)"
            )
        try:
            backup_id = check_backup_date(params["backup_date"], now)
        except ValueError as exc:
            raise RecoveryInputError(str(exc)) from None
        return {"source": "s3", "backup_id": backup_id, "targets": targets}
    if source == "time_travel":
        if targets != ["d1"]:
            raise RecoveryInputError(
                'Time Travel restores D1 only: set targets to ["d1"], and restore Vectorize '
                "and KV from an S3 backup in a second run"
            )
        raw = params.get("timestamp")
        if not raw:
            raise RecoveryInputError(
                "source time_travel needs timestamp (ISO 8601 with a zone, e.g. 2026-11-28T09:00:00Z)"
            )
        try:
            when = parse_iso_with_zone("timestamp", raw, now)
        except ValueError as exc:
            raise RecoveryInputError(str(exc)) from None
        earliest = now - timedelta(days=time_travel_days)
        if not earliest <= when <= now:
            raise RecoveryInputError(
                f"timestamp {when.isoformat()} is outside the Time Travel window "
                f"({earliest.isoformat(timespec='seconds')} to {now.isoformat(timespec='seconds')}, "
                f"{time_travel_days} days)"
            )
        return {"source": "time_travel", "timestamp": when.isoformat(), "targets": targets}
    raise RecoveryInputError(f"source must be s3 or time_travel, not {shown(source)}")


def check_restorable(cadence: str, period: str, manifest: dict, targets: list[str]) -> dict[str, bool]:
    """Refuse (RecoveryInputError) unless the set can restore every requested target, so a restore
    never starts one target that another cannot finish. Returns the set's `restorable`."""
    ok, why = restorable(manifest)
    cannot = [f"{t} ({why[t]})" for t in targets if not ok.get(t)]
    if cannot:
        raise RecoveryInputError(f"set {cadence}/{period} cannot restore {' or '.join(cannot)}")
    return ok


# ---- D1 ----------------------------------------------------------------------------------------


def user_tables(hook: D1Hook, db: str) -> list[tuple[str, str]]:
    """(name, type) of the tables a dump holds: no SQLite or Cloudflare internals, no FTS shadows."""
    listing = hook.rows(db, "PRAGMA table_list")
    return [
        (r["name"], r["type"])
        for r in listing
        if r["schema"] == "main" and r["type"] in ("table", "virtual") and not r["name"].startswith(("sqlite_", "_cf_"))
    ]


def table_counts(hook: D1Hook, db: str) -> dict[str, int]:
    return {
        name: hook.rows(db, f"SELECT COUNT(*) AS n FROM {quote_ident(name)}")[0]["n"]
        for name, _ in user_tables(hook, db)
    }


def quick_check(hook: D1Hook, db: str) -> list[str]:
    """`PRAGMA quick_check`'s verdict: ["ok"] when the database is sound."""
    return [next(iter(r.values())) for r in hook.rows(db, "PRAGMA quick_check")]


def clear_database(hook: D1Hook, db: str) -> list[str]:
    """Drop every user table (views, indexes and triggers go with them), children before parents,
    in one transaction with foreign keys deferred."""
    tables = user_tables(hook, db)
    views = [r["name"] for r in hook.rows(db, "SELECT name FROM sqlite_master WHERE type = 'view'")]
    parents = {
        name: {r["table"] for r in hook.rows(db, f"PRAGMA foreign_key_list({quote_ident(name)})")}
        for name, kind in tables
        if kind == "table"
    }
    order = list(reversed(_topological([n for n, _ in tables], parents)))
    virtual = [n for n, k in tables if k == "virtual"]
    order = virtual + [n for n in order if n not in virtual]  # a virtual table drops its shadows itself
    statements = ["PRAGMA defer_foreign_keys = true"] + [f"DROP VIEW IF EXISTS {quote_ident(v)}" for v in views]
    statements += [f"DROP TABLE IF EXISTS {quote_ident(t)}" for t in order]
    if len(statements) > 1:
        hook.query(db, ";\n".join(statements) + ";", read_only=False)
    return order


def restore_d1_from_dump(hook: D1Hook, db: str, dump_gz: Path, workdir: Path) -> dict:
    sql = workdir / "restore.sql"
    with gzip.open(dump_gz, "rb") as src, open(sql, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    dropped = clear_database(hook, db)
    result = hook.import_sql(db, sql)
    return {
        "dropped_tables": dropped,
        "import_seconds": result.get("seconds"),
        "prepared": result.get("prepared"),
        "at_bookmark": result.get("at_bookmark"),
    }


def restore_d1_time_travel(hook: D1Hook, db: str, timestamp: str) -> dict:
    result = hook.restore(db, timestamp=timestamp)
    return {
        "bookmark": result.get("bookmark"),
        "previous_bookmark": result.get("previous_bookmark"),
        "message": result.get("message"),
    }


# ---- Vectorize ----------------------------------------------------------------------------------


def restore_vectorize(hook: VectorizeHook, index: str, vectors_gz: Path, spec: dict) -> dict:
    """Recreate the index with the manifest's dimensions and metric and upsert every vector
    (5,000 a request), then wait until Vectorize has applied them all."""
    try:
        hook.delete_index(index)
        dropped = True
    except CloudflareNotFound:
        dropped = False
    hook.create_index(index, spec["dimensions"], spec["metric"], description="restored by prism_disaster_recovery")
    mutations = hook.upsert(index, read_vectors(vectors_gz))
    info = (
        hook.wait_for_mutation(index, mutations[-1], expected_count=spec["vector_count"])
        if mutations
        else hook.info(index)
    )
    return {
        "index": index,
        "dropped_existing": dropped,
        "vectors": info["vectorCount"],
        "mutations": len(mutations),
        "dimensions": spec["dimensions"],
        "metric": spec["metric"],
    }


# ---- KV ----------------------------------------------------------------------------------------


def restore_kv(hook: KVHook, namespace_id: str, kv_gz: Path) -> dict:
    """Write every key of the snapshot back, then delete the keys the snapshot does not have, so the
    namespace equals the snapshot (keys written since are in the safety backup)."""
    with gzip.open(kv_gz, "rb") as fh:  # a key without a value stops the restore before the first write
        for line in fh:
            if line.strip() and "value_b64" not in (rec := json.loads(line)):
                raise ValueError(
                    f"the snapshot has no value for {rec['key']!r} (taken without values): "
                    "KV cannot be restored from it; nothing was written"
                )
    with gzip.open(kv_gz, "rb") as fh:
        written = hook.restore_snapshot(namespace_id, fh)
    keep = set()
    with gzip.open(kv_gz, "rb") as fh:
        for line in fh:
            if line.strip():
                keep.add(json.loads(line)["key"])
    extra = [k["name"] for k in hook.list_keys(namespace_id) if k["name"] not in keep]
    deleted = hook.bulk_delete(namespace_id, extra) if extra else 0
    return {**written, "deleted_extra_keys": deleted}


# ---- proof ----------------------------------------------------------------------------------------


def sample_vectors(vectors_gz: Path, n: int = SAMPLE_QUERIES) -> list[dict]:
    """The first n vectors of a backup (enough to prove queries find them)."""
    out = []
    for vec in read_vectors(vectors_gz):
        out.append(vec)
        if len(out) == n:
            break
    return out


def query_back(hook: VectorizeHook, index: str, samples: list[dict]) -> list[str]:
    """Problems: a sampled vector that does not come back as its own best match."""
    problems = []
    for vec in samples:
        kwargs = {"namespace": vec["namespace"]} if vec.get("namespace") else {}
        matches = hook.query(index, vec["values"], top_k=1, **kwargs).get("matches", [])
        if not matches or (matches[0]["id"] != vec["id"] and matches[0].get("score", 0) < 0.9999):
            problems.append(f"vectorize: querying with vector {vec['id']} found {matches[:1]}, not itself")
    return problems


def report(request: dict, safety: dict, results: dict, figures: dict, problems: list[str], run_id: str) -> str:
    """The recovery's Markdown report: what was restored from where, the proof, and the undo."""
    source = (
        f"backup set s3://{request['bucket']}/{request['prefix']} (logical date "
        f"{request['manifest']['logical_date']}, captured {request['manifest']['captured_at']})"
        if request["source"] == "s3"
        else f"D1 Time Travel at {request['timestamp']} (bookmark {request.get('bookmark')})"
    )
    lines = [
        f"# PRISM disaster recovery: {run_id}",
        "",
        f"Status: **{'FAILED' if problems else 'restored and verified'}**",
        f"Source: {source}",
        f"Targets: {', '.join(request['targets'])}",
        "",
        "## Undo",
        "",
    ]
    if safety.get("period"):
        lines.append(
            f"- The state before this restore is the safety backup `safety-{safety['period']}` "
            f"({safety.get('manifest')}): trigger `prism_disaster_recovery` with that as `backup_date`."
        )
    tt = (results.get("d1") or {}).get("previous_bookmark")
    if tt:
        lines.append(f"- D1 alone can also go back with Time Travel to bookmark `{tt}` (before this restore).")
    lines += ["", "## Restored", ""] + [
        f"- {kind}: {json.dumps(result, default=str)}" for kind, result in results.items()
    ]
    lines += ["", "## Verification", ""]
    for table, rows in sorted((figures.get("d1_tables") or {}).items()):
        lines.append(f"- D1 {table}: {rows:,} rows")
    for key in ("d1_quick_check", "vectors", "vectors_queried_back", "kv_keys"):
        if key in figures:
            lines.append(f"- {key}: {figures[key]}")
    lines.append(f"- Worker /health: {figures.get('worker_health', {}).get('status')}")
    lines += ["", "## Problems", ""] + ([f"- {p}" for p in problems] or ["- none"])
    return "\n".join(lines) + "\n"
