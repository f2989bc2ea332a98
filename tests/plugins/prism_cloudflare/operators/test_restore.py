"""Restore operators load what the backup operators wrote: D1 through D1's import, vectors through
upserts at 5,000 a request, KV through bulk writes; the long waits can be deferred."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from airflow.sdk.exceptions import TaskDeferred

from prism_cloudflare.hooks.d1 import D1Hook
from prism_cloudflare.hooks.kv import KVHook
from prism_cloudflare.hooks.vectorize import VectorizeHook
from prism_cloudflare.operators.backup import D1BackupOperator, KVBackupOperator, VectorizeBackupOperator
from prism_cloudflare.operators.restore import D1ImportOperator, KVLoadOperator, VectorizeLoadOperator

BUCKET = "prism-backups"
TABLES = ("repos", "documents", "document_chunks", "document_relationships", "chunks_fts", "cache_metadata",
          "usage_log", "security_events", "query_log")


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_deferred(op, context):
    """Run an operator the way Airflow does when it defers: trigger in the loop, then execute_complete."""
    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        async def first_event():
            async for event in deferred.trigger.run():
                return event.payload
        return getattr(op, deferred.method_name)(context, asyncio.run(first_event()), **(deferred.kwargs or {}))


@pytest.fixture
def scratch_db(cf):
    hook = D1Hook()
    db = hook.create_database(name("restore"))["uuid"]
    yield db
    hook.delete_database(db)


@pytest.mark.parametrize("deferrable", [False, True])
def test_d1_backup_imports_back_table_for_table(cf, s3, scratch_db, deferrable):
    key = f"tests/{uuid.uuid4().hex}/d1.sql.gz"
    D1BackupOperator(task_id="backup", database="claudes-friend-db", bucket=BUCKET, key=key).execute({})
    result = run_deferred(D1ImportOperator(task_id="restore", database_id=scratch_db, bucket=BUCKET, key=key,
                                           deferrable=deferrable, poll_interval=0.2), {})
    assert result["num_queries"] > 3000 and result["final_bookmark"]
    hook = D1Hook()
    for table in TABLES:
        count = f"SELECT COUNT(*) AS n FROM {table}"
        assert hook.rows(scratch_db, count) == hook.rows(cf.d1_id, count), table


@pytest.mark.parametrize("deferrable", [False, True])
def test_vectors_load_back_and_query_to_themselves(cf, s3, deferrable):
    key = f"tests/{uuid.uuid4().hex}/vectors.ndjson.gz"
    backup = VectorizeBackupOperator(task_id="backup", index="claudes-companion", bucket=BUCKET, key=key).execute({})
    hook = VectorizeHook()
    index = name("restore")
    hook.create_index(index, backup["dimensions"], backup["metric"])
    try:
        result = run_deferred(VectorizeLoadOperator(task_id="load", index=index, bucket=BUCKET, key=key,
                                                    deferrable=deferrable, poll_interval=0.2), {})
        assert result == {"index": index, "vectors": 615, "mutations": 1, "vector_count": 615}
        original = next(hook.get_by_ids("claudes-companion", ["chk-0000042-01"]))
        match = hook.query(index, original["values"], top_k=1, return_metadata="all")["matches"][0]
        assert match["id"] == "chk-0000042-01" and match["score"] == pytest.approx(1.0, abs=1e-5)
        assert match["metadata"] == original["metadata"]
    finally:
        hook.delete_index(index)


def test_kv_snapshot_loads_back_and_a_keys_only_snapshot_is_refused(cf, s3):
    key = f"tests/{uuid.uuid4().hex}/kv.ndjson.gz"
    KVBackupOperator(task_id="backup", namespace="prism-cache", bucket=BUCKET, key=key).execute({})
    hook = KVHook()
    ns = hook.create_namespace(name("restore"))["id"]
    try:
        result = KVLoadOperator(task_id="load", namespace_id=ns, bucket=BUCKET, key=key).execute({})
        assert result["written"] == 203 and result["skipped_expired"] == 0
        source = hook.find_namespace("prism-cache")
        assert list(hook.list_keys(ns)) == list(hook.list_keys(source))
        assert hook.get_value(ns, "blob:thumbnail-1") == hook.get_value(source, "blob:thumbnail-1")
        keys_only = f"tests/{uuid.uuid4().hex}/kv-keys.ndjson.gz"
        KVBackupOperator(task_id="keys", namespace="prism-cache", bucket=BUCKET, key=keys_only, include_values=False).execute({})
        with pytest.raises(ValueError, match="taken without values"):
            KVLoadOperator(task_id="load2", namespace_id=ns, bucket=BUCKET, key=keys_only).execute({})
    finally:
        hook.delete_namespace(ns)
