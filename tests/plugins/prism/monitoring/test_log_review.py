"""The daily log review's checks: thresholds, and per-day thresholds scaled to the window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from prism.monitoring.log_review import report_sections, review, window_bounds

END = datetime(2026, 11, 1, 9, tzinfo=timezone.utc)
THRESHOLDS = {"error_rate_percent": 0.5, "p95_latency_ms": 1000, "failed_auth_per_day": 50, "rate_limited_per_day": 10}
TRAFFIC = {
    "requests": 1000,
    "errors": 4,
    "error_rate_percent": 0.4,
    "status": {"200": 996, "500": 4},
    "wall_time_ms": {"p50": 80.0, "p95": 999.0},
}


def crossed(result) -> dict[str, bool]:
    return {c["metric"]: c["crossed"] for c in result["checks"]}


def test_figures_under_the_thresholds_cross_nothing():
    result = review(
        TRAFFIC, {"failed_login": 20, "forbidden": 30, "rate_limited": 10}, THRESHOLDS, END - timedelta(days=1), END
    )
    assert not any(crossed(result).values())
    assert (result["failed_auth"], result["rate_limited"], result["p95_ms"]) == (50, 10, 999.0)


def test_each_threshold_crosses_on_its_own():
    hot = {**TRAFFIC, "error_rate_percent": 0.5, "wall_time_ms": {"p95": 1000.0}}
    result = review(hot, {"unauthorized": 51, "rate_limited": 11}, THRESHOLDS, END - timedelta(days=1), END)
    assert all(crossed(result).values())


def test_per_day_thresholds_scale_with_the_window():
    week = review(TRAFFIC, {"failed_login": 300, "rate_limited": 70}, THRESHOLDS, END - timedelta(days=7), END)
    assert crossed(week)["failed authentication attempts"] is False  # 300 <= 50 x 7
    assert crossed(week)["rate-limit violations"] is False  # 70 <= 10 x 7
    assert [c["threshold"] for c in week["checks"]][2:] == [350, 70]


def test_the_report_lists_every_check_and_event():
    result = review(TRAFFIC, {"failed_login": 2}, THRESHOLDS, END - timedelta(days=1), END)
    sections = report_sections(result, TRAFFIC)
    assert "| error rate (%) | 0.4 | 0.5 | ok |" in sections["Checks"]
    assert sections["Security events (D1)"] == ["- failed_login: 2"]


def test_window_bounds_give_the_interval_in_every_form_the_tasks_bind():
    start = END - timedelta(days=1)
    bounds = window_bounds(data_interval_start=start, data_interval_end=END, dag_run=None)
    assert bounds == {
        "start": "2026-10-31T09:00:00+00:00",
        "end": "2026-11-01T09:00:00+00:00",
        "start_sql": "2026-10-31 09:00:00",
        "end_sql": "2026-11-01 09:00:00",
        "period": "20261101",
    }


def test_window_bounds_of_a_run_without_an_interval_end_when_it_was_made_to_run():
    # a manual run with no logical date, made to run at 01:30 in UTC+02:00 (23:30 UTC the day before)
    made = datetime(2026, 11, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    bounds = window_bounds(dag_run=SimpleNamespace(run_after=made, logical_date=None))
    assert (bounds["start_sql"], bounds["end_sql"]) == ("2026-10-30 23:30:00", "2026-10-31 23:30:00")
    assert bounds["period"] == "20261031"  # the UTC date of the window's end
