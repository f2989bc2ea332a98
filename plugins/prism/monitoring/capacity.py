"""Capacity planning: how fast each free-tier resource grows, and when it would reach its daily limit.

A daily rate is measured at several points in time (the middle of each window it was counted over);
growth compounds the change from the oldest to the newest point to a rate per period, and the limit
date extrapolates that growth from the run's date.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from prism.monitoring.analytics_windows import FREE_TIER_DAILY, resource_totals, traffic_in, usage_in
from prism.monitoring.plan_limits import LIMITS
from prism.reports.periods import from_iso

PERIOD_DAYS = {"30d": 30.0, "month": 30.44}  # what growth is quoted per; a month at its average length
HORIZON_DAYS = 3650  # further out, a date would be noise


def project(points: list[tuple[datetime, float]], limit: float, end: datetime, per: str = "30d") -> dict:
    """Growth of a daily rate and the date it reaches `limit`. `points`: [(when, daily rate)], oldest
    first. Growth is returned as `growth_<per>_percent` (growth_30d_percent, growth_month_percent)."""
    growth_key = f"growth_{per}_percent"
    if not points:
        return {"daily": None, growth_key: None, "reaches_limit": "no data"}
    daily = points[-1][1]
    out = {"daily": round(daily, 1), "limit": limit, "percent_of_limit": round(100 * daily / limit, 2)}
    if len(points) < 2 or points[0][1] <= 0:
        return {**out, growth_key: None, "reaches_limit": "no trend: a single window of data"}
    period = PERIOD_DAYS[per]
    span = (points[-1][0] - points[0][0]).total_seconds() / 86400
    growth = (points[-1][1] / points[0][1]) ** (period / span) - 1
    out[growth_key] = round(100 * growth, 2)
    if daily >= limit:
        out["reaches_limit"] = "already at or over the limit"
    elif growth <= 0:
        out["reaches_limit"] = "not at this growth (flat or shrinking)"
    else:
        days = period * math.log(limit / daily) / math.log(1 + growth)
        out["reaches_limit"] = (
            (end + timedelta(days=days)).date().isoformat() if days < HORIZON_DAYS else "not within 10 years"
        )
    return out


def window_rates(series: list[dict]) -> list[tuple[datetime, float]]:
    """[{start, end, total, days}] as (the window's middle, total a day), leaving out windows with no days covered."""
    return [
        (from_iso(s["start"]) + (from_iso(s["end"]) - from_iso(s["start"])) / 2, s["total"] / s["days"])
        for s in series
        if s["days"] > 0
    ]


def capacity_figures(hook, script: str, database_id: str, windows: list[dict], end: datetime) -> dict:
    """Traffic and usage for each 30-day window, and usage for the two 15-day halves of the last
    (D1/AI/KV analytics reach back only 31 days, so the halves are their trend)."""
    out = {"windows": [], "halves": []}
    for part in windows:
        start, stop = from_iso(part["start"]), from_iso(part["end"])
        out["windows"].append(
            {
                **part,
                "traffic": traffic_in(hook, script, start, stop),
                "usage": usage_in(hook, database_id, start, stop),
            }
        )
    last_start = from_iso(windows[-1]["start"])
    middle = last_start + timedelta(days=15)
    for start, stop in ((last_start, middle), (middle, end)):
        out["halves"].append(
            {"start": start.isoformat(), "end": stop.isoformat(), "usage": usage_in(hook, database_id, start, stop)}
        )
    return out


def capacity_series(figures: dict) -> dict[str, list[dict]]:
    """Per resource, the windows that have data: three 30-day windows, or for a resource that has
    fewer than two (GraphQL's 31-day D1/AI/KV lookback), the two halves of the last 30 days."""
    series: dict[str, list[dict]] = {}
    for win in figures["windows"]:
        for source in ("traffic", "usage"):
            part = win[source]
            for name, total in resource_totals(
                part if source == "traffic" else None, part if source == "usage" else None
            ).items():
                series.setdefault(name, []).append(
                    {"start": win["start"], "end": win["end"], "total": total, "days": part["days"]}
                )
    for name in list(FREE_TIER_DAILY):
        if len(series.get(name, [])) < 2:
            halves = [
                {
                    "start": h["start"],
                    "end": h["end"],
                    "total": resource_totals(None, h["usage"]).get(name),
                    "days": h["usage"].get("days", 0),
                }
                for h in figures.get("halves", [])
            ]
            if len(halves) == 2 and all(h["total"] is not None for h in halves):
                series[name] = halves
    return series


def capacity_plan(figures: dict, end: datetime) -> dict[str, dict]:
    """project() of every free-tier resource from capacity_figures(), with how many windows it rests
    on, and `paid`: the same projection to what the Workers Paid plan includes (as a daily rate), for
    the resources whose paid plan has a limit."""
    series, plan = capacity_series(figures), {}
    for name, limit in FREE_TIER_DAILY.items():
        rates = window_rates(series.get(name, []))
        plan[name] = {**project(rates, limit, end), "windows": len(series.get(name, []))}
        paid = LIMITS.get(name, (None, None, None, None))[3]
        if paid:
            plan[name]["paid"] = {"limit": paid, "reaches_limit": project(rates, paid, end)["reaches_limit"]}
    return plan


def projection_series(
    points: list[tuple[datetime, float]], plan: dict, end: datetime, months: int = 12
) -> list[tuple[datetime, float]]:
    """The projected daily rate from `end` on at the plan's 30-day growth, a point a month, until a
    month past the free-tier limit date or `months` months ([] without a trend)."""
    growth = plan.get("growth_30d_percent")
    if not points or growth is None:
        return []
    daily, out = points[-1][1], []
    reached = plan.get("reaches_limit", "")
    stop = end + timedelta(days=30 * months)
    if reached[:2] == "20":
        stop = min(stop, datetime.fromisoformat(reached + "T00:00:00+00:00") + timedelta(days=30))
    t = end
    while t <= stop:
        out.append((t, daily * (1 + growth / 100) ** ((t - end).total_seconds() / 86400 / 30)))
        t += timedelta(days=30)
    return out


def monthly_growth(usage_by_month: list[dict], end: datetime) -> dict:
    """Growth per month of requests and neurons from PRISM's usage log (rows of
    quarterly/usage_by_month.sql) and the date each would reach its free-tier daily limit."""
    full = [m for m in usage_by_month if m["days"] >= 28]  # a partial month would bend the trend

    def rates(column: str) -> list[tuple[datetime, float]]:
        # Months with none of it say nothing about its growth.
        return [(_month_middle(m["month"]), m[column] / m["days"]) for m in full if m[column] > 0]

    return {
        "months": [m["month"] for m in full],
        "worker_requests": project(rates("requests"), FREE_TIER_DAILY["worker_requests"], end, per="month"),
        "ai_neurons": project(rates("neurons_used"), FREE_TIER_DAILY["ai_neurons"], end, per="month"),
    }


def _month_middle(month: str) -> datetime:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
    stop = (start + timedelta(days=32)).replace(day=1)
    return start + (stop - start) / 2
