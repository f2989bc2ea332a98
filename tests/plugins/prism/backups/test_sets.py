"""Backup sets in the S3 stand-in: promotion, replacement, and what makes a set restorable."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import pytest

from prism.backups.sets import (
    BackupSetError,
    build_manifest,
    load_manifest,
    parse_backup_id,
    prefix,
    promote,
    require_restorable,
    set_verification,
    staging_prefix,
)

LABELS = {"logical_date": "2026-11-01T09:00:00+00:00", "captured_at": "2026-11-29T10:00:00+00:00"}


@pytest.fixture
def bucket(s3):
    name = f"sets-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=name)
    return name


def stage(s3, bucket: str, staging: str, docs: int = 2) -> dict:
    """Three objects as the backup operators write them, and their results."""
    dump = "".join(f"INSERT INTO documents VALUES('d{i}', 'x');\n" for i in range(docs)).encode()
    vectors = b"".join(
        json.dumps({"id": f"v{i}", "values": [0.1, 0.2], "metadata": {}}).encode() + b"\n" for i in range(3)
    )
    keys = b'{"key":"a","value_b64":"eA=="}\n'
    out = {}
    for kind, name, raw in (
        ("d1", "d1.sql.gz", dump),
        ("vectorize", "vectors.ndjson.gz", vectors),
        ("kv", "kv.ndjson.gz", keys),
    ):
        body = gzip.compress(raw, mtime=0)
        s3.load_bytes(body, key=staging + name, bucket_name=bucket, replace=True)
        out[kind] = {
            "bucket": bucket,
            "key": staging + name,
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    out["d1"].update(database_id="db", at_bookmark="bm", mode="logical", rows={"documents": docs, "empty": 0})
    out["vectorize"].update(index="ix", vector_count=3, dimensions=2, metric="cosine")
    out["kv"].update(namespace_id="ns", key_count=1, values_included=True)
    return out


def test_promote_publishes_a_checked_set_with_its_manifest_last(s3, bucket):
    staging = staging_prefix("daily", "20261101", "tok1")
    manifest = build_manifest("daily", "20261101", stage(s3, bucket, staging), LABELS, {"d1_database": "db"})
    assert manifest["d1"]["tables"] == {"documents": 2} and manifest["vectorize"]["dimensions"] == 2
    result = promote(s3, bucket, "daily", "20261101", staging, manifest)
    assert result["verification"]["status"] == "checksummed"
    assert sorted(s3.list_keys(bucket, prefix="daily/")) == [
        "daily/20261101/d1.sql.gz",
        "daily/20261101/kv.ndjson.gz",
        "daily/20261101/manifest.json",
        "daily/20261101/vectors.ndjson.gz",
    ]
    assert not s3.list_keys(bucket, prefix="staging/")
    stored = load_manifest(s3, bucket, "daily", "20261101")
    assert stored["logical_date"] == LABELS["logical_date"] and stored["captured_at"] == LABELS["captured_at"]


def test_a_rerun_replaces_the_set_cleanly(s3, bucket):
    first = staging_prefix("daily", "20261101", "a")
    promote(
        s3,
        bucket,
        "daily",
        "20261101",
        first,
        build_manifest("daily", "20261101", stage(s3, bucket, first), LABELS, {}),
    )
    s3.load_bytes(b"leftover", key="daily/20261101/old-extra.bin", bucket_name=bucket)
    second = staging_prefix("daily", "20261101", "b")
    promote(
        s3,
        bucket,
        "daily",
        "20261101",
        second,
        build_manifest("daily", "20261101", stage(s3, bucket, second, docs=5), LABELS, {}),
    )
    assert load_manifest(s3, bucket, "daily", "20261101")["d1"]["tables"] == {"documents": 5}
    assert "daily/20261101/old-extra.bin" not in s3.list_keys(bucket, prefix="daily/")


def test_a_corrupted_staged_object_is_never_promoted_and_the_old_set_stays(s3, bucket):
    first = staging_prefix("daily", "20261101", "a")
    promote(
        s3,
        bucket,
        "daily",
        "20261101",
        first,
        build_manifest("daily", "20261101", stage(s3, bucket, first), LABELS, {}),
    )
    before = load_manifest(s3, bucket, "daily", "20261101")
    second = staging_prefix("daily", "20261101", "b")
    manifest = build_manifest("daily", "20261101", stage(s3, bucket, second, docs=5), LABELS, {})
    s3.load_bytes(b"not what was exported", key=second + "vectors.ndjson.gz", bucket_name=bucket, replace=True)
    with pytest.raises(BackupSetError, match="nothing was promoted"):
        promote(s3, bucket, "daily", "20261101", second, manifest)
    assert load_manifest(s3, bucket, "daily", "20261101") == before


def test_counts_are_checked_as_well_as_checksums(s3, bucket):
    staging = staging_prefix("daily", "20261102", "c")
    results = stage(s3, bucket, staging)
    results["d1"]["rows"] = {"documents": 3}  # the operator claimed a row the dump does not have
    with pytest.raises(BackupSetError, match="d1: .* holds {'rows': {'documents': 2}}"):
        promote(s3, bucket, "daily", "20261102", staging, build_manifest("daily", "20261102", results, LABELS, {}))
    assert load_manifest(s3, bucket, "daily", "20261102") is None


def test_only_a_verified_set_that_still_matches_is_restorable(s3, bucket):
    staging = staging_prefix("monthly", "202611", "m")
    promote(
        s3,
        bucket,
        "monthly",
        "202611",
        staging,
        build_manifest("monthly", "202611", stage(s3, bucket, staging), LABELS, {}),
    )
    with pytest.raises(BackupSetError, match="is checksummed, not verified"):
        require_restorable(s3, bucket, "202611")
    set_verification(s3, bucket, "monthly", "202611", "verified", {"method": "test"})
    assert require_restorable(s3, bucket, "202611")[:2] == ("monthly", "202611")
    s3.load_bytes(b"bitrot", key="monthly/202611/kv.ndjson.gz", bucket_name=bucket, replace=True)
    with pytest.raises(BackupSetError, match="no longer matches its manifest"):
        require_restorable(s3, bucket, "202611")
    with pytest.raises(BackupSetError, match="does not exist"):
        require_restorable(s3, bucket, "20200101")


def test_backup_ids_and_prefixes():
    assert parse_backup_id("20261101") == ("daily", "20261101")
    assert parse_backup_id("202611") == ("monthly", "202611")
    assert parse_backup_id("safety-20261129T180000Z") == ("safety", "20261129T180000Z")
    for bad in ("2026-11-01", "safety-20261129", "latest", ""):
        with pytest.raises(ValueError):
            parse_backup_id(bad)
    with pytest.raises(ValueError):
        prefix("daily", "20261399")
