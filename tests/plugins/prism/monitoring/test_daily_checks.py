"""prism_daily's free-tier figure. The tasks themselves (free_tier_usage, resource_summary) run against
localflare in tests/dags/test_prism_daily.py: live figures, an alert when crossed, a skip in a backfill."""

from __future__ import annotations

import pytest

from prism.monitoring.daily_checks import free_tier_check


@pytest.mark.parametrize(
    "used, limit, percent, crossed",
    [(0, 10_000, 0.0, False), (1234, 10_000, 12.34, False), (8000, 10_000, 80.0, False), (8001, 10_000, 80.01, True)],
)
def test_usage_is_a_rounded_percentage_crossed_only_above_the_threshold(used, limit, percent, crossed):
    result = free_tier_check(used, limit, 80)
    assert result == {
        "neurons_used": used,
        "neurons_limit": limit,
        "usage_percent": percent,
        "threshold_percent": 80,
        "crossed": crossed,
    }


def test_an_unknown_limit_counts_as_all_used():
    # no limit reported: alert rather than divide by zero or report 0%
    assert free_tier_check(5, 0, 80)["usage_percent"] == 100.0 and free_tier_check(5, 0, 80)["crossed"] is True
