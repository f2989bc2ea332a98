"""Test restores into scratch resources of the shared demo localflare (the demo data is only read)."""

from __future__ import annotations

import json
import uuid

import pytest

from prism_cloudflare.backup_sets import build_manifest, prefix, promote, staging_prefix
from prism_cloudflare.hooks.d1 import D1Hook
from prism_cloudflare.hooks.vectorize import VectorizeHook
from prism_cloudflare.operators.backup import D1BackupOperator, KVBackupOperator, VectorizeBackupOperator
from prism_cloudflare.scratch_restore import SCRATCH_PREFIX, cleanup, restore_and_compare

LABELS = {"logical_date": "2026-11-01T09:00:00+00:00", "captured_at": "2026-11-29T10:00:00+00:00"}


@pytest.fixture
def demo_set(cf, s3):
    """A real set of the demo data, made by the backup operators and promoted."""
    bucket = f"scratch-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    staging = staging_prefix("daily", "20261101", "t")
    results = {
        "d1": D1BackupOperator(task_id="d1", database="claudes-friend-db", bucket=bucket, key=staging + "d1.sql.gz").execute({}),
        "vectorize": VectorizeBackupOperator(task_id="v", index="claudes-companion", bucket=bucket,
                                             key=staging + "vectors.ndjson.gz").execute({}),
        "kv": KVBackupOperator(task_id="kv", namespace="prism-cache", bucket=bucket, key=staging + "kv.ndjson.gz").execute({}),
    }
    manifest = promote(s3, bucket, "daily", "20261101", staging, build_manifest("daily", "20261101", results, LABELS, {}))
    return bucket, manifest


def scratch_left() -> list[str]:
    dbs = [d["name"] for d in D1Hook().list_databases() if d["name"].startswith(SCRATCH_PREFIX)]
    return dbs + [i["name"] for i in VectorizeHook().list_indexes() if i["name"].startswith(SCRATCH_PREFIX)]


def test_a_good_set_restores_and_compares_equal(cf, s3, demo_set):
    bucket, manifest = demo_set
    d1 = D1Hook()
    result = restore_and_compare(s3, bucket, prefix("daily", "20261101"), manifest, uuid.uuid4().hex[:8],
                                 source_db=d1.find_database("claudes-friend-db"), source_index="claudes-companion",
                                 source_namespace=None)
    assert result["verified"], result["problems"]
    assert result["d1"]["tables"] == {t: n for t, n in manifest["d1"]["tables"].items()} | {
        t: 0 for t in result["d1"]["tables"] if t not in manifest["d1"]["tables"]}
    assert result["d1"]["quick_check"] == ["ok"] and result["d1"]["rows_sampled"] > 20
    assert result["d1"]["rows_differing_in_source"] == 0  # the demo data did not change meanwhile
    assert result["vectorize"]["vector_count"] == manifest["vectorize"]["vector_count"]
    assert result["vectorize"]["vectors_sampled"] == 5 and result["vectorize"]["vectors_differing_in_source"] == 0
    assert len(result["scratch_deleted"]) == 2 and scratch_left() == []


def test_a_manifest_that_does_not_match_the_restore_fails(cf, s3, demo_set):
    bucket, manifest = demo_set
    wrong = json.loads(json.dumps(manifest))
    wrong["d1"]["tables"]["documents"] += 1
    result = restore_and_compare(s3, bucket, prefix("daily", "20261101"), wrong, uuid.uuid4().hex[:8])
    assert not result["verified"]
    assert any("documents holds" in p and "the manifest says" in p for p in result["problems"])
    assert scratch_left() == []


def test_a_corrupted_object_fails_verification(cf, s3, demo_set):
    import gzip

    bucket, manifest = demo_set
    key = prefix("daily", "20261101") + "kv.ndjson.gz"
    s3.load_bytes(gzip.compress(b'{"key":"forged","value_b64":""}\n'), key=key, bucket_name=bucket, replace=True)
    result = restore_and_compare(s3, bucket, prefix("daily", "20261101"), manifest, uuid.uuid4().hex[:8])
    assert not result["verified"] and len(result["problems"]) == 1
    assert result["problems"][0].startswith("kv: ") and "the manifest says" in result["problems"][0]
    assert result["d1"]["quick_check"] == ["ok"]  # the other objects were still restored and checked
    assert scratch_left() == []


def test_cleanup_deletes_what_a_dead_worker_left(cf):
    token = uuid.uuid4().hex[:8]
    D1Hook().create_database(SCRATCH_PREFIX + token)
    VectorizeHook().create_index(SCRATCH_PREFIX + token, 384, "cosine")
    assert sorted(cleanup(token)) == [f"d1:{SCRATCH_PREFIX}{token}", f"vectorize:{SCRATCH_PREFIX}{token}"]
    assert cleanup(token) == [] and scratch_left() == []
