"""Tasks that delete by age refuse a run dated in the future.

Ages and cutoffs count from the run's date, never from now, so a backfill deletes what its own day
would have deleted. A run dated in the future would make every real backup, log and staging object
"old". This is the one place the wall clock decides: it guards against trusting a date.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from prism.refusals import refuse

# Clocks drift, and a manual run made for "09:00 today" may start a few minutes early.
CLOCK_SLACK = timedelta(minutes=10)


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def _as_utc(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.combine(value, time.min, timezone.utc)  # a date: its first instant


def is_in_future(end: date | datetime, now: datetime | None = None) -> bool:
    return _as_utc(end) > (now or wall_clock()) + CLOCK_SLACK


def refuse_future_window(
    what: str, end: date | datetime, now: datetime | None = None, *, action: str | None = None
) -> None:
    """Raise the refusal `refusing to delete <what>: the run's window ends <end>, after now <now>
    (+10 min slack). Nothing was changed.` when `end` is beyond the slack; else return. `action`
    replaces "to delete <what>" for other steps that must not trust a future date (a backup's name)."""
    now = now or wall_clock()
    if is_in_future(end, now):
        shown = end.isoformat() if not isinstance(end, datetime) else _as_utc(end).isoformat(timespec="seconds")
        slack = int(CLOCK_SLACK.total_seconds() // 60)
        raise refuse(
            action or f"to delete {what}",
            f"the run's window ends {shown}, after now "
            f"{now.astimezone(timezone.utc).isoformat(timespec='seconds')} (+{slack} min slack)",
        )
