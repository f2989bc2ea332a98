"""Capacity planning: how fast each free-tier resource grows, and when it would reach its daily limit.

A daily rate is measured at several points in time (the middle of each window it was counted over);
growth compounds the change from the oldest to the newest point to a rate per period, and the limit
date extrapolates that growth from the run's date. capacity_chart() draws one resource: the measured
rates, the projection as far ahead as they reach back, and when each limit is reached, in words.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from prism.monitoring.analytics_windows import FREE_TIER_DAILY, resource_totals, traffic_in, usage_in
from prism.monitoring.plan_limits import LIMITS
from prism.reports.charts import WIDTH, chart_horizon, line_chart
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
    """The projected daily rate from `end` on at the plan's 30-day growth, a point a month, until the
    chart's horizon (charts.chart_horizon(): it looks ahead no further than the measured points reach
    back), a month past the free-tier limit date or `months` months, whichever comes first; its last
    point is on that end ([] without a trend)."""
    growth = plan.get("growth_30d_percent")
    if not points or growth is None:
        return []
    daily, out = points[-1][1], []
    reached = plan.get("reaches_limit", "")
    stop = min(end + timedelta(days=30 * months), chart_horizon(points[0][0], points[-1][0]))
    if reached[:2] == "20":
        stop = min(stop, datetime.fromisoformat(reached + "T00:00:00+00:00") + timedelta(days=30))

    def at(t: datetime) -> tuple[datetime, float]:
        return t, daily * (1 + growth / 100) ** ((t - end).total_seconds() / 86400 / 30)

    t = end
    while t <= stop:
        out.append(at(t))
        t += timedelta(days=30)
    if out and out[-1][0] < stop:
        out.append(at(stop))
    return out


def limit_date_in_words(reached: str, end: datetime, horizon: datetime | None = None) -> str:
    """What project()'s `reaches_limit` says, as words for a chart: "reached around 2031-04
    (2031-04-12, in 1,841 days at this growth), after this chart's end"."""
    if reached[:2] == "20":
        when = datetime.fromisoformat(reached + "T00:00:00+00:00")
        days = (when.date() - end.date()).days
        later = ", after this chart's end" if horizon is not None and when > horizon else ""
        return f"reached around {reached[:7]} ({reached}, in {days:,} days at this growth){later}"
    if reached == "already at or over the limit":
        return "already reached"
    if reached.startswith("not at this growth"):
        return "not reached at this growth: the rate is flat or shrinking"
    if reached == "not within 10 years":
        return f"not reached within the next {HORIZON_DAYS:,} days at this growth"
    return reached


def capacity_chart(
    name: str, points: list[tuple[datetime, float]], plan: dict, end: datetime, title: str = "", width: int = WIDTH
) -> str:
    """One resource's chart: its measured daily rates (window_rates()), the projection to the chart's
    horizon, the free-tier and paid limits (lines, or notes when far off the data) and, in words, when
    each limit is reached; a limit date within the horizon is also marked on the time axis."""
    title = title or f"{name}: daily rate and projection"
    horizon = chart_horizon(points[0][0], points[-1][0]) if points else None
    limits = {"free tier": FREE_TIER_DAILY[name]}
    reached = {"free tier": plan.get("reaches_limit", "")}
    if plan.get("paid"):
        limits["paid plan"] = round(plan["paid"]["limit"])
        reached["paid plan"] = plan["paid"]["reaches_limit"]
    markers = [
        (at, f"{label} {when}")
        for label, when in reached.items()
        if when[:2] == "20" and horizon is not None and (at := from_iso(when + "T00:00:00+00:00")) <= horizon
    ]
    return line_chart(
        title,
        {"measured": points, "projected": projection_series(points, plan, end)},
        "a day",
        limits=limits,
        dashed={"projected"},
        markers=markers,
        horizon=horizon,
        limit_notes={k: limit_date_in_words(v, end, horizon) for k, v in reached.items() if v != "no data"},
        colors={"projected": "#60a5fa"},
        width=width,
    )


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
