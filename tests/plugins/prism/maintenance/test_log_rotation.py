"""Log rotation against the S3 stand-in, given its cutoffs directly. The S3 stand-in stamps every
object with the time it was written, so "a log older than the cutoff" is made with a cutoff just
after now: the library takes any cutoff; the DAG's tasks refuse a window in the future before they
compute one (tests/dags/test_prism_daily.py)."""

from __future__ import annotations

import gzip
import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from prism.maintenance.log_rotation import archive_logs, delete_old_archives


@pytest.fixture
def bucket(s3):
    name = f"logs-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=name)
    return name


def put(s3, bucket: str, key: str, body: bytes = b"x", metadata: dict | None = None) -> None:
    s3.get_conn().put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})


def test_logs_before_the_cutoff_are_archived_verified_and_removed(s3, bucket):
    now = datetime.now(timezone.utc)
    put(s3, bucket, "logs/app.log", b"line 1\nline 2\n" * 100)
    put(s3, bucket, "logs/worker/errors.log", b"boom <script>\xc3\xa9\n")
    put(s3, bucket, "logs/notes.txt", b"not a log")
    put(s3, bucket, "logs/archive/app.log.gz", gzip.compress(b"an older rotation of app.log\n"))  # name taken
    # a retry after the archive was written but before the log was deleted: the archive is reused
    put(s3, bucket, "logs/retry.log", b"retried\n")
    put(
        s3,
        bucket,
        "logs/archive/retry.log.gz",
        gzip.compress(b"retried\n"),
        {"original-sha256": hashlib.sha256(b"retried\n").hexdigest()},
    )

    result = archive_logs(s3, bucket, now + timedelta(minutes=5))
    assert result["archived"] == 3 and result["bytes_in"] == 1400 + 16 + 8
    keys = set(s3.list_keys(bucket, prefix="logs/"))
    renamed = next(k for k in keys if k.startswith("logs/archive/app.log.") and k != "logs/archive/app.log.gz")
    assert keys == {
        "logs/notes.txt",
        "logs/archive/app.log.gz",
        renamed,
        "logs/archive/worker/errors.log.gz",
        "logs/archive/retry.log.gz",
    }
    assert gzip.decompress(s3.get_key("logs/archive/app.log.gz", bucket).get()["Body"].read()).startswith(b"an older")
    assert gzip.decompress(s3.get_key(renamed, bucket).get()["Body"].read()) == b"line 1\nline 2\n" * 100
    meta = s3.head_object("logs/archive/worker/errors.log.gz", bucket)["Metadata"]
    assert meta["original-key"] == "logs/worker/errors.log" and meta["original-bytes"] == "16"
    assert archive_logs(s3, bucket, now + timedelta(minutes=5))["archived"] == 0  # nothing left to do


def test_logs_after_the_cutoff_stay(s3, bucket):
    put(s3, bucket, "logs/fresh.log", b"just written\n")
    assert archive_logs(s3, bucket, datetime.now(timezone.utc) - timedelta(days=7))["archived"] == 0
    assert s3.check_for_key("logs/fresh.log", bucket)


def test_archives_go_by_the_time_of_the_log_they_hold(s3, bucket):
    now = datetime.now(timezone.utc)
    put(
        s3,
        bucket,
        "logs/archive/ancient.log.gz",
        gzip.compress(b"old\n"),
        {"original-last-modified": (now - timedelta(days=100)).isoformat()},
    )
    put(
        s3,
        bucket,
        "logs/archive/recent.log.gz",
        gzip.compress(b"recent\n"),
        {"original-last-modified": (now - timedelta(days=30)).isoformat()},
    )
    # a log dated in the future by its metadata: never old
    put(
        s3,
        bucket,
        "logs/archive/future.log.gz",
        gzip.compress(b"?\n"),
        {"original-last-modified": "2099-12-31T00:00:00+00:00"},
    )
    put(s3, bucket, "logs/archive/plain.log.gz", gzip.compress(b"no metadata\n"))
    result = delete_old_archives(s3, bucket, now - timedelta(days=90))
    assert result["keys"] == ["logs/archive/ancient.log.gz"] and result["deleted"] == 1
    assert set(s3.list_keys(bucket, prefix="logs/archive/")) == {
        "logs/archive/recent.log.gz",
        "logs/archive/future.log.gz",
        "logs/archive/plain.log.gz",
    }
