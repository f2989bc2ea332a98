"""What a request budget remembers of Cloudflare's answers, for the dashboard and troubleshooting."""

from __future__ import annotations

from airflow_provider_cloudflare.budget import BudgetSettings, RequestBudget


def test_observe_keeps_the_limit_the_remaining_and_the_429s():
    budget = RequestBudget(BudgetSettings(), clock=lambda: 0.0, sleep=lambda s: None)
    assert (budget.remaining, budget.limit, budget.observed_at, budget.rate_limited) == (None, None, None, 0)
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "866"}, 200)
    assert (budget.remaining, budget.limit, budget.rate_limited) == (866, 1200, 0) and budget.observed_at.endswith(
        "+00:00"
    )
    budget.observe({"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}, 429)
    budget.observe({}, 429)  # a 429 without headers still counts
    assert (budget.remaining, budget.rate_limited) == (0, 2)
