"""The full index rebuild's steps around its operators (prism_index_rebuild): the typed confirmation,
the index's configuration recorded and the pre-rebuild backup read back before anything is cleared,
the Vectorize index recreated as it was configured, and the counts checked after the reindex.
"""

from __future__ import annotations

import re
import time

from airflow.sdk.exceptions import AirflowException

from airflow_provider_cloudflare.artifacts import hash_s3_object
from airflow_provider_cloudflare.errors import CloudflareNotFound
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.maintenance.indexing import missing_indexer
from prism.param_checks import ONE_LINE_PATTERN, shown
from prism.refusals import refuse
from prism.settings import connections
from prism.settings.config import runtime_config

CONFIRMATION = "REBUILD"
REASON_MAX = 500
COUNT_WAIT = 120  # seconds: the embedders waited for their writes; this allows for a lagging count


def validate(params: dict) -> list[str]:
    """The typed confirmation, the reason and the config; the repos to reindex. Refuses before
    anything changes, also when no indexer is configured: a rebuild that cannot reindex must not clear."""
    if params.get("confirm") != CONFIRMATION:
        raise refuse(
            "to rebuild",
            f"type {CONFIRMATION} in `confirm` (exactly that word, in capital letters: it is case-sensitive) "
            f"to clear and rebuild the index; got {shown(params.get('confirm'))}",
        )
    reason = params.get("reason")
    if reason is not None and not (
        isinstance(reason, str) and len(reason) <= REASON_MAX and re.search(ONE_LINE_PATTERN, reason)
    ):
        raise refuse(
            "to rebuild", f"reason must be one line of text, at most {REASON_MAX} characters; got {shown(reason)}"
        )
    config = runtime_config()  # a bad config fails here too, before anything changes
    missing = missing_indexer(config)
    if missing:
        raise refuse("to rebuild", missing)
    cf = config["cloudflare"]
    print(
        f"rebuilding {cf['d1_database']} documents and Vectorize {cf['vectorize_index']} "
        f"({cf['vectorize_dimensions']} dims, {cf['vectorize_metric']}) for {config['indexing']['repos']}; "
        f"reason: {shown(reason) if reason else '(none given)'}"
    )
    return config["indexing"]["repos"]


def record_index() -> dict:
    """The configured index's configuration, description and metadata indexes, as they are now."""
    index = runtime_config()["cloudflare"]["vectorize_index"]
    hook = VectorizeHook()
    info = hook.get_index(index)
    return {
        "config": info["config"],
        "description": info.get("description") or "",
        "metadata_indexes": hook.list_metadata_indexes(index),
    }


def verify_backup(results: dict[str, dict]) -> dict:
    """Read each backup object ({name: a backup operator's result}) back from S3: its sha256 and size
    must be what the backup wrote, else nothing is rebuilt."""
    s3 = connections.s3()
    checked = {}
    for name, result in results.items():
        sha256, size = hash_s3_object(s3, result["bucket"], result["key"])
        if (sha256, size) != (result["sha256"], result["bytes"]):
            raise AirflowException(
                f"s3://{result['bucket']}/{result['key']} reads back as {size} bytes, sha256 "
                f"{sha256}; the backup wrote {result['bytes']} bytes, sha256 "
                f"{result['sha256']}. Not rebuilding without a verified backup."
            )
        checked[name] = {"uri": f"s3://{result['bucket']}/{result['key']}", "bytes": size, "sha256": result["sha256"]}
    print(f"pre-rebuild backup verified: {checked}")
    return checked


def recreate_index(recorded: dict) -> dict:
    """Delete the configured index and create it again with the config's dimensions and metric, the
    recorded description and metadata indexes."""
    cf = runtime_config()["cloudflare"]
    index, dimensions, metric = cf["vectorize_index"], cf["vectorize_dimensions"], cf["vectorize_metric"]
    hook = VectorizeHook()
    try:
        hook.delete_index(index)
    except CloudflareNotFound:  # a retry after the delete went through
        pass
    created = hook.create_index(index, dimensions, metric, recorded["description"])
    for meta in recorded["metadata_indexes"]:
        hook.create_metadata_index(index, meta["propertyName"], meta["indexType"])
    info = hook.info(index)
    print(
        f"recreated {index}: {created['config']}, metadata indexes {recorded['metadata_indexes']}, "
        f"{info['vectorCount']} vectors"
    )
    return {"config": created["config"], "vector_count": info["vectorCount"]}


def verify_counts(counts: dict, wait: float = COUNT_WAIT) -> dict:
    """counts.sql's row against the index: as many vectors as chunks in D1 and no chunk without a
    vector, waiting up to `wait` seconds for the index's count to catch up."""
    index = runtime_config()["cloudflare"]["vectorize_index"]
    row = counts["rows"][0]
    hook = VectorizeHook()
    deadline = time.monotonic() + wait
    while (vectors := hook.info(index)["vectorCount"]) != row["chunks"] and time.monotonic() < deadline:
        time.sleep(2)
    result = {**row, "vectors": vectors}
    print(f"after the rebuild: {result}")
    if vectors != row["chunks"] or row["chunks_without_vector"]:
        raise AirflowException(
            f"rebuild incomplete: {row['chunks']} chunks in D1 ({row['chunks_without_vector']} "
            f"without a vector), {vectors} vectors in {index}"
        )
    return result
