"""Disaster recovery input checks (the cross-field rules the Param schema cannot express)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prism.recovery.validation import RecoveryInputError, check_params

NOW = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)
ALL = ["d1", "vectorize", "kv"]


def check(**params):
    return check_params({"confirm": "RESTORE", "source": "s3", "targets": ALL, **params}, NOW, 30)


def test_an_s3_restore_needs_a_backup_and_the_typed_confirmation():
    assert check(backup_date="20261128") == {"source": "s3", "backup_id": "20261128", "targets": ALL}
    with pytest.raises(RecoveryInputError, match="needs backup_date"):
        check()
    for wrong in ("restore", "", None, "RESTORE "):
        with pytest.raises(RecoveryInputError, match="type RESTORE"):
            check(backup_date="20261128", confirm=wrong)


def test_targets_are_a_non_empty_subset():
    assert check(backup_date="202611", targets=["kv", "kv"])["targets"] == ["kv"]
    for wrong in ([], ["d1", "r2"], None):
        with pytest.raises(RecoveryInputError, match="targets"):
            check(backup_date="202611", targets=wrong)


def test_time_travel_is_d1_only_and_inside_the_window():
    ok = check(source="time_travel", targets=["d1"], timestamp="2026-11-28T09:00:00Z")
    assert ok == {"source": "time_travel", "timestamp": "2026-11-28T09:00:00+00:00", "targets": ["d1"]}
    with pytest.raises(RecoveryInputError, match="D1 only"):
        check(source="time_travel", timestamp="2026-11-28T09:00:00Z")
    with pytest.raises(RecoveryInputError, match="outside the Time Travel window"):
        check(source="time_travel", targets=["d1"], timestamp=(NOW - timedelta(days=30, seconds=1)).isoformat())
    with pytest.raises(RecoveryInputError, match="outside the Time Travel window"):
        check(source="time_travel", targets=["d1"], timestamp=(NOW + timedelta(minutes=5)).isoformat())
    with pytest.raises(RecoveryInputError, match="no time zone"):
        check(source="time_travel", targets=["d1"], timestamp="2026-11-28T09:00:00")
    with pytest.raises(RecoveryInputError, match="not ISO 8601"):
        check(source="time_travel", targets=["d1"], timestamp="yesterday")
    with pytest.raises(RecoveryInputError, match="source must be"):
        check(source="tape")
