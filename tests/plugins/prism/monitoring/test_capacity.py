"""Capacity planning: growth compounded per period, and the date a daily limit is reached."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prism.monitoring.analytics_windows import FREE_TIER_DAILY
from prism.monitoring.capacity import capacity_plan, capacity_series, monthly_growth, project, window_rates

UTC = timezone.utc
END = datetime(2026, 3, 28, 3, tzinfo=UTC)


def at(days_before_end: float) -> datetime:
    return END - timedelta(days=days_before_end)


def test_growth_per_30_days_and_the_date_the_limit_is_reached():
    # 100 a day doubling every 30 days reaches 800 in three more doublings: 90 days after the run.
    plan = project([(at(60), 25.0), (at(30), 50.0), (at(0), 100.0)], 800, END)
    assert plan == {
        "daily": 100.0,
        "limit": 800,
        "percent_of_limit": 12.5,
        "growth_30d_percent": 100.0,
        "reaches_limit": (END + timedelta(days=90)).date().isoformat(),
    }


def test_growth_is_quoted_per_the_period_asked_for():
    plan = project([(at(2 * 30.44), 100.0), (at(30.44), 110.0), (at(0), 121.0)], 10_000, END, per="month")
    assert plan["growth_month_percent"] == pytest.approx(10.0) and "growth_30d_percent" not in plan


@pytest.mark.parametrize(
    ("points", "reaches"),
    [
        ([], "no data"),
        ([(at(0), 50.0)], "no trend: a single window of data"),
        ([(at(30), 0.0), (at(0), 50.0)], "no trend: a single window of data"),  # nothing to grow from
        ([(at(30), 100.0), (at(0), 100.0)], "not at this growth (flat or shrinking)"),
        ([(at(30), 200.0), (at(0), 100.0)], "not at this growth (flat or shrinking)"),
        ([(at(30), 500.0), (at(0), 1000.0)], "already at or over the limit"),
        ([(at(30), 100.0), (at(0), 100.1)], "not within 10 years"),
    ],
)
def test_what_a_projection_says_when_there_is_no_date(points, reaches):
    assert project(points, 1000, END)["reaches_limit"] == reaches


def test_window_rates_are_daily_rates_at_the_middle_of_each_window():
    series = [
        {"start": at(30).isoformat(), "end": at(0).isoformat(), "total": 600, "days": 30},
        {"start": at(60).isoformat(), "end": at(30).isoformat(), "total": 0, "days": 0},
    ]
    assert window_rates(series) == [(at(15), 20.0)]


def _usage(neurons: int, days: float = 30) -> dict:
    return {
        "available": True,
        "note": "",
        "days": days,
        "ai": {"neurons": neurons},
        "d1": {"rowsRead": 10, "rowsWritten": 1},
        "kv": {"read": 4, "write": 1},
    }


def _window(start: float, end: float, traffic: dict, usage: dict) -> dict:
    return {"start": at(start).isoformat(), "end": at(end).isoformat(), "traffic": traffic, "usage": usage}


def test_usage_graphql_keeps_too_short_for_three_windows_comes_from_the_two_halves():
    gone = {"available": False, "note": "unavailable: ..."}
    figures = {
        "windows": [
            _window(90, 60, {"available": True, "requests": 3000, "days": 30, "note": ""}, gone),
            _window(60, 30, {"available": True, "requests": 6000, "days": 30, "note": ""}, gone),
            _window(30, 0, {"available": True, "requests": 12000, "days": 30, "note": ""}, _usage(300)),
        ],
        "halves": [
            {"start": at(30).isoformat(), "end": at(15).isoformat(), "usage": _usage(100, 15)},
            {"start": at(15).isoformat(), "end": at(0).isoformat(), "usage": _usage(200, 15)},
        ],
    }
    series = capacity_series(figures)
    assert [s["total"] for s in series["worker_requests"]] == [3000, 6000, 12000]
    assert [s["total"] for s in series["ai_neurons"]] == [100, 200]
    plan = capacity_plan(figures, END)
    assert set(plan) == set(FREE_TIER_DAILY)
    assert (plan["worker_requests"]["windows"], plan["worker_requests"]["growth_30d_percent"]) == (3, 100.0)
    # Neurons doubled from one half to the next, 15 days apart: x4 over 30 days.
    assert (plan["ai_neurons"]["windows"], plan["ai_neurons"]["growth_30d_percent"]) == (2, 300.0)
    assert plan["kv_reads"]["growth_30d_percent"] == 0.0


def test_a_resource_with_no_figures_has_no_plan():
    figures = {
        "windows": [_window(30, 0, {"available": False, "note": "gone"}, {"available": False, "note": "gone"})],
        "halves": [],
    }
    assert capacity_plan(figures, END)["worker_requests"] == {
        "daily": None,
        "growth_30d_percent": None,
        "reaches_limit": "no data",
        "windows": 0,
    }


def test_monthly_growth_uses_complete_months_of_the_usage_log():
    rows = [
        {"month": "2025-10", "requests": 31_000, "neurons_used": 0, "days": 31},
        {"month": "2025-11", "requests": 33_000, "neurons_used": 3_000, "days": 30},
        {"month": "2025-12", "requests": 34_100, "neurons_used": 3_100, "days": 31},
        {"month": "2026-01", "requests": 500, "neurons_used": 50, "days": 5},
    ]  # partial: left out
    plan = monthly_growth(rows, END)
    assert plan["months"] == ["2025-10", "2025-11", "2025-12"]
    assert plan["worker_requests"]["daily"] == 1100.0 and plan["worker_requests"]["growth_month_percent"] > 0
    # A month with no neurons says nothing about their growth: the trend starts in November.
    assert plan["ai_neurons"]["daily"] == 100.0 and plan["ai_neurons"]["growth_month_percent"] == 0.0
    assert plan["ai_neurons"]["reaches_limit"] == "not at this growth (flat or shrinking)"


def test_projection_series_runs_from_the_run_date_to_past_the_limit_date():
    from prism.monitoring.capacity import projection_series

    end = datetime(2026, 3, 28, tzinfo=timezone.utc)
    points = [(end - timedelta(days=45), 50_000.0), (end - timedelta(days=15), 55_000.0)]
    plan = project(points, 100_000, end)
    series = projection_series(points, plan, end)
    assert series[0] == (end, 55_000.0) and all(b[1] > a[1] for a, b in zip(series, series[1:]))
    reached = datetime.fromisoformat(plan["reaches_limit"] + "T00:00:00+00:00")
    assert (
        series[-1][0] <= reached + timedelta(days=30) < series[-1][0] + timedelta(days=30)
        and series[-1][1] >= 100_000 * 0.9
    )
    assert projection_series(points[:1], project(points[:1], 100_000, end), end) == []  # no trend, no projection
