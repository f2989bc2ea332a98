"""Retention of backup sets (`daily/YYYYMMDD/`, `monthly/YYYYMM/`, `safety/...`).

Only complete sets (with a manifest) outside the window are deleted, and never the newest verified
one, whatever its age: if every recent backup failed, the last good one is all there is. Sets
without a manifest may still be being written, so they are reported and left for a person; staging
left behind by interrupted runs (never visible as a backup) is deleted once nothing has written to it
for two days.
Ages count back from the run's date, never from now; a run dated in the future is refused
(deletion_guard). Only canonical periods are sets (backup_sets.is_period): anything else under a
cadence prefix is reported and never deleted. A set dated after the run's date is not this run's to
judge: never deleted, and never the "newest verified" that protects an older one (a stray
`daily/20991231/` must not let the real last good backup go).
`daily_retention` is prism_daily's `backup_retention` task (daily and safety sets).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

from prism.backups.deletion_guard import refuse_future_window, wall_clock
from prism.backups.inventory import non_periods
from prism.backups.sets import (
    MANIFEST,
    PERIOD_FORMATS,
    RESTORABLE,
    STAGING,
    is_period,
    list_sets,
    load_manifest,
    prefix,
)
from prism.backups.tasks import set_period
from prism.refusals import refuse
from prism.runtime import in_backfill, window
from prism.settings import connections
from prism.settings.config import runtime_config

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
    periods = {p for p in sets if is_period(cadence, p)}  # canonical periods sort as they date
    complete = {p for p in periods if sets[p]}
    verified = {p for p in complete if (sets[p].get("verification") or {}).get("status") in RESTORABLE[cadence]}
    after = {p for p in periods if _date(cadence, p) > today}
    newest_verified = max(verified - after, default=None)
    old = {p for p in periods if is_old(cadence, p, today, keep)}
    delete = sorted(old & complete - {newest_verified})
    return {
        "delete": delete,
        "keep": sorted(set(sets) - set(delete)),
        "newest_verified": newest_verified,
        "kept_beyond_window": sorted(old & {newest_verified}),
        "incomplete": sorted(periods - complete),
        "old_incomplete": sorted(old - complete),
        "unverified": sorted(complete - verified),
        "after_reference": sorted(after),
        "not_periods": sorted(set(sets) - periods),
    }


def _stale_staging(s3, bucket: str, cadence: str, today: date) -> tuple[list[str], list[str]]:
    """(stale, strays): staging prefixes nothing has written to for STAGING_GRACE_DAYS before `today`
    (an in-flight run's staging is fresh, whatever period it is for), and keys under the cadence's
    staging that are not `<period>/<token>/...` of a canonical period (reported, never deleted)."""
    newest: dict[str, datetime] = {}
    strays: set[str] = set()
    for obj in s3.iter_file_metadata(f"{STAGING}{cadence}/", bucket):
        parts = obj["Key"].split("/")
        if len(parts) < 5 or not is_period(cadence, parts[2]) or not parts[3]:
            strays.add(obj["Key"] if len(parts) < 4 else "/".join(parts[:3]) + "/")
            continue
        sub = "/".join(parts[:4]) + "/"  # staging/<cadence>/<period>/<token>/
        newest[sub] = max(newest.get(sub, obj["LastModified"]), obj["LastModified"])
    stale = sorted(sub for sub, when in newest.items() if (today - when.date()).days > STAGING_GRACE_DAYS)
    return stale, sorted(strays)


def require_good_backup(context, group_id: str, cadence: str, s3=None, bucket: str | None = None) -> str:
    """Retention expires sets only after this run's own backup proved restorable (as pgBackRest
    expires only after a good backup). Returns what it relied on; otherwise refuses, saying why.
    A refusal, not a skip: Airflow judges a run by its last tasks, and retention follows the backup,
    so a skipped retention would turn the day of a failed backup green. Inside a backfill no backup
    is taken (a live export cannot stand for a past date): retention counts from the window."""
    if in_backfill(context):
        return "a backfill takes no backup; retention counts from the run's window"
    period = set_period(cadence, context)
    checked = context["ti"].xcom_pull(task_ids=f"{group_id}.verify") or {}
    status = checked.get("status") if isinstance(checked, dict) else None
    if status in RESTORABLE[cadence]:
        return f"this run's backup {prefix(cadence, period)} is {status}"
    found = ""
    if s3 is not None and bucket:
        manifest = load_manifest(s3, bucket, cadence, period)
        found = "; its manifest: " + (
            "none (the backup did not complete)"
            if manifest is None
            else (manifest.get("verification") or {}).get("status") or "unverified"
        )
    raise refuse(
        f"to expire {cadence} backup sets",
        f"this run's backup {prefix(cadence, period)} did not pass verification ({group_id}.verify failed, "
        f"was skipped or did not run{found}); sets are expired only after a good backup, so the next "
        "run with a verified backup expires them",
    )


def apply_retention(
    s3, bucket: str, cadence: str, today: date, keep: int, dry_run: bool = False, now: datetime | None = None
) -> dict:
    """List, plan and (unless `dry_run`) delete. A set's manifest goes first, so a deletion that is
    interrupted leaves an incomplete set, never a complete one with objects missing. Refuses a
    `today` in the future of `now` (default: the wall clock) before listing anything."""
    now = now or wall_clock()
    refuse_future_window(f"{cadence} backup sets and staging", today, now)
    sets = list_sets(s3, bucket, cadence)
    plan = retention_plan(sets, cadence, today, keep)
    stale, staging_strays = _stale_staging(s3, bucket, cadence, today)
    strays = sorted({*non_periods(s3, bucket, cadence), *staging_strays})
    for stray in strays:
        log.warning(
            "s3://%s/%s is not a %s backup set (not a canonical period): never deleted nor counted; "
            "left for a person to check",
            bucket,
            stray,
            cadence,
        )
    wall_today = now.date()
    future = [p for p in plan["after_reference"] if _date(cadence, p) > wall_today]
    for period in future:
        log.warning(
            "s3://%s/%s is dated after today (%s): kept, and not counted as the newest verified set",
            bucket,
            prefix(cadence, period),
            wall_today,
        )
    for period in plan["old_incomplete"]:
        log.warning(
            "s3://%s/%s is outside the window but has no manifest (an interrupted backup?): left for a person to check",
            bucket,
            prefix(cadence, period),
        )
    for period in plan["kept_beyond_window"]:
        log.warning(
            "s3://%s/%s is outside the window but is the newest verified %s backup: kept",
            bucket,
            prefix(cadence, period),
            cadence,
        )
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
    return {
        **plan,
        "cadence": cadence,
        "dry_run": dry_run,
        "stale_staging": stale,
        "not_periods": strays,
        "future_dated": future,
        "deleted": [] if dry_run else doomed,
        "would_delete": doomed if dry_run else [],
        "reference_date": today.isoformat(),
        "keep": keep,
    }


def expire_after_good_backup(
    context,
    s3,
    bucket: str,
    cadence: str,
    backup_group: str,
    window_end: datetime,
    keep: int,
    *,
    what: str,
    dry_run: bool = False,
) -> dict:
    """A retention task's whole rule: refuse a window ending in the future, go on only after this run's
    backup (the TaskGroup `backup_group`) proved restorable, then expire by age from the window's day."""
    refuse_future_window(what, window_end)
    basis = require_good_backup(context, backup_group, cadence, s3, bucket)
    log.info("retention after: %s", basis)
    day = window_end.astimezone(timezone.utc).date()
    return {**apply_retention(s3, bucket, cadence, day, keep, dry_run=dry_run), "after": basis}


# prism_daily's `backup_retention` task (its docstring is the task's doc in the UI)
def daily_retention(params=None, **context) -> dict:
    """Delete complete daily sets older than `backups.daily_retention_days` (from the run's date),
    never the newest verified one, and staging left by interrupted runs. `dry_run` deletes nothing.
    Refuses a window ending in the future; runs only after today's backup proved restorable."""
    backups, dry_run = runtime_config()["backups"], bool((params or {}).get("dry_run"))
    s3, end = connections.s3(), window(context)[1]
    result = expire_after_good_backup(
        context,
        s3,
        backups["bucket"],
        "daily",
        "daily_backup",
        end,
        backups["daily_retention_days"],
        dry_run=dry_run,
        what="daily and safety backup sets and staging",
    )
    # disaster recovery's safety sets: the same rules, their own window
    day = end.astimezone(timezone.utc).date()
    result["safety"] = apply_retention(
        s3, backups["bucket"], "safety", day, backups["safety_retention_days"], dry_run=dry_run
    )
    return result
