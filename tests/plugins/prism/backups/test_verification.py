"""Test restores into scratch resources of the shared demo localflare (the demo data is only read)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import time
import uuid

import pytest

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.transfers.cloudflare_to_s3 import (
    D1BackupOperator,
    KVBackupOperator,
    VectorizeBackupOperator,
)
from prism.backups.sets import build_manifest, prefix, promote, staging_prefix
from prism.backups.verification import (
    SCRATCH_PREFIX,
    cleanup,
    compare_kv_namespace,
    read_kv_snapshot,
    restore_and_compare,
)

LABELS = {"logical_date": "2026-11-01T09:00:00+00:00", "captured_at": "2026-11-29T10:00:00+00:00"}


def make_demo_set(s3, *, kv_values: bool = True) -> tuple[str, dict]:
    """A real set of the demo data, made by the backup operators and promoted into a bucket of its own."""
    bucket = f"scratch-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    staging = staging_prefix("daily", "20261101", "t")
    results = {
        "d1": D1BackupOperator(
            task_id="d1", database="claudes-friend-db", bucket=bucket, key=staging + "d1.sql.gz"
        ).execute({}),
        "vectorize": VectorizeBackupOperator(
            task_id="v", index="claudes-companion", bucket=bucket, key=staging + "vectors.ndjson.gz"
        ).execute({}),
        "kv": KVBackupOperator(
            task_id="kv", namespace="prism-cache", bucket=bucket, key=staging + "kv.ndjson.gz", include_values=kv_values
        ).execute({}),
    }
    manifest = promote(
        s3, bucket, "daily", "20261101", staging, build_manifest("daily", "20261101", results, LABELS, {})
    )
    return bucket, manifest


@pytest.fixture
def demo_set(cf, s3):
    return make_demo_set(s3)


def scratch_left() -> list[str]:
    dbs = [d["name"] for d in D1Hook().list_databases() if d["name"].startswith(SCRATCH_PREFIX)]
    namespaces = [n["title"] for n in KVHook().list_namespaces() if n["title"].startswith(SCRATCH_PREFIX)]
    return (
        dbs + [i["name"] for i in VectorizeHook().list_indexes() if i["name"].startswith(SCRATCH_PREFIX)] + namespaces
    )


def test_a_good_set_restores_and_compares_equal(cf, s3, demo_set):
    bucket, manifest = demo_set
    d1 = D1Hook()
    result = restore_and_compare(
        s3,
        bucket,
        prefix("daily", "20261101"),
        manifest,
        uuid.uuid4().hex[:8],
        source_db=d1.find_database("claudes-friend-db"),
        source_index="claudes-companion",
        source_namespace=None,
    )
    assert result["verified"], result["problems"]
    assert result["d1"]["tables"] == dict(manifest["d1"]["tables"].items()) | {
        t: 0 for t in result["d1"]["tables"] if t not in manifest["d1"]["tables"]
    }
    assert result["d1"]["quick_check"] == ["ok"] and result["d1"]["rows_sampled"] > 20
    assert result["d1"]["rows_differing_in_source"] == 0  # the demo data did not change meanwhile
    assert result["vectorize"]["vector_count"] == manifest["vectorize"]["vector_count"]
    assert result["vectorize"]["vectors_sampled"] == 5 and result["vectorize"]["vectors_differing_in_source"] == 0
    # KV went through a scratch namespace too: every key restored and compared (the demo has binary
    # values, metadata and expirations), and the namespace is gone.
    kv = result["kv"]
    assert kv["keys_restored"] == kv["keys_in_snapshot"] == manifest["kv"]["key_count"] > 200
    assert kv["compared_every_key"] and kv["keys_compared"] == kv["keys_restored"]
    assert result["status"] == "verified" and result["restorable"] == {"d1": True, "vectorize": True, "kv": True}
    assert sorted(result["scratch_deleted"]) == sorted(f"{k}:{result['scratch']}" for k in ("d1", "vectorize", "kv"))
    assert scratch_left() == []


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
    KVHook().create_namespace(SCRATCH_PREFIX + token)
    assert sorted(cleanup(token)) == [
        f"d1:{SCRATCH_PREFIX}{token}",
        f"kv:{SCRATCH_PREFIX}{token}",
        f"vectorize:{SCRATCH_PREFIX}{token}",
    ]
    assert cleanup(token) == [] and scratch_left() == []


# ---- KV: a scratch namespace, and what a set can restore -------------------------------------------

HOSTILE = {  # key -> (value, metadata)
    "<script>alert('k')</script>": (b"<script>alert('v')</script>", {"note": "<script>alert(1)</script>"}),
    "ключ/日本語/🔑 \"quoted\" 'single'": ("значение 🔑 \u202e reversed".encode(), {"ü": "日本", "q": "\"'`"}),
    "line\nbreak\ttab": (b"first\nsecond\r\n", None),
    "k" * 500: (b"v" * 200_000, {"long": "m" * 900}),
    "binary/..%2F?x=1#frag": (bytes(range(256)) + b"\x00\xff\xfe", {"content_type": "application/octet-stream"}),
    "not-utf8": (b"\xff\xfe\xfd invalid utf-8", None),
    "empty-value": (b"", {}),
}


@pytest.fixture
def namespace(cf):
    """A KV namespace of this test's own in the shared localflare, holding the hostile keys, deleted after."""
    kv = KVHook()
    ns = kv.create_namespace(f"kv-verify-test-{uuid.uuid4().hex[:8]}")
    now = int(time.time())
    expirations = {"line\nbreak\ttab": now + 86_400, "k" * 500: 4_102_444_800}  # tomorrow, and 2100
    for key, (value, metadata) in HOSTILE.items():
        kv.put_value(ns["id"], key, value, metadata=metadata, expiration=expirations.get(key))
    yield ns
    kv.delete_namespace(ns["id"])


