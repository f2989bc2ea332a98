"""The windows a monthly or quarterly run reports on, and which calendar slot a run follows.

Every window is computed from the run's date (the end of its data interval), never from now, so a
past run's reports can be made again. Windows travel through XCom, so they are ISO strings; the
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


def quarterly_windows(end: datetime) -> dict:
    """The quarter a run reviews (the one starting at its date) and the windows of its figures: the
    quarter before and its months, the year before, the last 30 days."""
    end = _utc(end)
    q_start = end.replace(month=3 * ((end.month - 1) // 3) + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
    prev = q_start - relativedelta(months=3)
    year = q_start - relativedelta(years=1)
    quarter = (end.month - 1) // 3 + 1
    return {
        "quarter": quarter,
        "label": f"{end.year}Q{quarter}",
        "run_date": end.date().isoformat(),
        "end": end.isoformat(),
        "previous_quarter": _span(prev, q_start, label=f"{prev.year}Q{(prev.month - 1) // 3 + 1}"),
        "months": [
            _span(
                prev + relativedelta(months=i),
                prev + relativedelta(months=i + 1),
                label=(prev + relativedelta(months=i)).strftime("%Y-%m"),
            )
            for i in range(3)
        ],
        "year": _span(year, q_start),
        "last_30_days": _span(end - timedelta(days=30), end),
        "sql_previous_quarter": [sql_time(prev), sql_time(q_start)],
        "sql_year_dates": [year.date().isoformat(), q_start.date().isoformat()],
    }


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
