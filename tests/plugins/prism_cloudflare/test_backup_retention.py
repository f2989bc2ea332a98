"""Backup retention: the rules, and applying them to sets in the S3 stand-in."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest

from prism_cloudflare.backup_retention import apply_retention, is_old, retention_plan

TODAY = date(2026, 11, 1)
VERIFIED, FAILED = {"verification": {"status": "verified"}}, {"verification": {"status": "failed"}}


def test_old_complete_sets_go_but_never_the_newest_verified_or_an_incomplete_one():
    sets = {"20260901": VERIFIED, "20261001": VERIFIED, "20261002": VERIFIED, "20260902": None}
    plan = retention_plan(sets, "daily", TODAY, 30)
    assert plan["delete"] == ["20260901", "20261001"] and plan["newest_verified"] == "20261002"
    assert plan["old_incomplete"] == ["20260902"] and plan["keep"] == ["20260902", "20261002"]


def test_the_newest_verified_set_stays_however_old_even_behind_newer_failed_ones():
    sets = {"20200101": VERIFIED, "20200102": FAILED, "20261031": FAILED}
    plan = retention_plan(sets, "daily", TODAY, 30)
    assert plan["delete"] == ["20200102"] and plan["kept_beyond_window"] == ["20200101"]
    assert plan["unverified"] == ["20200102", "20261031"]
    assert retention_plan({}, "daily", TODAY, 30)["delete"] == []


def test_windows_by_cadence():
    assert not is_old("daily", "20261002", TODAY, 30) and is_old("daily", "20261001", TODAY, 30)  # 30 days stay
    assert not is_old("monthly", "202512", TODAY, 12) and is_old("monthly", "202511", TODAY, 12)  # 12 months, this one included
    assert is_old("safety", "20260901T120000Z", TODAY, 30)
    assert not is_old("daily", "20261120", TODAY, 30)  # after the reference date (a backfill): not old


@pytest.fixture
def bucket(s3):
    name = f"retention-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=name)
    return name


def put_set(s3, bucket, prefix, manifest=VERIFIED):
    for name in ("d1.sql.gz", "vectors.ndjson.gz", "kv.ndjson.gz"):
        s3.load_bytes(b"x", key=prefix + name, bucket_name=bucket)
    if manifest is not None:
        s3.load_string(json.dumps(manifest), key=prefix + "manifest.json", bucket_name=bucket)


def test_dry_run_deletes_nothing_and_a_real_run_deletes_only_the_plan(s3, bucket):
    for prefix in ("daily/20260801/", "daily/20260901/", "daily/20261031/"):
        put_set(s3, bucket, prefix)
    put_set(s3, bucket, "daily/20260701/", None)  # interrupted: stays
    put_set(s3, bucket, "daily/latest/")  # not a set: ignored
    dry = apply_retention(s3, bucket, "daily", TODAY, 30, dry_run=True)
    doomed = ["daily/20260801/", "daily/20260901/"]
    assert dry["would_delete"] == doomed and dry["deleted"] == []
    assert len(s3.list_keys(bucket)) == 19
    real = apply_retention(s3, bucket, "daily", TODAY, 30)
    assert real["deleted"] == doomed and real["old_incomplete"] == ["20260701"]
    left = set(s3.list_keys(bucket))
    assert not any(k.startswith(tuple(doomed)) for k in left)
    assert "daily/20260701/d1.sql.gz" in left
    assert "daily/20261031/manifest.json" in left and "daily/latest/manifest.json" in left


def test_staging_goes_only_when_nothing_has_written_to_it_for_two_days(s3, bucket):
    from datetime import datetime, timedelta, timezone

    s3.load_bytes(b"x", key="staging/monthly/202611/abc/d1.sql.gz", bucket_name=bucket)  # written now
    today = datetime.now(timezone.utc).date()
    # an in-flight run of an old period is fresh: its objects were written just now
    assert apply_retention(s3, bucket, "monthly", today, 12)["stale_staging"] == []
    later = apply_retention(s3, bucket, "monthly", today + timedelta(days=3), 12)
    assert later["stale_staging"] == ["staging/monthly/202611/abc/"] and later["deleted"] == later["stale_staging"]
    assert not s3.list_keys(bucket, prefix="staging/")
