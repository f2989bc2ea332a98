"""Retention of backup sets (`daily/YYYYMMDD/`, `monthly/YYYYMM/`, `safety/...`).

Only complete sets (with a manifest) outside the window are deleted, and never the newest verified
one, whatever its age: if every recent backup failed, the last good one is all there is. Sets
without a manifest may still be being written, so they are reported and left for a person; staging
left behind by interrupted runs (never visible as a backup) is deleted once nothing has written to it
for two days.
Ages count back from the run's date, never from now.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from prism_cloudflare.backup_sets import MANIFEST, PERIOD_FORMATS, RESTORABLE, STAGING, list_sets, prefix

log = logging.getLogger(__name__)
STAGING_GRACE_DAYS = 2


def _date(cadence: str, period: str) -> date:
    return datetime.strptime(period, PERIOD_FORMATS[cadence]).date()


def is_old(cadence: str, period: str, today: date, keep: int) -> bool:
    """Daily and safety sets keep `keep` days; monthly sets keep `keep` months, this month included."""
    day = _date(cadence, period)
    if cadence == "monthly":
        return (today.year - day.year) * 12 + today.month - day.month >= keep
    return (today - day).days > keep


def retention_plan(sets: dict[str, dict | None], cadence: str, today: date, keep: int) -> dict:
    """Which sets go. `sets` maps a period to its manifest (None: objects without a manifest)."""
    complete = {p for p, m in sets.items() if m}
    verified = {p for p in complete if (sets[p].get("verification") or {}).get("status") in RESTORABLE[cadence]}
    newest_verified = max(verified, default=None)  # periods sort as they date
    old = {p for p in sets if is_old(cadence, p, today, keep)}
    delete = sorted(old & complete - {newest_verified})
    return {"delete": delete, "keep": sorted(set(sets) - set(delete)), "newest_verified": newest_verified,
            "kept_beyond_window": sorted(old & {newest_verified}), "incomplete": sorted(set(sets) - complete),
            "old_incomplete": sorted(old - complete), "unverified": sorted(complete - verified)}


def _stale_staging(s3, bucket: str, cadence: str, today: date) -> list[str]:
    """Staging prefixes nothing has written to for STAGING_GRACE_DAYS before `today`: an in-flight
    run's staging is fresh, whatever period it is for."""
    newest: dict[str, datetime] = {}
    for obj in s3.iter_file_metadata(f"{STAGING}{cadence}/", bucket):
        parts = obj["Key"].split("/")
        if len(parts) < 5:
            continue
        sub = "/".join(parts[:4]) + "/"  # staging/<cadence>/<period>/<token>/
        newest[sub] = max(newest.get(sub, obj["LastModified"]), obj["LastModified"])
    return sorted(sub for sub, when in newest.items() if (today - when.date()).days > STAGING_GRACE_DAYS)


def apply_retention(s3, bucket: str, cadence: str, today: date, keep: int, dry_run: bool = False) -> dict:
    """List, plan and (unless `dry_run`) delete. A set's manifest goes first, so a deletion that is
    interrupted leaves an incomplete set, never a complete one with objects missing."""
    sets = list_sets(s3, bucket, cadence)
    plan = retention_plan(sets, cadence, today, keep)
    stale = _stale_staging(s3, bucket, cadence, today)
    for period in plan["old_incomplete"]:
        log.warning("s3://%s/%s is outside the window but has no manifest (an interrupted backup?): left for a "
                    "person to check", bucket, prefix(cadence, period))
    for period in plan["kept_beyond_window"]:
        log.warning("s3://%s/%s is outside the window but is the newest verified %s backup: kept", bucket,
                    prefix(cadence, period), cadence)
    doomed = [prefix(cadence, p) for p in plan["delete"]] + stale
    for sub in doomed:
        keys = sorted(s3.list_keys(bucket, prefix=sub) or [], key=lambda k: not k.endswith("/" + MANIFEST))
        if dry_run:
            log.info("dry run: would delete s3://%s/%s (%d objects)", bucket, sub, len(keys))
        elif keys:
            s3.delete_objects(bucket, keys[:1])
            if keys[1:]:
                s3.delete_objects(bucket, keys[1:])
            log.info("deleted s3://%s/%s (%d objects)", bucket, sub, len(keys))
    return {**plan, "cadence": cadence, "dry_run": dry_run, "stale_staging": stale,
            "deleted": [] if dry_run else doomed, "would_delete": doomed if dry_run else [],
            "reference_date": today.isoformat(), "keep": keep}