def kv_only_set(s3, namespace: str, include_values: bool = True) -> tuple[str, dict]:
    bucket = f"scratch-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    staging = staging_prefix("daily", "20261101", "t")
    result = KVBackupOperator(
        task_id="kv", namespace=namespace, bucket=bucket, key=staging + "kv.ndjson.gz", include_values=include_values
    ).execute({})
    return bucket, promote(
        s3, bucket, "daily", "20261101", staging, build_manifest("daily", "20261101", {"kv": result}, LABELS, {})
    )


def kv_records(s3, bucket: str) -> list[dict]:
    body = s3.get_key(prefix("daily", "20261101") + "kv.ndjson.gz", bucket).get()["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines() if line.strip()]


def rewrite_kv(s3, bucket: str, manifest: dict, records: list[dict], *, resign: bool) -> dict:
    """Replace the set's KV object in the bucket. With `resign`, the manifest is made to match it (as a
    buggy exporter would write it); without, the manifest still says what the backup wrote."""
    body = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    s3.load_bytes(body, key=prefix("daily", "20261101") + "kv.ndjson.gz", bucket_name=bucket, replace=True)
    if not resign:
        return manifest
    manifest = json.loads(json.dumps(manifest))
    obj = next(o for o in manifest["objects"] if o["kind"] == "kv")
    obj.update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    manifest["kv"]["key_count"] = len(records)
    return manifest


def verify(s3, bucket: str, manifest: dict) -> dict:
    return restore_and_compare(s3, bucket, prefix("daily", "20261101"), manifest, uuid.uuid4().hex[:8])


def test_hostile_keys_values_and_metadata_restore_and_compare_equal(cf, s3, namespace):
    bucket, manifest = kv_only_set(s3, namespace["title"])
    result = verify(s3, bucket, manifest)
    assert result["problems"] == [] and result["restorable"]["kv"] is True, result["problems"]
    kv = result["kv"]
    assert kv["keys_restored"] == kv["keys_compared"] == len(HOSTILE) and kv["compared_every_key"]
    # D1 and Vectorize were not in this set: it restores KV only, so it is partial, not verified.
    assert result["status"] == "partial" and result["restorable_reasons"]["d1"] == "absent when the set was taken"
    assert scratch_left() == []


def test_keys_that_expired_since_the_snapshot_are_allowed_for(cf, s3, namespace):
    """A snapshot of yesterday holds a key that expired since (past) and one that expires within the
    minute (present): the restore skips both, and the set still verifies; the future ones are compared."""
    bucket, manifest = kv_only_set(s3, namespace["title"])
    now = int(time.time())
    records = kv_records(s3, bucket) + [
        {"key": "expired-yesterday", "expiration": now - 86_400, "metadata": None, "value_b64": "eA=="},
        {"key": "expires-in-30s", "expiration": now + 30, "metadata": {"<b>": "x"}, "value_b64": "eA=="},
    ]
    result = verify(s3, bucket, rewrite_kv(s3, bucket, manifest, records, resign=True))
    assert result["problems"] == [] and result["restorable"]["kv"] is True, result["problems"]
    assert result["kv"]["skipped_expired"] == 2 and result["kv"]["keys_restored"] == len(HOSTILE)


def test_a_snapshot_without_values_is_not_verified_for_kv(cf, s3):
    """Found: a set taken with kv_include_values false was "verified". D1 and Vectorize still prove
    restorable; KV cannot be, so the set is partial and says why."""
    bucket, manifest = make_demo_set(s3, kv_values=False)
    assert manifest["restorable"] == {"d1": True, "vectorize": True, "kv": False}  # known before any test restore
    result = verify(s3, bucket, manifest)
    assert not result["verified"] and result["status"] == "partial" and result["problems"] == []
    assert result["restorable"] == {"d1": True, "vectorize": True, "kv": False}
    assert result["restorable_reasons"]["kv"].startswith("taken without values")
    assert "keys_restored" not in result["kv"]  # nothing to restore: no scratch namespace was made
    assert result["d1"]["quick_check"] == ["ok"] and scratch_left() == []


def _change_value(recs):
    recs[0]["value_b64"] = base64.b64encode(b"<script>tampered</script>").decode()


def _drop_key(recs):
    del recs[1]


def _change_metadata(recs):
    recs[0]["metadata"] = {"tampered": "ü"}


def _change_expiration(recs):
    recs[0]["expiration"] = 4_102_444_800


@pytest.mark.parametrize(
    "tamper",
    [_change_value, _drop_key, _change_metadata, _change_expiration],
    ids=["value-changed", "key-missing", "metadata-changed", "expiration-changed"],
)
def test_kv_tampered_in_the_bucket_fails_verification(cf, s3, namespace, tamper):
    bucket, manifest = kv_only_set(s3, namespace["title"])
    records = kv_records(s3, bucket)
    tamper(records)
    result = verify(s3, bucket, rewrite_kv(s3, bucket, manifest, records, resign=False))
    assert not result["verified"] and result["status"] == "failed"
    assert len(result["problems"]) == 1 and result["problems"][0].startswith(
        f"kv: s3://{bucket}/daily/20261101/kv.ndjson.gz is "
    )
    assert "the manifest says" in result["problems"][0]
    assert result["restorable"]["kv"] is False and "changed in the bucket" in result["restorable_reasons"]["kv"]
    assert scratch_left() == []


def test_a_key_missing_from_a_resigned_snapshot_fails_on_the_count(cf, s3, namespace):
    """The object and its checksum agree, but the snapshot holds fewer keys than the export counted."""
    bucket, manifest = kv_only_set(s3, namespace["title"])
    records = kv_records(s3, bucket)
    forged = rewrite_kv(s3, bucket, manifest, records[1:], resign=True)
    forged["kv"]["key_count"] = len(records)
    result = verify(s3, bucket, forged)
    assert result["status"] == "failed"
    assert result["problems"] == [f"kv: the snapshot holds {len(records) - 1} keys, the manifest says {len(records)}"]


def test_a_snapshot_missing_some_values_fails(cf, s3, namespace):
    bucket, manifest = kv_only_set(s3, namespace["title"])
    records = kv_records(s3, bucket)
    del records[2]["value_b64"]
    result = verify(s3, bucket, rewrite_kv(s3, bucket, manifest, records, resign=True))
    assert result["status"] == "failed" and result["restorable"]["kv"] is False
    assert result["problems"] == [
        f"kv: 1 of {len(records)} keys in the snapshot have no value, though the manifest says values were included"
    ]


def _value(kv, ns, key):
    kv.put_value(ns, key, HOSTILE[key][0][:-1] + b"\x01", metadata=HOSTILE[key][1])


def _delete(kv, ns, key):
    kv.delete_value(ns, key)


def _metadata(kv, ns, key):
    kv.put_value(ns, key, HOSTILE[key][0], metadata={"note": "<script>alert(2)</script>"})


def _expiration(kv, ns, key):
    kv.put_value(ns, key, HOSTILE[key][0], metadata=HOSTILE[key][1], expiration=int(time.time()) + 7200)


def _extra(kv, ns, key):
    kv.put_value(ns, "<img src=x onerror=alert(1)>", b"extra")


@pytest.mark.parametrize(
    "change, says",
    [
        (_value, "restored with a different value"),
        (_delete, "is in the snapshot but was not restored"),
        (_metadata, "restored with metadata"),
        (_expiration, "restored with expiration"),
        (_extra, "is in the restore, not in the snapshot"),
    ],
    ids=["value", "missing", "metadata", "expiration", "extra"],
)
def test_the_comparison_finds_a_restore_that_differs(cf, s3, namespace, change, says, tmp_path):
    """compare_kv_namespace against a namespace restored from the snapshot and then changed: each
    difference is named, with the (hostile) key in repr, and the count catches missing and extra keys."""
    bucket, _ = kv_only_set(s3, namespace["title"])
    path = tmp_path / "kv.ndjson.gz"
    path.write_bytes(s3.get_key(prefix("daily", "20261101") + "kv.ndjson.gz", bucket).get()["Body"].read())
    kv = KVHook()
    target = kv.create_namespace(f"kv-verify-target-{uuid.uuid4().hex[:8]}")["id"]
    try:
        restored_at = time.time()
        with gzip.open(path, "rb") as fh:
            kv.restore_snapshot(target, fh, now=restored_at)
        snap = read_kv_snapshot(path, random.Random(1))
        assert compare_kv_namespace(kv, target, path, snap, restored_at=restored_at)["problems"] == []
        key = "binary/..%2F?x=1#frag" if change is not _metadata else "<script>alert('k')</script>"
        change(kv, target, key)
        problems = compare_kv_namespace(kv, target, path, snap, restored_at=restored_at)["problems"]
    finally:
        kv.delete_namespace(target)
    assert any(says in p for p in problems), problems
    if change is not _extra:
        assert all(repr(key) in p or "keys restored" in p for p in problems), problems
    if change in (_delete, _extra):
        assert any("keys restored, the snapshot holds" in p for p in problems), problems


def test_a_large_namespace_is_counted_in_full_and_compared_on_a_sample(cf, s3, tmp_path):
    """Over 1,000 keys: every key is counted, 100 drawn evenly are compared; keys missing from the
    restore outside the sample are still caught by the count, and the problems stay short."""
    kv = KVHook()
    source = kv.create_namespace(f"kv-verify-large-{uuid.uuid4().hex[:8]}")
    target = kv.create_namespace(f"kv-verify-large-t-{uuid.uuid4().hex[:8]}")["id"]
    try:
        kv.bulk_write(
            source["id"],
            ({"key": f"k{i:05d}<é>", "value": f"v{i}".encode(), "metadata": {"i": i}} for i in range(1_500)),
        )
        bucket, manifest = kv_only_set(s3, source["title"])
        result = verify(s3, bucket, manifest)
        assert result["problems"] == [] and result["restorable"]["kv"] is True, result["problems"]
        assert result["kv"]["keys_restored"] == 1_500 and result["kv"]["keys_compared"] == 100
        assert not result["kv"]["compared_every_key"]

        path = tmp_path / "kv.ndjson.gz"
        path.write_bytes(s3.get_key(prefix("daily", "20261101") + "kv.ndjson.gz", bucket).get()["Body"].read())
        restored_at = time.time()
        with gzip.open(path, "rb") as fh:
            kv.restore_snapshot(target, fh, now=restored_at)
        snap = read_kv_snapshot(path, random.Random(7))
        kv.bulk_delete(target, [k["name"] for k in kv.list_keys(target)][:600])
        problems = compare_kv_namespace(kv, target, path, snap, restored_at=restored_at)["problems"]
    finally:
        kv.delete_namespace(source["id"])
        kv.delete_namespace(target)
    assert problems[0] == "kv: 900 keys restored, the snapshot holds 1500 (0 skipped as expiring, 0 expired since)"
    assert (
        len(problems) == 20 and problems[-1].startswith("kv: ... and ") and problems[-1].endswith(" more differences")
    )
