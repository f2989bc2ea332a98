"""PRISM's deterministic traffic history, one record per (script, hour).

GraphQL analytics and the Worker's /metrics both read from here, so their figures always agree.
Every figure is an integer function of the hour, so sums over any window are exact and repeatable.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone

ORIGIN_HOUR = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()) // 3600
# Wall-time histogram bucket edges in milliseconds; quantiles interpolate inside a bucket.
EDGES_MS = [0, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000]
NEURONS_DAILY_LIMIT = 10_000
TOKENS_SAVED_PER_HIT = 420
COST_PER_TOKEN_USD = 0.00001


def _rand(hour: int, n: int) -> list[float]:
    digest = hashlib.blake2b(f"prism:{hour}".encode(), digest_size=4 * n).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "little") / 2**32 for i in range(n)]


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _spread(total: int, weights: list[float]) -> list[int]:
    """Split an integer total by weights, largest remainder first, so parts sum exactly."""
    s = sum(weights) or 1.0
    raw = [total * w / s for w in weights]
    parts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def hour_record(hour: int, error_rate: float | None = None) -> dict:
    r = _rand(hour, 7)
    hod = hour % 24
    dow = (hour // 24 + 3) % 7  # 0 = Monday
    diurnal = 1 + 0.45 * math.sin(2 * math.pi * (hod - 8) / 24)
    weekly = 0.7 if dow >= 5 else 1.0
    growth = 1 + 0.004 * max(hour - ORIGIN_HOUR, 0) / 24
    requests = int(180 * diurnal * weekly * growth * (0.85 + 0.3 * r[0]))
    rate = error_rate if error_rate is not None else 0.0015 + 0.002 * r[1]
    errors = min(requests, round(requests * rate))
    threw = round(errors * 0.7)
    median = 140 * (1 + 0.3 * r[3])
    sigma = 0.55
    cdf = [_norm_cdf((math.log(e) - math.log(median)) / sigma) if e > 0 else 0.0 for e in EDGES_MS]
    cdf[-1] = 1.0
    hist = _spread(requests, [cdf[i + 1] - cdf[i] for i in range(len(EDGES_MS) - 1)])
    mean_ms = median * math.exp(sigma**2 / 2)
    ai_calls = int(requests * 0.4)
    cache_hits = int(requests * (0.55 + 0.15 * r[4]))
    reads = int(requests * 1.5)
    writes = int(requests * 0.2)
    return {
        "hour": hour,
        "requests": requests,
        "errors": errors,
        "status": {"success": requests - errors, "scriptThrewException": threw, "exceededResources": errors - threw},
        "hist": hist,
        "wall_time_us": int(requests * mean_ms * 1000),
        "cpu_time_us": int(requests * mean_ms * 50),
        "subrequests": requests * 2,
        "ai_requests": ai_calls,
        "neurons": int(ai_calls * (0.8 + 0.3 * r[5])),
        "d1_read_queries": reads,
        "d1_write_queries": writes,
        "d1_rows_read": reads * 25,
        "d1_rows_written": writes * 2,
        "kv_reads": int(requests * 0.8),
        "kv_writes": int(requests * 0.05),
        # Rare operations round by a per-hour draw, so quiet hours still add up to the right rate.
        "kv_deletes": int(requests * 0.01 + r[6]),
        "kv_lists": int(requests * 0.002 + r[6]),
        "cache_hits": cache_hits,
        "cache_misses": requests - cache_hits,
        "tokens_saved": cache_hits * TOKENS_SAVED_PER_HIT,
    }


def quantile(hist: list[int], q: float) -> float:
    """The q-quantile in ms of a wall-time histogram (log interpolation inside the bucket)."""
    total = sum(hist)
    if total == 0:
        return 0.0
    target = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= target:
            lo, hi = max(EDGES_MS[i], 1), EDGES_MS[i + 1]
            frac = (target - seen) / count
            return lo * (hi / lo) ** frac
        seen += count
    return float(EDGES_MS[-1])


def records(start_ts: float, end_ts: float, now_ts: float, error_windows=()) -> list[dict]:
    """Records for every hour starting in [start, end) that has fully ended by now."""
    first = math.ceil(start_ts / 3600)
    last = min(math.ceil(end_ts / 3600) - 1, int(now_ts // 3600) - 1)
    out = []
    for hour in range(first, last + 1):
        rate = None
        for w_start, w_end, w_rate in error_windows:
            if w_start <= hour * 3600 < w_end:
                rate = w_rate
        out.append(hour_record(hour, rate))
    return out


def merge_hist(recs) -> list[int]:
    hist = [0] * (len(EDGES_MS) - 1)
    for rec in recs:
        for i, c in enumerate(rec["hist"]):
            hist[i] += c
    return hist
