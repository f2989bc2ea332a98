"""What a backup set can restore: the manifest's `restorable`, how verification records it, how
recovery refuses a target a set cannot restore, and a KV restore that stops before its first write."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid

import pytest

from airflow_provider_cloudflare.hooks.kv import KVHook
from prism.backups.sets import (
    BackupSetError,
    build_manifest,
    load_manifest,
    promote,
    require_restorable,
    restorable,
    set_verification,
    staging_prefix,
)
from prism.recovery.restore import restore_kv
from prism.recovery.validation import RecoveryInputError, check_restorable

LABELS = {"logical_date": "2026-11-01T09:00:00+00:00", "captured_at": "2026-11-29T10:00:00+00:00"}


def results(values_included: bool = True, vectorize: bool = True) -> dict:
    obj = {"bytes": 10, "sha256": "0" * 64}
    out = {
        "d1": {**obj, "database_id": "db", "at_bookmark": "bm", "mode": "logical", "rows": {"documents": 2}},
        "vectorize": {**obj, "index": "ix", "vector_count": 3, "dimensions": 2, "metric": "cosine"}
        if vectorize
        else {"absent": True},
        "kv": {**obj, "namespace_id": "ns", "key_count": 1, "values_included": values_included},
    }
    return out


def test_the_manifest_says_what_its_objects_can_restore():
    full = build_manifest("daily", "20261101", results(), LABELS, {})
    assert full["restorable"] == {"d1": True, "vectorize": True, "kv": True} and full["restorable_reasons"] == {}
    no_values = build_manifest("daily", "20261101", results(values_included=False), LABELS, {})
    assert no_values["restorable"] == {"d1": True, "vectorize": True, "kv": False}
    assert no_values["restorable_reasons"] == {"kv": "taken without values; backups.kv_include_values was false"}
    no_index = build_manifest("safety", "20261129T180000Z", results(vectorize=False), LABELS, {})
    assert no_index["restorable"]["vectorize"] is False
    assert no_index["restorable_reasons"]["vectorize"] == "absent when the set was taken"


@pytest.mark.parametrize(
    "values_included, kv_ok",
    [(True, True), (False, False), (None, False)],
    ids=["values", "no-values", "field-missing"],
)
def test_an_older_manifest_is_judged_by_what_it_records(values_included, kv_ok):
    """Manifests written before `restorable`: KV only when the manifest says its values are in it."""
    old = build_manifest("daily", "20261101", results(), LABELS, {})
    del old["restorable"], old["restorable_reasons"]
    old["kv"]["values_included"] = values_included
    ok, why = restorable(old)
    assert ok == {"d1": True, "vectorize": True, "kv": kv_ok}
    assert ("kv" in why) is not kv_ok


@pytest.mark.parametrize("targets, refused", [(["kv"], "kv"), (["d1", "vectorize", "kv"], "kv"), (["kv", "d1"], "kv")])
def test_recovery_refuses_a_target_the_set_cannot_restore(targets, refused):
    manifest = build_manifest("daily", "20261101", results(values_included=False), LABELS, {})
    with pytest.raises(RecoveryInputError) as err:
        check_restorable("daily", "20261101", manifest, targets)
    assert str(err.value) == (
        "set daily/20261101 cannot restore kv (taken without values; backups.kv_include_values was false)"
    )
    assert check_restorable("daily", "20261101", manifest, ["d1", "vectorize"])["kv"] is False


def test_every_unrestorable_target_is_named():
    manifest = build_manifest("safety", "20261129T180000Z", results(values_included=False, vectorize=False), LABELS, {})
    with pytest.raises(
        RecoveryInputError,
        match=r"cannot restore vectorize \(absent when the set was taken\) "
        r"or kv \(taken without values",
    ):
        check_restorable("safety", "20261129T180000Z", manifest, ["d1", "vectorize", "kv"])


def test_a_field_that_is_not_true_is_not_restorable():
    """Only a literal true counts: a hand-edited "yes" or 1 does not make a kind restorable."""
    manifest = build_manifest("daily", "20261101", results(), LABELS, {})
    manifest["restorable"] = {"d1": "yes", "vectorize": 1, "kv": True}
    ok, why = restorable(manifest)
    assert ok == {"d1": False, "vectorize": False, "kv": True} and set(why) == {"d1", "vectorize"}


# ---- recorded by verification, in the S3 stand-in --------------------------------------------------


@pytest.fixture
def bucket(s3):
    name = f"restorable-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=name)
    return name


def stage_set(s3, bucket: str, values_included: bool) -> None:
    staging = staging_prefix("daily", "20261101", "r")
    raw = {
        "d1.sql.gz": b"INSERT INTO documents VALUES('d0', 'x');\n",
        "vectors.ndjson.gz": b'{"id":"v","values":[0.1,0.2],"metadata":{}}\n',
        "kv.ndjson.gz": b'{"key":"a","expiration":null,"metadata":null'
        + (b',"value_b64":"eA=="' if values_included else b"")
        + b"}\n",
    }
    res = results(values_included)
    for kind, name in (("d1", "d1.sql.gz"), ("vectorize", "vectors.ndjson.gz"), ("kv", "kv.ndjson.gz")):
        body = gzip.compress(raw[name], mtime=0)
        s3.load_bytes(body, key=staging + name, bucket_name=bucket, replace=True)
        res[kind].update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    res["d1"]["rows"] = {"documents": 1}
    res["vectorize"]["vector_count"] = 1
    promote(s3, bucket, "daily", "20261101", staging, build_manifest("daily", "20261101", res, LABELS, {}))


def test_a_partial_set_restores_what_it_proved_and_refuses_the_rest(s3, bucket):
    stage_set(s3, bucket, values_included=False)
    set_verification(
        s3,
        bucket,
        "daily",
        "20261101",
        "partial",
        {
            "method": "test",
            "restorable": {"d1": True, "vectorize": True, "kv": False},
            "restorable_reasons": {"kv": "taken without values"},
        },
    )
    manifest = load_manifest(s3, bucket, "daily", "20261101")
    assert manifest["restorable"] == {"d1": True, "vectorize": True, "kv": False}
    assert "restorable" not in manifest["verification"]  # one place for it: the manifest's top level
    cadence, period, manifest = require_restorable(s3, bucket, "20261101")
    check_restorable(cadence, period, manifest, ["d1", "vectorize"])
    with pytest.raises(RecoveryInputError, match=r"^set daily/20261101 cannot restore kv \(taken without values\)$"):
        check_restorable(cadence, period, manifest, ["kv"])


def test_a_failed_verification_leaves_nothing_restorable(s3, bucket):
    stage_set(s3, bucket, values_included=True)
    set_verification(s3, bucket, "daily", "20261101", "failed", {"method": "quarterly restore drill"})
    manifest = load_manifest(s3, bucket, "daily", "20261101")
    assert manifest["restorable"] == {"d1": False, "vectorize": False, "kv": False}
    with pytest.raises(BackupSetError, match="is failed"):
        require_restorable(s3, bucket, "20261101")


# ---- a KV restore checks every record before its first write ---------------------------------------


def test_a_kv_restore_without_values_writes_nothing(cf, tmp_path):
    """10,000 keys with values, then one without: before, the first bulk batch went into the live
    namespace and the restore died half-way; now it stops before writing anything."""
    kv = KVHook()
    ns = kv.create_namespace(f"kv-restore-test-{uuid.uuid4().hex[:8]}")["id"]
    try:
        kv.put_value(ns, "sentinel <script>", b"before", metadata={"k": "ü"})
        path = tmp_path / "kv.ndjson.gz"
        with gzip.open(path, "wb") as fh:
            for i in range(10_000):
                fh.write(
                    json.dumps({"key": f"k{i:05d}", "value_b64": base64.b64encode(b"x").decode()}).encode() + b"\n"
                )
            fh.write(b'{"key":"no-value","expiration":null,"metadata":null}\n')
        with pytest.raises(ValueError, match="no value for 'no-value'.*nothing was written"):
            restore_kv(kv, ns, path)
        assert [(k["name"], k.get("metadata")) for k in kv.list_keys(ns)] == [("sentinel <script>", {"k": "ü"})]
        assert kv.get_value(ns, "sentinel <script>") == b"before"
    finally:
        kv.delete_namespace(ns)
