"""Cloudflare's limits for PRISM's resources on the Workers Free plan and what Workers Paid includes.

Free-tier limits are daily (reset at 00:00 UTC) except storage and Vectorize's queried dimensions
(monthly). Paid figures are what the plan includes before it bills more; a daily resource's monthly
allowance is compared as a daily rate (monthly / 30.44). None: the plan sets no such limit.
"""

from __future__ import annotations

from prism.monitoring.analytics_windows import FREE_TIER_DAILY, FREE_TIER_STORAGE

DAYS_PER_MONTH = 30.44
API_REQUESTS_PER_WINDOW = 1200  # the account's REST API budget
API_WINDOW_SECONDS = 300

# name: (label, how it is counted, free-tier limit, paid plan's included amount)
LIMITS: dict[str, tuple[str, str, float | None, float | None]] = {
    "ai_neurons": ("Workers AI neurons", "per day", FREE_TIER_DAILY["ai_neurons"], None),
    "d1_rows_read": ("D1 rows read", "per day", FREE_TIER_DAILY["d1_rows_read"], 25_000_000_000 / DAYS_PER_MONTH),
    "d1_rows_written": ("D1 rows written", "per day", FREE_TIER_DAILY["d1_rows_written"], 50_000_000 / DAYS_PER_MONTH),
    "d1_database_bytes": ("D1 database size", "stored", FREE_TIER_STORAGE["d1_database_bytes"], 10 * 1000**3),
    "kv_reads": ("KV reads", "per day", FREE_TIER_DAILY["kv_reads"], 10_000_000 / DAYS_PER_MONTH),
    "kv_writes": ("KV writes", "per day", FREE_TIER_DAILY["kv_writes"], 1_000_000 / DAYS_PER_MONTH),
    "kv_deletes": ("KV deletes", "per day", FREE_TIER_DAILY["kv_deletes"], 1_000_000 / DAYS_PER_MONTH),
    "kv_lists": ("KV lists", "per day", FREE_TIER_DAILY["kv_lists"], 1_000_000 / DAYS_PER_MONTH),
    "vectorize_stored_dimensions": (
        "Vectorize stored dimensions",
        "stored",
        FREE_TIER_STORAGE["vectorize_stored_dimensions"],
        10_000_000,
    ),
    "vectorize_queried_dimensions": ("Vectorize queried dimensions", "per month", 30_000_000, 50_000_000),
    "worker_requests": ("Worker requests", "per day", FREE_TIER_DAILY["worker_requests"], None),
}


def usage_against_limits(used: dict[str, float]) -> list[dict]:
    """One row per resource in `used`: the figure, each plan's limit and the share of it used."""
    rows = []
    for name, value in used.items():
        if name not in LIMITS or value is None:
            continue
        label, counted, free, paid = LIMITS[name]
        rows.append(
            {
                "name": name,
                "label": label,
                "counted": counted,
                "used": value,
                "free_limit": free,
                "free_percent": _percent(value, free),
                "paid_limit": paid,
                "paid_percent": _percent(value, paid),
            }
        )
    return rows


def _percent(value: float, limit: float | None) -> float | None:
    return round(100 * value / limit, 2) if limit else None
