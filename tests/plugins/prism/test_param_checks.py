"""The Param patterns and the calendar checks behind them: anchored, ASCII, real dates, no future."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from prism.param_checks import (
    BACKUP_DATE_PATTERN,
    ISO_WITH_ZONE_PATTERN,
    REPO_PATTERN,
    backup_moment,
    check_backup_date,
    confirmation_help,
    exact_word,
    parse_iso_with_zone,
    shown,
)

NOW = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value",
    [
        "20261101\n",
        "\n20261101",
        "２０２６１１０１",
        "٢٠٢٦١١٠١",
        "20261101 ",
        "2026111",
        "safety-20261101T000000Z\n",
        "safety-20261101T000000",
    ],
)
def test_the_backup_pattern_is_anchored_and_ascii(value):
    assert re.search(BACKUP_DATE_PATTERN, value) is None


@pytest.mark.parametrize("value", ["20261101\n", "２０２６１１０１", "٢٠٢٦١١٠١", "safety-20261101T000000Z\n"])
def test_the_old_pattern_let_these_through(value):
    # Why \A...\Z and [0-9]: jsonschema searches a pattern, `$` matches before a final newline, \d any digit.
    assert re.search(r"^(\d{8}|\d{6}|safety-\d{8}T\d{6}Z)$", value)


@pytest.mark.parametrize(
    "value, cadence, moment",
    [
        ("20261101", "daily", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("202402", "monthly", datetime(2024, 2, 1, tzinfo=timezone.utc)),
        ("20240229", "daily", datetime(2024, 2, 29, tzinfo=timezone.utc)),
        ("safety-20261129T115959Z", "safety", datetime(2026, 11, 29, 11, 59, 59, tzinfo=timezone.utc)),
    ],
)
def test_real_names_parse(value, cadence, moment):
    assert backup_moment(value) == (cadence, moment)
    assert check_backup_date(value, NOW) == value


@pytest.mark.parametrize(
    "value",
    [
        "20261399",
        "20260230",
        "20250229",
        "00000101",
        "202613",
        "202600",
        "safety-20261301T000000Z",
        "safety-20260101T240000Z",
        "safety-20260101T000060Z",
    ],
)
def test_impossible_dates_are_refused(value):
    with pytest.raises(ValueError, match="is not a real date"):
        check_backup_date(value, NOW)


@pytest.mark.parametrize("value", ["20261130", "202612", "safety-20261129T121000Z", "99991231"])
def test_future_names_are_refused(value):
    with pytest.raises(ValueError, match="is in the future"):
        check_backup_date(value, NOW)


def test_times_need_a_zone_a_real_date_and_the_past():
    assert parse_iso_with_zone("since", "2026-11-28T10:00:00+02:00", NOW) == datetime(
        2026, 11, 28, 8, tzinfo=timezone.utc
    )
    for value, says in [
        ("2026-11-28T09:00:00", "has no time zone"),
        ("2026-11-28 09:00", "has no time zone"),
        ("2026-02-30T00:00:00Z", "is not a real time"),
        ("2026-11-30T00:00:00Z", "is in the future"),
        ("2026-11-28T09:00:00Z\n", "is not ISO 8601"),
        ("２０２６-11-28T09:00:00Z", "is not ISO 8601"),
        (None, "is not ISO 8601"),
        (1764320400, "is not ISO 8601"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse_iso_with_zone("since", value, NOW)
    assert re.search(ISO_WITH_ZONE_PATTERN, "2026-11-28T09:00:00.123456Z")


def test_words_repos_and_quoting():
    assert re.search(exact_word("RESTORE"), "RESTORE")
    for wrong in ("restore", "RESTORE\n", " RESTORE", "RESTOREX", "ＲＥＳＴＯＲＥ"):
        assert re.search(exact_word("RESTORE"), wrong) is None
    assert re.search(REPO_PATTERN, "prism/core") and re.search(REPO_PATTERN, "prism/core\n") is None
    assert re.search(REPO_PATTERN, "../../etc/passwd") is None and re.search(REPO_PATTERN, "ｐｒｉｓｍ/core") is None
    assert shown("a\nb") == "'a\\nb'"
    long = shown("9" * 10_000)
    assert len(long) < 120 and long.endswith("(10000 characters)")


def test_a_long_list_of_unknown_keys_is_cut():
    from prism.dag_factory import _shown

    assert _shown([f"k{i:02}" for i in range(25)]).endswith("'k19'] and 5 more")


@pytest.mark.parametrize("word", ["RESTORE", "REBUILD"])
def test_a_confirmation_field_says_it_is_required_and_what_to_type(word):
    """The 3.3 trigger form shows the description under the field, keeps Trigger disabled while a required
    field is empty without naming it, and does not run the pattern: the text says all three."""
    text = confirmation_help(word, "What it does.")
    assert text.startswith("Required: Trigger stays disabled until this is filled.")
    assert f"Type {word}: exactly that word" in text and "case-sensitive" in text
    assert f'"{word.lower()}"' in text and f'"{word.title()}"' in text
    assert text.endswith(" What it does.")
    assert re.search(exact_word(word), word) and not re.search(exact_word(word), word.lower())
