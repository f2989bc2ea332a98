"""The rebuild's refusals and checks that its end-to-end DAG test (tests/dags/test_prism_index_rebuild.py,
which also covers the confirmation, the index's record and recreation and a good backup) does not
reach: a bad reason, no indexer, a backup that does not read back as written, and counts that differ."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import pytest

from prism.maintenance.rebuild import validate, verify_backup, verify_counts
from prism.refusals import Refused


def use_config(monkeypatch, **sections) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps(sections))


@pytest.mark.parametrize("reason", ["two\nlines", "x" * 501, 7])
def test_a_reason_that_is_not_one_line_is_refused(reason):
    with pytest.raises(Refused, match="^refusing to rebuild: reason must be one line of text, at most 500 characters"):
        validate({"confirm": "REBUILD", "reason": reason})


def test_no_indexer_refuses_before_anything_is_cleared(monkeypatch):
    use_config(monkeypatch, indexing={"indexer_command": None})
    with pytest.raises(Refused, match=r"^refusing to rebuild: no indexer is configured: set indexing.indexer_command"):
        validate({"confirm": "REBUILD", "reason": ""})


def test_the_repos_come_from_the_config(monkeypatch):
    use_config(monkeypatch, indexing={"repos": ["prism/docs"]})
    assert validate({"confirm": "REBUILD", "reason": "a one-line reason"}) == ["prism/docs"]


@pytest.fixture
def backup(s3):
    """A backup object in the S3 stand-in, and what its backup operator would have returned."""
    bucket = f"rebuild-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    data = gzip.compress(b'{"id": "v1"}\n' * 1000, mtime=0)
    s3.load_bytes(data, key="prebuild/run/vectors.ndjson.gz", bucket_name=bucket)
    return {"bucket": bucket, "key": "prebuild/run/vectors.ndjson.gz", "bytes": len(data)}, data


def test_a_backup_that_reads_back_as_written_is_verified(backup):
    result, data = backup
    sha256 = hashlib.sha256(data).hexdigest()
    assert verify_backup({"vectorize": {**result, "sha256": sha256}}) == {
        "vectorize": {"uri": f"s3://{result['bucket']}/{result['key']}", "bytes": len(data), "sha256": sha256}
    }


def test_a_backup_that_does_not_read_back_as_written_stops_the_rebuild(backup):
    from airflow.sdk.exceptions import AirflowException

    result, data = backup
    wrong = {**result, "sha256": "0" * 64}
    with pytest.raises(
        AirflowException,
        match=rf"^s3://{result['bucket']}/{result['key']} reads back as {len(data)} bytes, sha256 "
        rf"{hashlib.sha256(data).hexdigest()}; the backup wrote {len(data)} bytes, sha256 0{{64}}\. "
        r"Not rebuilding without a verified backup\.$",
    ):
        verify_backup({"vectorize": wrong})


@pytest.fixture
def empty_index(cf, monkeypatch):
    """An empty Vectorize index of the test's own in the shared localflare, as the config's."""
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    hook, name = VectorizeHook(), f"test-rebuild-{uuid.uuid4().hex[:12]}"
    hook.create_index(name, 384, "cosine")
    use_config(monkeypatch, cloudflare={"vectorize_index": name})
    yield name
    hook.delete_index(name)


def test_counts_that_differ_fail_the_rebuild(empty_index):
    from airflow.sdk.exceptions import AirflowException

    assert verify_counts({"rows": [{"documents": 0, "chunks": 0, "chunks_without_vector": 0}]}, wait=0) == {
        "documents": 0,
        "chunks": 0,
        "chunks_without_vector": 0,
        "vectors": 0,
    }
    with pytest.raises(
        AirflowException,
        match=rf"^rebuild incomplete: 3 chunks in D1 \(1 without a vector\), 0 vectors in {empty_index}$",
    ):
        verify_counts({"rows": [{"documents": 1, "chunks": 3, "chunks_without_vector": 1}]}, wait=0)
