"""GraphQL Analytics figures for a window, within what GraphQL keeps, and the free-tier limits
they are measured against.

GraphQL keeps only the recent past (92 days of Workers analytics, 31 of D1/AI/KV). What part of a
window a report reads is decided by the window alone, never by when the report is made: the last
(lookback - 1 day) before the window's end, which GraphQL still holds for a report made within a day
of that end (a scheduled run). A longer window is cut to that part, with a note that names it. A run
made later (a backfill, a re-run) reads the same part while GraphQL still holds all of it; once any
of it has gone, the figures are unavailable (`expired`), never a shorter cut, so a report never
shows different figures for the same window. A report that already exists keeps its figures then
(reports.markdown.deliver).
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
# How long after a window's end a report of it may be made and still read all it reads from GraphQL.
SETTLE = timedelta(days=1)


def graphql_window(start: datetime, end: datetime, dataset: str, as_of: datetime | None = None):
    """The part of [start, end) a report reads, from the windows alone: what GraphQL still holds a day
    after `as_of` (the end of the report's own window; default `end`), with a note when that is not
    all of it; (None, note) when it is none of it."""
    days = GRAPHQL_LOOKBACK_DAYS[dataset]
    reach = (as_of or end) - timedelta(days=days) + SETTLE
    if end <= reach:
        return None, (
            f"unavailable: GraphQL keeps {days} days of {dataset} analytics, so a report of a window ending "
            f"{as_of or end:%Y-%m-%d %H:%M} UTC reaches back to {reach:%Y-%m-%d %H:%M} UTC only"
        )
    if start < reach:
        return (
            (reach, end),
            f"partial: GraphQL keeps {days} days of {dataset} analytics, so this covers "
            f"{reach:%Y-%m-%d %H:%M} UTC onwards only",
        )
    return (start, end), ""


def still_held(start: datetime, dataset: str, now: datetime | None = None) -> bool:
    """Whether GraphQL still holds everything from `start` when the query arrives (the only use of the clock)."""
    now = now or datetime.now(timezone.utc)
    # The first whole hour GraphQL will still hold by the time the query arrives.
    earliest = (now - timedelta(days=GRAPHQL_LOOKBACK_DAYS[dataset]) + timedelta(minutes=10)).replace(
        minute=0, second=0, microsecond=0
    ) + timedelta(hours=1)
    return start >= earliest


def expired_note(start: datetime, dataset: str) -> str:
    return (
        f"unavailable: GraphQL keeps {GRAPHQL_LOOKBACK_DAYS[dataset]} days of {dataset} analytics, and this window's "
        f"figures (from {start:%Y-%m-%d %H:%M} UTC) had left them when this report was made"
    )


def _kept(
    dataset: str, start: datetime, end: datetime, as_of: datetime | None, fetch: Callable[[datetime, datetime], dict]
) -> dict:
    win, note = graphql_window(start, end, dataset, as_of)
    asked = _iso(start, end)
    if win is None:
        return {"available": False, "note": note, "requested": asked}
    if not still_held(win[0], dataset):
        return {"available": False, "expired": True, "note": expired_note(win[0], dataset), "requested": asked}
    return {**fetch(*win), "available": True, "note": note, "requested": asked, "days": _days(*win)}


def _iso(start: datetime, end: datetime) -> dict:
    return {"start": start.isoformat(), "end": end.isoformat()}


def _days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


def traffic_in(hook, script: str, start: datetime, end: datetime, as_of: datetime | None = None) -> dict:
    """Worker traffic for the part of [start, end) a report reads (graphql_window()); {available: False,
    expired, note} once GraphQL no longer holds it."""
    return _kept("traffic", start, end, as_of, lambda s, e: hook.worker_traffic(script, s, e))


def daily_traffic_in(hook, script: str, start: datetime, end: datetime, as_of: datetime | None = None) -> list[dict]:
    """Worker traffic per day of the part of [start, end) a report reads ([] once GraphQL no longer holds it)."""
    win, _ = graphql_window(start, end, "traffic", as_of)
    return hook.worker_daily(script, *win) if win and still_held(win[0], "traffic") else []


def usage_in(hook, database_id: str, start: datetime, end: datetime, as_of: datetime | None = None) -> dict:
    """D1, Workers AI and KV usage for the part of [start, end) a report reads (as traffic_in())."""
    return _kept("usage", start, end, as_of, lambda s, e: hook.usage(database_id, s, e))


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
    """Totals of `resources` over one window for traffic and usage alike: the part of [start, end) a
    report reads usage for (the shorter lookback)."""
    win, note = graphql_window(start, end, "usage")
    if not still_held(win[0], "usage"):
        return {"available": False, "expired": True, "note": expired_note(win[0], "usage")}
    usage = hook.usage(database_id, *win)
    totals = resource_totals(hook.worker_traffic(script, *win), usage)
    return {
        "available": True,
        "note": note,
        "window": usage["window"],
        "days": _days(*win),
        "totals": {name: totals[name] for name in resources},
    }
