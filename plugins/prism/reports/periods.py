"""The windows a monthly or quarterly run reports on, and which calendar slot a run follows.

Every window is computed from the run's date (the end of its data interval), never from now, so a
past run's reports can be made again, the same. Windows travel through XCom, so they are ISO strings; the
`sql_*` pairs are D1 parameters, in the format D1 stores times in.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from dateutil.relativedelta import relativedelta

from prism.runtime import sql_time, window

log = logging.getLogger(__name__)

# The guide's Monthly and Quarterly Schedules: what each calendar day or quarter does.
MONTHLY_CALENDAR = {
    1: "backup verification, performance review",
    7: "dependency updates, security audit",
    15: "index optimization, performance optimization",
    21: "log review, resource check",
    28: "monthly report, capacity planning",
}
QUARTERLY_CALENDAR = {
    1: "architecture review, security audit",
    2: "performance optimization, scaling review",
    3: "dependency audit, backup testing",
    4: "yearly review, capacity planning",
}


def from_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def month_start(t: datetime) -> datetime:
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _utc(t: datetime) -> datetime:
    # A plain datetime: pendulum's arithmetic drops the zone.
    return datetime.fromtimestamp(t.timestamp(), timezone.utc)


def _span(start: datetime, end: datetime, **extra) -> dict:
    return {"start": start.isoformat(), "end": end.isoformat(), **extra}


def monthly_windows(end: datetime) -> dict:
    """Every window the monthly calendar's tasks use. Day 1 reports on the previous calendar month,
    days 21 and 28 on the month to date, capacity planning on three 30-day windows (oldest first)."""
    end = _utc(end)
    this_month = month_start(end)
    prev_month = month_start(this_month - timedelta(days=1))
    out = {
        "run_date": end.date().isoformat(),
        "day": end.day,
        "month": end.strftime("%Y%m"),
        "date": end.strftime("%Y%m%d"),
        "end": end.isoformat(),
        "previous_month": _span(
            prev_month, this_month, label=prev_month.strftime("%Y-%m"), period=prev_month.strftime("%Y%m")
        ),
        "month_to_date": _span(this_month, end, label=end.strftime("%Y-%m"), period=end.strftime("%Y%m")),
        "last_30_days": _span(end - timedelta(days=30), end),
        "last_7_days": _span(end - timedelta(days=7), end),
        "capacity": [_span(end - timedelta(days=30 * (i + 1)), end - timedelta(days=30 * i)) for i in (2, 1, 0)],
    }
    for name in ("previous_month", "month_to_date", "last_30_days", "last_7_days"):
        out[f"sql_{name}"] = [sql_time(from_iso(out[name]["start"])), sql_time(from_iso(out[name]["end"]))]
    return out


def quarter_start(t: datetime) -> datetime:
    """The first instant of the calendar quarter `t` is in."""
    return t.replace(month=3 * ((t.month - 1) // 3) + 1, day=1, hour=0, minute=0, second=0, microsecond=0)


def quarter_label(start: datetime) -> str:
    return f"{start.year}Q{(start.month - 1) // 3 + 1}"


def quarterly_windows(end: datetime) -> dict:
    """The quarter a run reviews, from the end of its data interval alone: the last calendar quarter
    that ended at or before it (the scheduled run of 1 October 04:00 reviews Q3, July to September).
    Everything the review shows follows it: its title and key (`label`), its window, which quarter's
    checklist it does (`quarter`), the quarter's months, and the year that ends with it."""
    end = _utc(end)
    stop = quarter_start(end)
    start = stop - relativedelta(months=3)
    year = stop - relativedelta(years=1)
    return {
        "quarter": (start.month - 1) // 3 + 1,
        "label": quarter_label(start),
        "run_date": end.date().isoformat(),
        "window": _span(start, stop, label=quarter_label(start)),
        "months": [
            _span(
                start + relativedelta(months=i),
                start + relativedelta(months=i + 1),
                label=(start + relativedelta(months=i)).strftime("%Y-%m"),
            )
            for i in range(3)
        ],
        "year": _span(year, stop),
        "sql_window": [sql_time(start), sql_time(stop)],
        "sql_year_dates": [year.date().isoformat(), stop.date().isoformat()],
    }


def quarter_mismatch(w: dict, asked: int | None) -> str | None:
    """Why the Param `quarter` disagrees with the quarter the run's window reviews (None when it agrees
    or is empty), naming the logical date that reviews the quarter asked for."""
    if asked is None or asked == w["quarter"]:
        return None
    stop = from_iso(w["window"]["end"])
    while (stop.month - 1) // 3 + 1 != asked % 4 + 1:  # the end of the latest quarter `asked` before it
        stop -= relativedelta(months=3)
    return (
        f"quarter={asked} was given, but this run's data interval (ending {w['run_date']}) reviews {w['label']}, "
        f"and a run reviews the quarter its data interval covers; to review Q{asked} "
        f"({quarter_label(stop - relativedelta(months=3))}), trigger a run with the logical date "
        f"{stop:%Y-%m-%d}T04:00:00+00:00 and no quarter, or quarter={asked}"
    )


def monthly_run_windows(context) -> dict:
    """monthly_windows() of the run a task is in (a manual run without an interval: up to when it ran)."""
    return monthly_windows(window(context, default=timedelta(days=30))[1])


def quarterly_run_windows(context) -> dict:
    return quarterly_windows(window(context, default=timedelta(days=91))[1])


def calendar_branch(
    calendar: dict[int, str], own: int, forced: int | None, param: str, run_date: str, group: str
) -> list[str]:
    """The task group a calendar DAG's run follows (`group` % slot), logging why every other slot is
    skipped; [] when the slot is not on the calendar. `forced` is the Param `param` of a manual re-run."""
    slot = forced or own
    why = f"{param}={forced} was given" if forced else f"the run's date is {run_date}"
    if slot not in calendar:
        log.info(
            "%s is not on the calendar (%s): nothing to run (%s); set %s to run one",
            slot,
            ", ".join(map(str, calendar)),
            why,
            param,
        )
        return []
    for other, what in calendar.items():
        if other != slot:
            log.info("skipping %s (%s): it is not this run's, as %s", group % other, what, why)
    log.info("running %s (%s)", group % slot, calendar[slot])
    return [group % slot]
