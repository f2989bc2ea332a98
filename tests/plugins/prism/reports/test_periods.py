"""Calendar windows: every window follows the run's date, never now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pendulum

from prism.reports.periods import (
    MONTHLY_CALENDAR,
    QUARTERLY_CALENDAR,
    from_iso,
    monthly_run_windows,
    monthly_windows,
    quarterly_run_windows,
    quarterly_windows,
)

UTC = timezone.utc


def test_day_1_covers_the_previous_calendar_month():
    w = monthly_windows(datetime(2026, 3, 1, 3, tzinfo=UTC))
    assert (w["day"], w["month"], w["date"], w["run_date"]) == (1, "202603", "20260301", "2026-03-01")
    assert w["previous_month"] == {
        "start": "2026-02-01T00:00:00+00:00",
        "end": "2026-03-01T00:00:00+00:00",
        "label": "2026-02",
        "period": "202602",
    }
    assert w["sql_previous_month"] == ["2026-02-01 00:00:00", "2026-03-01 00:00:00"]
    assert w["sql_last_30_days"] == ["2026-01-30 03:00:00", "2026-03-01 03:00:00"]


def test_the_month_to_date_and_the_capacity_windows_end_at_the_run():
    end = datetime(2026, 3, 28, 3, tzinfo=UTC)
    w = monthly_windows(end)
    assert w["month_to_date"] == {
        "start": "2026-03-01T00:00:00+00:00",
        "end": end.isoformat(),
        "label": "2026-03",
        "period": "202603",
    }
    assert w["sql_last_7_days"] == ["2026-03-21 03:00:00", "2026-03-28 03:00:00"]
    # Three back-to-back 30-day windows, oldest first, the last ending at the run.
    spans = [(from_iso(c["start"]), from_iso(c["end"])) for c in w["capacity"]]
    assert spans[-1][1] == end and spans[0][0] == end - timedelta(days=90)
    assert all(b - a == timedelta(days=30) for a, b in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(2))


def test_a_pendulum_run_date_gives_the_same_windows():
    # Airflow hands tasks pendulum datetimes; their arithmetic must not shift the windows.
    plain = monthly_windows(datetime(2026, 3, 28, 3, tzinfo=UTC))
    assert monthly_windows(pendulum.datetime(2026, 3, 28, 3, tz="UTC")) == plain
    assert monthly_windows(pendulum.datetime(2026, 3, 28, 4, tz="Europe/Berlin")) == plain


def test_the_quarter_reviewed_is_the_one_the_data_interval_covers():
    """The run of 1 July reviews Q2 (April to June): its label, window, checklist quarter and months."""
    w = quarterly_windows(datetime(2026, 7, 1, 4, tzinfo=UTC))
    assert (w["quarter"], w["label"], w["window"]["label"]) == (2, "2026Q2", "2026Q2")
    assert [m["label"] for m in w["months"]] == ["2026-04", "2026-05", "2026-06"]
    assert w["months"][0]["start"] == w["window"]["start"] == "2026-04-01T00:00:00+00:00"
    assert w["months"][-1]["end"] == w["window"]["end"] == "2026-07-01T00:00:00+00:00"
    assert w["sql_window"] == ["2026-04-01 00:00:00", "2026-07-01 00:00:00"]
    assert w["sql_year_dates"] == ["2025-07-01", "2026-07-01"]
    q4 = quarterly_windows(datetime(2026, 1, 1, 4, tzinfo=UTC))
    assert (q4["quarter"], q4["label"], q4["months"][0]["label"]) == (4, "2025Q4", "2025-10")
    assert q4["year"] == {"start": "2025-01-01T00:00:00+00:00", "end": "2026-01-01T00:00:00+00:00"}
    # At the quarter's first instant it is the quarter before; an instant earlier, the one before that.
    assert quarterly_windows(datetime(2026, 10, 1, tzinfo=UTC))["label"] == "2026Q3"
    assert quarterly_windows(datetime(2026, 9, 30, 23, 59, tzinfo=UTC))["label"] == "2026Q2"


def test_run_windows_come_from_the_data_interval_or_when_a_manual_run_ran():
    end = datetime(2026, 3, 28, 3, tzinfo=UTC)
    scheduled = {"data_interval_start": end - timedelta(days=28), "data_interval_end": end}
    assert monthly_run_windows(scheduled) == monthly_windows(end)
    assert quarterly_run_windows(scheduled) == quarterly_windows(end)
    manual = {"dag_run": SimpleNamespace(run_after=end, logical_date=None)}
    assert monthly_run_windows(manual)["end"] == end.isoformat()
    assert quarterly_run_windows(manual) == quarterly_windows(end)


def test_the_calendars_are_the_guides():
    assert list(MONTHLY_CALENDAR) == [1, 7, 15, 21, 28] and list(QUARTERLY_CALENDAR) == [1, 2, 3, 4]


def test_calendar_branch_follows_the_run_or_the_forced_slot():
    from prism.reports.periods import MONTHLY_CALENDAR, calendar_branch

    assert calendar_branch(MONTHLY_CALENDAR, 7, None, "run_day", "2026-11-07", "day_%d") == ["day_7"]
    assert calendar_branch(MONTHLY_CALENDAR, 9, None, "run_day", "2026-11-09", "day_%d") == []
    assert calendar_branch(MONTHLY_CALENDAR, 9, 28, "run_day", "2026-11-09", "day_%d") == ["day_28"]
