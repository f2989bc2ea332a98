"""Checks of the values people type into a manual DAG's Param form, shared by the Param schemas
(refused when the run is made) and the validate tasks (refused before anything changes).

JSON-schema patterns are *searched* (Python's `re.search` on the API server), and `$` matches before
a final newline, so every pattern here is anchored with `\\A...\\Z` and uses ASCII `[0-9]`, never `\\d`
(which matches any script's digits). The Airflow 3.3 trigger form does not run patterns in the browser
(only min/maxLength, and "required": a type without "null" and an empty value keep Trigger disabled), so
the Python-only anchors are safe there, and a Param's description must say what the pattern wants.
A pattern cannot tell 20261399 or 20260230 from a date: the functions below check the calendar, and
refuse the future.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from prism.backups.sets import parse_backup_id

# A clock slack: a worker's clock may run a little behind the one that named a safety backup.
CLOCK_SLACK = timedelta(minutes=5)

BACKUP_DATE_PATTERN = r"\A(?:[0-9]{8}|[0-9]{6}|safety-[0-9]{8}T[0-9]{6}Z)\Z"
# ISO 8601 with a zone (Z or +hh:mm), a T or a space between date and time, seconds optional.
ISO_WITH_ZONE_PATTERN = (
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
)
REPO_PATTERN = r"\A[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}\Z"
# Free text that is only logged: one line, no control characters (no forged log lines).
ONE_LINE_PATTERN = r"\A[^\x00-\x1f\x7f]*\Z"


def exact_word(word: str) -> str:
    """The pattern of a typed confirmation: that word, in capitals, nothing around it."""
    return rf"\A{re.escape(word)}\Z"


def confirmation_help(word: str, consequence: str) -> str:
    """The description of a typed-confirmation Param, shown under the field in the trigger form. The 3.3 form
    keeps Trigger disabled while a required field is empty without saying which, and does not check the
    pattern (the API server does, when the run is made), so the text says both: required, and the exact word."""
    return (
        f"Required: Trigger stays disabled until this is filled. Type {word}: exactly that word, in capital "
        f'letters. It is case-sensitive: "{word.lower()}" or "{word.title()}" is refused, and so is a space or '
        f"a new line around it. {consequence}"
    )


def shown(value, width: int = 80) -> str:
    """A value as a refusal quotes it: repr (newlines and quotes stay visible), cut when long."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}... ({len(str(value))} characters)"


def _fullmatch(pattern: str, value) -> bool:
    return isinstance(value, str) and re.search(pattern, value) is not None


def backup_moment(value) -> tuple[str, datetime]:
    """(cadence, the moment the name stands for) of a backup name, or ValueError saying why not.
    YYYYMMDD: a daily set; YYYYMM: a monthly one; safety-YYYYMMDDTHHMMSSZ: a recovery's safety backup."""
    if not _fullmatch(BACKUP_DATE_PATTERN, value):
        raise ValueError(
            f"backup_date {shown(value)} is not a backup name: use YYYYMMDD (daily), YYYYMM (monthly) "
            "or safety-YYYYMMDDTHHMMSSZ (the safety backup of an earlier recovery), in ASCII digits"
        )

    cadence, period = parse_backup_id(value)
    digits = period.replace("T", "").rstrip("Z")
    # Field by field, not strptime: datetime's own message names the field ("month must be in 1..12").
    parts = [int(digits[:4]), int(digits[4:6]), int(digits[6:8]) if len(digits) > 6 else 1]
    parts += [int(digits[i : i + 2]) for i in (8, 10, 12) if len(digits) > i]
    try:
        moment = datetime(*parts, tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"backup_date {shown(value)} is not a real date ({exc})") from None
    return cadence, moment


def check_backup_date(value, now: datetime) -> str:
    """The backup name, when it is one and does not lie in the future; ValueError otherwise."""
    _, moment = backup_moment(value)
    if moment > now + CLOCK_SLACK:
        raise ValueError(
            f"backup_date {shown(value)} is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ}): "
            "no backup can have been taken then"
        )
    return value


def parse_iso_with_zone(name: str, value, now: datetime) -> datetime:
    """A time typed as ISO 8601 with a zone, a real date, not in the future; ValueError otherwise."""
    if isinstance(value, str) and re.search(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+\Z", value):
        raise ValueError(f"{name} {shown(value)} has no time zone; add Z for UTC (e.g. 2026-11-28T09:00:00Z)")
    if not _fullmatch(ISO_WITH_ZONE_PATTERN, value):
        raise ValueError(f"{name} {shown(value)} is not ISO 8601 with a time zone (e.g. 2026-11-28T09:00:00Z)")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name} {shown(value)} is not a real time ({exc})") from None
    if when > now + CLOCK_SLACK:
        raise ValueError(f"{name} {when.isoformat()} is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ})")
    return when.astimezone(timezone.utc)
