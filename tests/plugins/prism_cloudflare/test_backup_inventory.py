"""Backup sets in the bucket: which belong to a quarter, complete or not and how far verified, and
which one the restore drill tests."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from prism_cloudflare.backup_inventory import backups_of_quarter, bucket_sets, newest_complete, quarter_sets

Q2 = (datetime(2026, 4, 1, tzinfo=timezone.utc), datetime(2026, 7, 1, tzinfo=timezone.utc))


def manifest(status: str) -> dict:
    return {"objects": [], "verification": {"status": status}}


SETS = {"daily": {"20260331": manifest("verified"), "20260401": manifest("verified"), "20260415": None,
                  "20260630": manifest("failed"), "20260701": manifest("verified")},
        "monthly": {"202603": manifest("verified"), "202604": manifest("verified"), "202606": None,
                    "202607": manifest("checksummed")}}


def test_a_quarters_sets_with_their_state_and_the_months_without_a_complete_set():
    assert quarter_sets(SETS, *Q2) == {
        "daily": [{"period": "20260401", "complete": True, "status": "verified"},
                  {"period": "20260415", "complete": False, "status": None},
                  {"period": "20260630", "complete": True, "status": "failed"}],
        "monthly": [{"period": "202604", "complete": True, "status": "verified"},
                    {"period": "202606", "complete": False, "status": None}],
        "missing_monthly": ["202605", "202606"]}  # June has objects but no manifest: not a backup
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
    for key in ("daily/notadate/manifest.json", "safety/20260402T000000Z/manifest.json", "staging/daily/20260402/t/d1.sql.gz",
                "reports/backups/daily/20260402/verification.md"):
        s3.load_string(json.dumps(manifest("verified")), key, bucket)
    assert bucket_sets(s3, bucket) == SETS
    assert backups_of_quarter(s3, bucket, *Q2) == quarter_sets(SETS, *Q2)
