"""Backup retention: the rules, and applying them to sets in the S3 stand-in."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from prism.backups.deletion_guard import CLOCK_SLACK, refuse_future_window
from prism.backups.retention import apply_retention, is_old, retention_plan
from prism.refusals import Refused

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
    assert not is_old("monthly", "202512", TODAY, 12) and is_old(
        "monthly", "202511", TODAY, 12
    )  # 12 months, this one included
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
    s3.load_bytes(b"x", key="staging/monthly/202611/abc/d1.sql.gz", bucket_name=bucket)  # written now
    now = datetime.now(timezone.utc)
    # an in-flight run of an old period is fresh: its objects were written just now
    assert apply_retention(s3, bucket, "monthly", now.date(), 12)["stale_staging"] == []
    # three days later (the clock moved too: a run dated then is not in the future)
    later = apply_retention(s3, bucket, "monthly", now.date() + timedelta(days=3), 12, now=now + timedelta(days=3))
    assert later["stale_staging"] == ["staging/monthly/202611/abc/"] and later["deleted"] == later["stale_staging"]
    assert not s3.list_keys(bucket, prefix="staging/")


# ---- no date makes a real backup "old" ----------------------------------------------------------


def seed_everything(s3, bucket, today: date) -> set[str]:
    """Old and recent daily sets, safety sets (a recovery's undo) and in-flight staging; every key."""
    for age in (60, 45, 31, 5, 1):
        put_set(s3, bucket, f"daily/{today - timedelta(days=age):%Y%m%d}/")
    for age in (40, 2):
        put_set(
            s3,
            bucket,
            f"safety/{today - timedelta(days=age):%Y%m%d}T101500Z/",
            {"verification": {"status": "checksummed"}},
        )
    s3.load_bytes(b"x", key=f"staging/daily/{today:%Y%m%d}/0123456789/d1.sql.gz", bucket_name=bucket)
    return set(s3.list_keys(bucket))


# Two days, not one: in the last 10 minutes of a UTC day tomorrow is inside the clock slack, whose
# edge test_the_clock_slack_is_ten_minutes_and_names_both_times checks on its own.
@pytest.mark.parametrize("ahead", [timedelta(days=90), timedelta(days=2), date(2099, 12, 31)])
def test_a_date_in_the_future_is_refused_naming_both_dates_and_nothing_is_deleted(s3, bucket, ahead):
    now = datetime.now(timezone.utc)
    today = ahead if isinstance(ahead, date) else (now + ahead).date()
    before = seed_everything(s3, bucket, now.date())
    for cadence in ("daily", "safety", "monthly"):
        for dry_run in (False, True):
            with pytest.raises(Refused) as refused:
                apply_retention(s3, bucket, cadence, today, 1, dry_run=dry_run)
            text = str(refused.value)
            assert text.startswith(
                f"refusing to delete {cadence} backup sets and staging: the run's window ends "
                f"{today.isoformat()}, after now {now.date().isoformat()}T"
            ), text
            assert text.endswith("(+10 min slack). Nothing was changed."), text
    assert set(s3.list_keys(bucket)) == before


def test_a_past_backfill_still_deletes_what_was_old_on_its_day(s3, bucket):
    now = datetime.now(timezone.utc)
    seed_everything(s3, bucket, now.date())
    past = now.date() - timedelta(days=10)  # a backfill of ten days ago: 60 and 45 days old now, 50 and 35 then
    result = apply_retention(s3, bucket, "daily", past, 30)
    assert result["deleted"] == [f"daily/{now.date() - timedelta(days=a):%Y%m%d}/" for a in (60, 45)]
    assert result["stale_staging"] == [] and result["future_dated"] == []
    assert result["newest_verified"] == f"{now.date() - timedelta(days=31):%Y%m%d}"  # the newest on its day
    # the present: the 31-day-old set is old now; today's staging is in flight
    result = apply_retention(s3, bucket, "daily", now.date(), 30)
    assert result["deleted"] == [f"daily/{now.date() - timedelta(days=31):%Y%m%d}/"]
    assert s3.list_keys(bucket, prefix="staging/")
    safety = apply_retention(s3, bucket, "safety", now.date(), 30)
    assert safety["deleted"] == [f"safety/{now.date() - timedelta(days=40):%Y%m%d}T101500Z/"]


def test_the_clock_slack_is_ten_minutes_and_names_both_times():
    now = datetime(2026, 12, 6, 19, 40, tzinfo=timezone.utc)
    refuse_future_window("x", now + CLOCK_SLACK, now)  # within the slack: a run made a little early
    refuse_future_window("x", now - timedelta(days=400), now)  # the past: a backfill
    refuse_future_window("x", date(2026, 12, 6), now)  # today
    with pytest.raises(
        Refused,
        match=re.escape(
            "refusing to delete log archives: the run's window ends 2026-12-06T19:50:01+00:00, after now "
            "2026-12-06T19:40:00+00:00 (+10 min slack). Nothing was changed."
        ),
    ):
        refuse_future_window("log archives", now + CLOCK_SLACK + timedelta(seconds=1), now)
    with pytest.raises(Refused, match="window ends 2027-03-01T09:00:00[+]00:00, after now 2026-12-06T19:40:00[+]00:00"):
        refuse_future_window("x", datetime(2027, 3, 1, 10, tzinfo=timezone(timedelta(hours=1))), now)
    with pytest.raises(Refused, match="window ends 2026-12-08, after now"):
        refuse_future_window("x", date(2026, 12, 8), now)


def test_a_future_dated_set_is_never_the_newest_nor_deleted(s3, bucket):
    """Every recent backup failed; the last good one is 45 days old. A set named daily/20991231/
    (a clock gone wrong, a hand-made copy) must not stand in for it."""
    today = datetime.now(timezone.utc).date()
    good = f"{today - timedelta(days=45):%Y%m%d}"
    put_set(s3, bucket, f"daily/{good}/")
    put_set(s3, bucket, f"daily/{today - timedelta(days=40):%Y%m%d}/", FAILED)
    put_set(s3, bucket, "daily/20991231/")
    tomorrow = f"{today + timedelta(days=1):%Y%m%d}"
    put_set(s3, bucket, f"daily/{tomorrow}/")
    result = apply_retention(s3, bucket, "daily", today, 30)
    assert result["newest_verified"] == good and result["kept_beyond_window"] == [good]
    assert result["deleted"] == [f"daily/{today - timedelta(days=40):%Y%m%d}/"]
    assert result["future_dated"] == [tomorrow, "20991231"] and result["after_reference"] == [tomorrow, "20991231"]
    assert s3.check_for_key(f"daily/{good}/manifest.json", bucket) and s3.check_for_key(
        "daily/20991231/manifest.json", bucket
    )
    # and in the plan alone
    plan = retention_plan({good: VERIFIED, "20991231": VERIFIED}, "daily", today, 30)
    assert plan["newest_verified"] == good and plan["delete"] == []


# Names under daily/ that are not canonical periods; strptime alone accepted several of them.
STRAYS = [
    "2026011",
    "2026111",
    "20261399",
    "2026-11-01",
    "20261101x",
    "\u0662\u0660\u0662\u0666\u0660\u0661\u0660\u0661",
    "\uff12\uff10\uff12\uff16\uff10\uff11\uff10\uff11",
    " 20260101",
    "<script>alert(1)</script>",
    'it\'s "quoted"',
    "x" * 300,
]


def test_names_that_are_not_periods_are_reported_never_deleted_nor_newest(s3, bucket):
    today = datetime.now(timezone.utc).date()
    good = f"{today - timedelta(days=45):%Y%m%d}"
    put_set(s3, bucket, f"daily/{good}/")  # the only real verified set: old, and must stay
    for name in STRAYS:
        put_set(s3, bucket, f"daily/{name}/")
    s3.load_bytes(b"x", key="daily/readme.txt", bucket_name=bucket)
    s3.load_bytes(b"x", key="staging/daily/2026011/0123456789/d1.sql.gz", bucket_name=bucket)
    before = set(s3.list_keys(bucket))
    result = apply_retention(s3, bucket, "daily", today, 30)
    assert result["newest_verified"] == good and result["deleted"] == []
    # (a `/` in a name nests it: `daily/<script>alert(1)</` is the stray prefix S3 lists)
    assert result["not_periods"] == sorted(
        [f"daily/{n.split('/')[0]}/" for n in STRAYS] + ["daily/readme.txt", "staging/daily/2026011/"]
    )
    assert set(s3.list_keys(bucket)) == before
    # the plan never counts a stray, even handed one
    plan = retention_plan({good: VERIFIED, "2026111": VERIFIED, "20261101\n": VERIFIED}, "daily", today, 30)
    assert plan["newest_verified"] == good and plan["not_periods"] == ["20261101\n", "2026111"] and plan["delete"] == []
