"""Which backup sets the bucket holds (`daily/YYYYMMDD/`, `monthly/YYYYMM/`; see backup_sets): per
period, complete or not (a manifest or none) and how far verified. The quarterly review reports the
sets of the quarter it covers, and its restore drill tests the newest complete set.

Only canonical periods are sets (backup_sets.is_period); anything else under a cadence prefix is a
stray (`non_periods`), reported, never counted as newest. A set dated after now is not "newest"
either: its name, not its content, claims that date."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from prism.backups.deletion_guard import wall_clock
from prism.backups.sets import PERIOD_FORMATS, is_period, list_sets

CADENCES = ("daily", "monthly")  # safety sets belong to a disaster recovery, not to the schedule


def bucket_sets(s3, bucket: str) -> dict[str, dict[str, dict | None]]:
    """{cadence: {period: manifest or None}} for the daily and monthly sets in the bucket."""
    return {cadence: list_sets(s3, bucket, cadence) for cadence in CADENCES}


def set_state(period: str, manifest: dict | None) -> dict:
    """One set as the review reports it: complete means it has a manifest; its verification status."""
    return {
        "period": period,
        "complete": manifest is not None,
        "status": (manifest.get("verification") or {}).get("status") if manifest is not None else None,
    }


def quarter_sets(sets: dict[str, dict[str, dict | None]], start: datetime, end: datetime) -> dict:
    """The daily and monthly sets of the quarter [start, end) (from bucket_sets()), oldest first, and
    the months of the quarter without a complete monthly set."""
    last = end - timedelta(days=1)
    out: dict = {}
    for cadence in CADENCES:
        fmt = PERIOD_FORMATS[cadence]
        low, high = start.strftime(fmt), last.strftime(fmt)
        out[cadence] = [set_state(p, m) for p, m in sorted(sets.get(cadence, {}).items()) if low <= p <= high]
    complete = {s["period"] for s in out["monthly"] if s["complete"]}
    months, month = [], start
    while month < end:
        months.append(month.strftime(PERIOD_FORMATS["monthly"]))
        month += relativedelta(months=1)
    out["missing_monthly"] = [m for m in months if m not in complete]
    return out


def non_periods(s3, bucket: str, cadence: str) -> list[str]:
    """What lies directly under `{cadence}/` that is not a canonical period's prefix: prefixes such as
    `daily/2026011/` or `daily/20261101x/`, and loose objects such as `daily/readme.txt`."""
    root = f"{cadence}/"
    subs = [
        sub
        for sub in s3.list_prefixes(bucket, prefix=root, delimiter="/") or []
        if not is_period(cadence, sub[len(root) :].rstrip("/"))
    ]
    loose = [key for key in s3.list_keys(bucket, prefix=root, delimiter="/") or [] if key != root]
    return sorted({*subs, *loose})


def newest_complete(sets: dict[str, dict[str, dict | None]], today: date | None = None) -> tuple[str, str] | None:
    """(cadence, period) of the newest complete daily set, else of the newest complete monthly set;
    only canonical periods dated no later than `today` (default: the UTC date now)."""
    today = today or wall_clock().date()
    for cadence in CADENCES:
        complete = [
            p
            for p, manifest in sets.get(cadence, {}).items()
            if manifest is not None
            and is_period(cadence, p)
            and datetime.strptime(p, PERIOD_FORMATS[cadence]).date() <= today
        ]
        if complete:
            return cadence, max(complete)  # periods sort as they date
    return None


def backups_of_quarter(s3, bucket: str, start: datetime, end: datetime) -> dict:
    """quarter_sets() of what the bucket holds."""
    return quarter_sets(bucket_sets(s3, bucket), start, end)
