"""Capacity planning: growth compounded per period, and the date a daily limit is reached."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from chart_dom import read  # noqa: E402

from prism.monitoring.analytics_windows import FREE_TIER_DAILY
from prism.monitoring.capacity import (
    capacity_chart,
    capacity_plan,
    capacity_series,
    limit_date_in_words,
    monthly_growth,
    project,
    projection_series,
    window_rates,
)

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


def test_projection_series_runs_from_the_run_date_to_the_charts_horizon():
    end = datetime(2026, 3, 28, tzinfo=timezone.utc)
    points = [(end - timedelta(days=45), 50_000.0), (end - timedelta(days=15), 55_000.0)]
    plan = project(points, 100_000, end)
    series = projection_series(points, plan, end)
    # It looks ahead as far as the points reach back (30 days after the last), not to the limit date.
    assert series[0] == (end, 55_000.0) and all(b[1] > a[1] for a, b in zip(series, series[1:]))
    assert [t for t, _ in series] == [end, end + timedelta(days=15)] and plan["reaches_limit"] > "2026-06"
    assert series[-1][1] == pytest.approx(55_000 * 1.1**0.5)  # 10% in 30 days, for 15 days
    # A limit date before the horizon ends it a month later.
    fast = [(end - timedelta(days=75), 10_000.0), (end - timedelta(days=15), 80_000.0)]
    plan = project(fast, 100_000, end)
    reached = datetime.fromisoformat(plan["reaches_limit"] + "T00:00:00+00:00")
    assert [t for t, _ in projection_series(fast, plan, end)] == [
        end,
        end + timedelta(days=30),
        reached + timedelta(days=30),
    ]
    assert projection_series(points[:1], project(points[:1], 100_000, end), end) == []  # no trend, no projection


def _kv_writes_plan(points: list) -> dict:
    paid = 1_000_000 / 30.44
    plan = project(points, FREE_TIER_DAILY["kv_writes"], END)
    return {**plan, "paid": {"limit": paid, "reaches_limit": project(points, paid, END)["reaches_limit"]}}


def test_a_small_rate_fills_its_chart_and_each_limit_is_named_with_when_it_is_reached():
    # KV writes at 43.5% of the free tier (the two halves of the last 30 days): the chart that was a
    # flat line at zero on an axis to the paid plan's 32,852 a day.
    points = [(at(22.5), 400.0), (at(7.5), 435.0)]
    plan = _kv_writes_plan(points)
    chart = read(capacity_chart("kv_writes", points, plan, END))
    assert chart.reach >= 0.8 and chart.y_max < 1_000 and chart.limits == {}
    assert chart.span("measured") >= 0.5 and chart.x_max == (at(7.5) + timedelta(days=15)).isoformat()
    free, paid = chart.off_scale["free tier"], chart.off_scale["paid plan"]
    assert free.startswith("free tier 1,000 ↑ off scale") and "(4" in free  # the projection peaks at 4x% of it
    reached = plan["reaches_limit"]
    assert f"reached around {reached[:7]} ({reached}, in " in free and free.endswith("after this chart's end")
    assert paid.startswith("paid plan 32,852 ↑ off scale") and "reached around 20" in paid


def test_a_limit_date_within_the_horizon_is_marked_on_the_time_axis():
    points = [(at(75), 10_000.0), (at(15), 80_000.0)]
    plan = {**project(points, 100_000, END), "windows": 3}
    svg = capacity_chart("worker_requests", points, plan, END)
    chart = read(svg)
    reached = plan["reaches_limit"]
    assert chart.limits == {"free tier": 100_000} and f"free tier {reached}" in chart.texts
    assert f"free tier 100,000: reached around {reached[:7]} ({reached}, in " in chart.note_text
    assert "after this chart's end" not in chart.note_text and 'data-part="marker"' in svg


@pytest.mark.parametrize(
    ("reached", "words"),
    [
        ("2031-04-12", "reached around 2031-04 (2031-04-12, in 1,841 days at this growth), after this chart's end"),
        ("2026-04-01", "reached around 2026-04 (2026-04-01, in 4 days at this growth)"),
        ("already at or over the limit", "already reached"),
        ("not at this growth (flat or shrinking)", "not reached at this growth: the rate is flat or shrinking"),
        ("not within 10 years", "not reached within the next 3,650 days at this growth"),
        ("no trend: a single window of data", "no trend: a single window of data"),
    ],
)
def test_when_a_limit_is_reached_in_words(reached, words):
    assert limit_date_in_words(reached, END, END + timedelta(days=30)) == words


@pytest.mark.parametrize("end", [datetime(2019, 1, 1, tzinfo=UTC), END, datetime(2099, 6, 1, tzinfo=UTC)])
def test_a_chart_dated_in_the_past_present_or_future(end):
    points = [(end - timedelta(days=45), 500.0), (end - timedelta(days=15), 600.0)]
    plan = project(points, 1_000, end)
    chart = read(capacity_chart("kv_writes", points, plan, end))
    days = (date.fromisoformat(plan["reaches_limit"]) - end.date()).days  # calendar days from the run's date
    assert (
        chart.x_max == (end + timedelta(days=15)).isoformat() and f"in {days:,} days at this growth" in chart.note_text
    )
    assert chart.reach >= 0.8 and str(end.year) in " ".join(chart.texts)


def test_a_resource_without_figures_charts_no_data():
    chart = read(capacity_chart("kv_lists", [], {"daily": None, "reaches_limit": "no data"}, END))
    assert chart.kind == "empty" and chart.notes == ["no data recorded yet"]
