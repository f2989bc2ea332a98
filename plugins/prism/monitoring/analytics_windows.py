"""GraphQL Analytics figures for a window, within what GraphQL still keeps, and the free-tier limits
they are measured against.

GraphQL keeps only the recent past, so a window reaching further back is cut to what is kept (and
says so in a note), or is unavailable; a report made for an old run then says why its figures are
partial instead of showing a short window as a whole one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

# How far back GraphQL Analytics answers (localflare's limits; Cloudflare's depend on the plan).
GRAPHQL_LOOKBACK_DAYS = {"traffic": 92, "usage": 31}
# Cloudflare's published free-tier daily limits.
FREE_TIER_DAILY = {
    "worker_requests": 100_000,
    "ai_neurons": 10_000,
    "d1_rows_read": 5_000_000,
    "d1_rows_written": 100_000,
    "kv_reads": 100_000,
    "kv_writes": 1_000,
    "kv_deletes": 1_000,
    "kv_lists": 1_000,
}
FREE_TIER_STORAGE = {"d1_database_bytes": 500 * 1000**2, "vectorize_stored_dimensions": 5_000_000}


def graphql_window(start: datetime, end: datetime, dataset: str, now: datetime | None = None):
    """The part of [start, end) GraphQL still serves, and a note when it is cut (None when none is left)."""
    days = GRAPHQL_LOOKBACK_DAYS[dataset]
    now = now or datetime.now(timezone.utc)
    # The first whole hour GraphQL will still hold by the time the query arrives.
    earliest = (now - timedelta(days=days) + timedelta(minutes=10)).replace(
        minute=0, second=0, microsecond=0
    ) + timedelta(hours=1)
    if end <= earliest:
        return (
            None,
            f"unavailable: GraphQL keeps {days} days of {dataset} analytics and this window ended before {earliest:%Y-%m-%d %H:%M}",
        )
    if start < earliest:
        return (
            (earliest, end),
            f"partial: GraphQL keeps {days} days of {dataset} analytics, so this covers {earliest:%Y-%m-%d %H:%M} onwards only",
        )
    return (start, end), ""


def _kept(dataset: str, start: datetime, end: datetime, fetch: Callable[[datetime, datetime], dict]) -> dict:
    win, note = graphql_window(start, end, dataset)
    asked = {"start": start.isoformat(), "end": end.isoformat()}
    if win is None:
        return {"available": False, "note": note, "requested": asked}
    return {**fetch(*win), "available": True, "note": note, "requested": asked, "days": _days(*win)}


def _days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


def traffic_in(hook, script: str, start: datetime, end: datetime) -> dict:
    """Worker traffic for [start, end) as far as GraphQL keeps it; {available: False, note} otherwise."""
    return _kept("traffic", start, end, lambda s, e: hook.worker_traffic(script, s, e))


def daily_traffic_in(hook, script: str, start: datetime, end: datetime) -> list[dict]:
    """Worker traffic per day of [start, end), for the days GraphQL still keeps ([] when none)."""
    win, _ = graphql_window(start, end, "traffic")
    return hook.worker_daily(script, *win) if win else []


def usage_in(hook, database_id: str, start: datetime, end: datetime) -> dict:
    """D1, Workers AI and KV usage for [start, end) as far as GraphQL keeps it."""
    return _kept("usage", start, end, lambda s, e: hook.usage(database_id, s, e))


def resource_totals(traffic: dict | None, usage: dict | None) -> dict:
    """Totals per free-tier resource from traffic and usage figures (a part that is missing or
    marked unavailable is left out)."""
    out = {}
    if traffic and traffic.get("available", True):
        out["worker_requests"] = traffic["requests"]
    if usage and usage.get("available", True):
        out.update(
            ai_neurons=usage["ai"]["neurons"],
            d1_rows_read=usage["d1"]["rowsRead"],
            d1_rows_written=usage["d1"]["rowsWritten"],
        )
        for action in ("read", "write", "delete", "list"):
            out[f"kv_{action}s"] = usage["kv"].get(action, 0)
    return out


def totals_in(
    hook,
    script: str,
    database_id: str,
    start: datetime,
    end: datetime,
    resources: Iterable[str] = tuple(FREE_TIER_DAILY),
) -> dict:
    """Totals of `resources` over one window for traffic and usage alike: the part of [start, end)
    GraphQL keeps usage for (the shorter lookback)."""
    win, note = graphql_window(start, end, "usage")
    if win is None:
        return {"available": False, "note": note}
    usage = hook.usage(database_id, *win)
    totals = resource_totals(hook.worker_traffic(script, *win), usage)
    return {
        "available": True,
        "note": note,
        "window": usage["window"],
        "days": _days(*win),
        "totals": {name: totals[name] for name in resources},
    }
