"""Disaster recovery's restores: D1, Vectorize and KV in place, from a backup set (or D1 from Time Travel).

Every function here changes live resources; `prism_disaster_recovery` calls them only after its
input is checked (prism.recovery.validation) and a safety backup of the current state is complete.
`restore_target` is one `restore.<target>` task.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_cloudflare.errors import CloudflareNotFound
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.backups.sets import OBJECTS, download_object, read_vectors
from prism.settings import connections
from prism.settings.config import runtime_config


def download(request: dict, kind: str, workdir: str | Path) -> Path:
    """The set's object for `kind`, streamed to a file in `workdir`."""
    path = Path(workdir) / OBJECTS[kind]
    download_object(connections.s3(), request["bucket"], request["prefix"] + OBJECTS[kind], path)
    return path


def restore_target(request: dict, kind: str) -> dict:
    """Restore one target (d1, vectorize or kv) as `request` (validation.validate) says; skipped when
    it is not among the request's targets. Returns what was done, for the report."""
    if kind not in request["targets"]:
        raise AirflowSkipException(f"{kind} is not in the targets {request['targets']}")
    if kind == "d1" and request["source"] == "time_travel":
        return restore_d1_time_travel(D1Hook(), request["database_id"], request["timestamp"])
    with tempfile.TemporaryDirectory(prefix=f"dr-{kind}-") as tmp:
        path = download(request, kind, tmp)
        if kind == "d1":
            return restore_d1_from_dump(D1Hook(), request["database_id"], path)
        if kind == "vectorize":
            index = runtime_config()["cloudflare"]["vectorize_index"]
            return restore_vectorize(VectorizeHook(), index, path, request["manifest"]["vectorize"])
        return restore_kv(KVHook(), request["namespace_id"], path)


# ---- D1 ----------------------------------------------------------------------------------------


def restore_d1_from_dump(hook: D1Hook, db: str, dump_gz: Path) -> dict:
    """Every table dropped, then the dump imported (D1Hook.restore_dump)."""
    result = hook.restore_dump(db, dump_gz, replace=True)
    return {
        "dropped_tables": result["dropped_tables"],
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
