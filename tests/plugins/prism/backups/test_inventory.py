"""Backup sets in the bucket: which belong to a quarter, complete or not and how far verified, and
which one the restore drill tests."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone

import pytest

from prism.backups.inventory import backups_of_quarter, bucket_sets, newest_complete, non_periods, quarter_sets
from prism.backups.sets import is_period, prefix

Q2 = (datetime(2026, 4, 1, tzinfo=timezone.utc), datetime(2026, 7, 1, tzinfo=timezone.utc))


def manifest(status: str) -> dict:
    return {"objects": [], "verification": {"status": status}}


SETS = {
    "daily": {
        "20260331": manifest("verified"),
        "20260401": manifest("verified"),
        "20260415": None,
        "20260630": manifest("failed"),
        "20260701": manifest("verified"),
    },
    "monthly": {
        "202603": manifest("verified"),
        "202604": manifest("verified"),
        "202606": None,
        "202607": manifest("checksummed"),
    },
}


def test_a_quarters_sets_with_their_state_and_the_months_without_a_complete_set():
    assert quarter_sets(SETS, *Q2) == {
        "daily": [
            {"period": "20260401", "complete": True, "status": "verified"},
            {"period": "20260415", "complete": False, "status": None},
            {"period": "20260630", "complete": True, "status": "failed"},
        ],
        "monthly": [
            {"period": "202604", "complete": True, "status": "verified"},
            {"period": "202606", "complete": False, "status": None},
        ],
        "missing_monthly": ["202605", "202606"],
    }  # June has objects but no manifest: not a backup
    assert quarter_sets({}, *Q2) == {"daily": [], "monthly": [], "missing_monthly": ["202604", "202605", "202606"]}


def test_the_drill_takes_the_newest_complete_daily_set_else_monthly():
    assert newest_complete(SETS) == ("daily", "20260701")
    assert newest_complete({"daily": {"20260801": None}, "monthly": SETS["monthly"]}) == ("monthly", "202607")
    assert newest_complete({"daily": {"20260801": None}, "monthly": {"202608": None}}) is None
    assert newest_complete({}) is None


@pytest.fixture
def bucket(s3):
    name = f"inventory-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=name)
    return name


def test_the_bucket_is_listed_through_the_manifests(s3, bucket):
    for cadence, sets in SETS.items():
        for period, m in sets.items():
            s3.load_string("x", f"{cadence}/{period}/d1.sql.gz", bucket)
            if m is not None:
                s3.load_string(json.dumps(m), f"{cadence}/{period}/manifest.json", bucket)
    for key in (
        "daily/notadate/manifest.json",
        "safety/20260402T000000Z/manifest.json",
        "staging/daily/20260402/t/d1.sql.gz",
        "reports/backups/daily/20260402/verification.md",
    ):
        s3.load_string(json.dumps(manifest("verified")), key, bucket)
    assert bucket_sets(s3, bucket) == SETS
    assert backups_of_quarter(s3, bucket, *Q2) == quarter_sets(SETS, *Q2)


# ---- periods are canonical or not periods at all ---------------------------------------------------


@pytest.mark.parametrize(
    "cadence, period",
    [
        ("daily", "20261101"),
        ("daily", "20280229"),
        ("daily", "19991231"),
        ("monthly", "202611"),
        ("monthly", "209912"),
        ("safety", "20261129T180000Z"),
        ("daily", "20991231"),
    ],
)  # a future date is still a canonical name
def test_canonical_periods(cadence, period):
    assert is_period(cadence, period) and prefix(cadence, period) == f"{cadence}/{period}/"


@pytest.mark.parametrize(
    "cadence, period",
    [
        ("daily", "2026011"),
        ("daily", "2026111"),
        ("daily", "20261399"),
        ("daily", "2026-11-01"),
        ("daily", "20261101x"),
        ("daily", "20260229"),
        ("daily", "20261101\n"),
        ("daily", " 20261101"),
        ("daily", "00000101"),
        ("daily", "\u0662\u0660\u0662\u0666\u0661\u0661\u0660\u0661"),  # Arabic-Indic digits: strptime takes them
        ("daily", "\uff12\uff10\uff12\uff16\uff11\uff11\uff10\uff11"),  # fullwidth digits
        ("daily", "<script>alert(1)</script>"),
        ("daily", "x" * 500),
        ("daily", ""),
        ("daily", None),
        ("monthly", "202613"),
        ("monthly", "20261"),
        ("monthly", "2026-11"),
        ("monthly", "20261101"),
        ("safety", "20261129T180000"),
        ("safety", "20261129T250000Z"),
        ("safety", "20261129t180000z"),
    ],
)
def test_anything_else_is_not_a_period(cadence, period):
    assert not is_period(cadence, period)
    with pytest.raises(ValueError, match="is not a .* period"):
        prefix(cadence, period)


def test_non_periods_are_listed_and_never_sets(s3, bucket):
    names = [
        "2026011",
        "20261399",
        "2026-11-01",
        "20261101x",
        "\uff12\uff10\uff12\uff16\uff11\uff11\uff10\uff11",
        'it\'s "q"',
        "20260701",
    ]
    for name in names:
        s3.load_string(json.dumps(manifest("verified")), f"daily/{name}/manifest.json", bucket)
    s3.load_string("x", "daily/notes.txt", bucket)
    assert non_periods(s3, bucket, "daily") == sorted([f"daily/{n}/" for n in names[:-1]] + ["daily/notes.txt"])
    assert set(bucket_sets(s3, bucket)["daily"]) == {"20260701"}
    assert non_periods(s3, bucket, "monthly") == []


def test_the_drill_never_takes_a_future_dated_or_stray_set_as_the_newest():
    sets = {
        "daily": {"20260701": manifest("verified"), "20991231": manifest("verified"), "2026111": manifest("verified")},
        "monthly": {},
    }
    assert newest_complete(sets, today=date(2026, 12, 6)) == ("daily", "20260701")
    assert newest_complete(sets) == ("daily", "20260701")  # today by the wall clock
    assert newest_complete(
        {"daily": {"20991231": manifest("verified")}, "monthly": {"202607": manifest("verified")}},
        today=date(2026, 12, 6),
    ) == ("monthly", "202607")
