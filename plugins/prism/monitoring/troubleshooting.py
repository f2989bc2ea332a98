"""The guide's Troubleshooting investigations, run when a check fails. This module only finds:
`investigate()` returns the findings (and `as_text` words them); `prism.alerts.alert` sends an alert
with them attached. `FOR_METRIC` says which investigation a crossed threshold calls for.

| investigation | guide | steps |
|---|---|---|
| `high_error_rate` | Issue 1: High Error Rate | recent errors (GraphQL Analytics), the Worker's `/health`, dependency checks (D1 `SELECT 1`, Vectorize, KV), recent deployments |
| `slow_performance` | Issue 2: Slow Performance | slow queries (D1 `query_log`), cache hit rate and latency (the Worker's `/metrics`) |
| `resource_exhaustion` | Issue 3: Resource Exhaustion | usage against the plan limits (`/metrics`), rate-limit hits (D1 `security_events`, the API budget, 429s) |

The guide's `wrangler tail --since 1h` does not exist (tail is live only): recent errors come from
GraphQL Analytics, which lags, so they cover the last three hours. Every step runs even when another
fails (a failure is itself a finding), and uses the monitoring share of the API budget with one retry,
so an investigation stays short during an incident. Findings describe the moment of the alert, and
say so.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path

from prism.monitoring.dashboard_records import budget_state
from prism.monitoring.plan_limits import usage_against_limits
from prism.monitoring.worker import PrismWorkerHook
from prism.runtime import sql_time
from prism.settings.config import runtime_config
from prism.settings.paths import SQL_DIR

log = logging.getLogger(__name__)

GUIDE = {
    "high_error_rate": (
        "high error rate",
        "Troubleshooting, Issue 1: High Error Rate",
        [
            "check for recent deployments",
            "verify database connectivity",
            "check resource limits",
            "roll back if needed",
        ],
    ),
    "slow_performance": (
        "slow performance",
        "Troubleshooting, Issue 2: Slow Performance",
        ["optimize slow queries", "increase cache size", "add indexes", "reduce batch sizes"],
    ),
    "resource_exhaustion": (
        "resource exhaustion",
        "Troubleshooting, Issue 3: Resource Exhaustion",
        ["implement caching", "optimize queries", "increase rate limits", "consider the paid plan"],
    ),
}
ERRORS_HOURS = 3
SLOW_QUERY_HOURS = 24  # the query log is sparse: an hour often holds no query at all
RECENT_DEPLOY_HOURS = 24
CACHE_HIT_RATE_MIN = 50.0


class _Sources:
    """The hooks an investigation reads through, made once (monitoring priority, one retry)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.cf = cfg["cloudflare"]

    @cached_property
    def d1(self):
        # The Cloudflare hooks pull requests (~35 ms): imported when an investigation runs, not at DAG parse time.
        from airflow_provider_cloudflare.hooks.d1 import D1Hook

        return D1Hook(priority="monitor", max_attempts=2)

    @cached_property
    def database_id(self) -> str:
        return self.d1.find_database(self.cf["d1_database"])

    @cached_property
    def analytics(self):
        from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook  # requests: see d1

        return WorkersAnalyticsHook(priority="monitor", max_attempts=2)

    @cached_property
    def worker(self):
        return PrismWorkerHook(timeout=10)

    @cached_property
    def metrics(self) -> dict:
        return self.worker.metrics("24h")

    def sql(self, template: str, params: list) -> list[dict]:
        return self.d1.rows(self.database_id, (Path(SQL_DIR) / template).read_text(), params)


# ---- steps: each returns (ok, lines); ok None means informational ----------------------------
def recent_errors(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    start = at - timedelta(hours=ERRORS_HOURS)
    traffic = src.analytics.worker_traffic(src.cf["worker_name"], start, at)
    limit = src.cfg["thresholds"]["error_rate_percent"]
    failing = {s: n for s, n in traffic["status"].items() if s != "success" and n}
    lines = [
        f"{traffic['requests']:,} requests, {traffic['errors']:,} errors ({traffic['error_rate_percent']}%; threshold "
        f"{limit}%) from {traffic['window']['start']} to {traffic['window']['end']}",
        "errors by outcome: " + (", ".join(f"{s} {n:,}" for s, n in sorted(failing.items())) or "none"),
    ]
    hours = [h for h in src.analytics.worker_hourly(src.cf["worker_name"], start, at) if h["errors"]]
    lines += [f"{h['hour']}: {h['errors']:,} errors of {h['requests']:,} requests" for h in hours[-ERRORS_HOURS:]]
    return traffic["error_rate_percent"] < limit, lines


def worker_status(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    health = src.worker.health()
    checks = health.get("checks") or {}
    return health.get("status") == "healthy", [
        f"/health: {health.get('status')} (HTTP {health.get('http_status')}), version {health.get('version', '?')}",
        "checks: " + (", ".join(f"{k} {v}" for k, v in checks.items()) or "none reported"),
    ]


def dependencies(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    # The Cloudflare hooks pull requests (~35 ms): imported when an investigation runs, not at DAG parse time.
    from airflow_provider_cloudflare.hooks.kv import KVHook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    lines, ok = [], True
    probes = (
        ("D1 SELECT 1", lambda: "ok" if src.sql("health/select_one.sql", []) == [{"ok": 1}] else "unexpected answer"),
        (
            "Vectorize",
            lambda: (
                f"{VectorizeHook(priority='monitor', max_attempts=2).info(src.cf['vectorize_index'])['vectorCount']:,} "
                f"vectors in {src.cf['vectorize_index']}"
            ),
        ),
        (
            "KV",
            lambda: (
                f"namespace {src.cf['kv_namespace']} reachable "
                f"({KVHook(priority='monitor', max_attempts=2).find_namespace(src.cf['kv_namespace'])})"
            ),
        ),
    )
    for name, probe in probes:
        try:
            result = probe()
            ok = ok and not result.startswith("unexpected")
            lines.append(f"{name}: {result}")
        except Exception as exc:  # noqa: BLE001 - a failing dependency is the finding
            ok = False
            lines.append(f"{name}: FAILED: {exc}")
    return ok, lines


def recent_deployments(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    deployments = src.analytics.deployments(src.cf["worker_name"])[:3]
    lines, recent = [], False
    for d in deployments:
        created = d.get("created_on")
        when = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
        fresh = when is not None and timedelta(0) <= at - when <= timedelta(hours=RECENT_DEPLOY_HOURS)
        recent = recent or fresh
        versions = ", ".join(f"{v.get('version_id')} ({v.get('percentage')}%)" for v in d.get("versions", []))
        lines.append(
            f"{d['id']} created {created} by {d.get('author_email', '?')}: {versions}"
            + (f" - within {RECENT_DEPLOY_HOURS} h of the alert: a rollback candidate" if fresh else "")
        )
    return (False if recent else None), lines or ["no deployments"]


def slow_queries(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    start = at - timedelta(hours=SLOW_QUERY_HOURS)
    rows = src.sql("troubleshooting/slow_queries.sql", [sql_time(start), sql_time(at)])
    target = src.cfg["thresholds"]["p95_latency_ms"]
    slow = [r for r in rows if r["duration_ms"] > target]
    lines = [f"{len(slow)} of the slowest {len(rows)} queries in the last {SLOW_QUERY_HOURS} h took over {target} ms"]
    lines += [f"{r['duration_ms']:.0f} ms at {r['timestamp']}, {r['rows']} rows: `{r['query']}`" for r in rows[:5]]
    return not slow, lines


def cache_and_latency(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    m = src.metrics
    cache, perf = m["cache"], m["performance"]
    return cache["hit_rate"] >= CACHE_HIT_RATE_MIN, [
        f"cache hit rate {cache['hit_rate']}% over 24 h ({cache['hits']:,} hits, {cache['misses']:,} misses; "
        f"{CACHE_HIT_RATE_MIN:g}% expected)",
        f"cache: {cache['entries']:,} entries, {cache['size_bytes']:,} bytes, {cache['evictions']:,} evictions",
        f"latency over 24 h: p50 {perf['p50_latency_ms']} ms, p95 {perf['p95_latency_ms']} ms, p99 {perf['p99_latency_ms']} ms",
    ]


def usage_limits(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    r = src.metrics["resources"]
    rows = usage_against_limits(
        {
            "ai_neurons": r["neurons_used"],
            "d1_rows_read": r.get("d1_rows_read_today"),
            "d1_rows_written": r.get("d1_rows_written_today"),
            "kv_reads": r.get("kv_reads_today"),
            "kv_writes": r.get("kv_writes_today"),
            "vectorize_stored_dimensions": r.get("vectorize_stored_dimensions"),
            "vectorize_queried_dimensions": r.get("vectorize_queried_dimensions_month"),
        }
    )
    limit = src.cfg["thresholds"]["free_tier_usage_percent"]
    over = [row for row in rows if (row["free_percent"] or 0) >= limit]
    lines = [
        f"{row['label']} ({row['counted']}): {row['used']:,.0f} of {row['free_limit']:,.0f} ({row['free_percent']}% of the "
        f"free tier)" + (" - AT OR ABOVE THE THRESHOLD" if row in over else "")
        for row in rows
    ]
    return not over, lines


def rate_limit_hits(src: _Sources, at: datetime) -> tuple[bool | None, list[str]]:
    hour = src.sql("troubleshooting/rate_limited.sql", [sql_time(at - timedelta(hours=1)), sql_time(at)])[0]
    day = src.sql("troubleshooting/rate_limited.sql", [sql_time(at - timedelta(days=1)), sql_time(at)])[0]
    allowed = src.cfg["thresholds"]["rate_limited_per_day"]
    budget = budget_state(src.d1.budget)
    lines = [
        f"PRISM rate-limit hits (security_events): {hour['events']} in the last hour, {day['events']} in the last 24 h "
        f"(threshold {allowed} a day) from {day['sources']} sources; last {day['last_seen'] or 'never'}"
    ]
    if budget:
        lines.append(
            f"Cloudflare API budget: {budget['used']:,} of {budget['limit']:,} requests used in the current "
            f"{budget['window_seconds'] // 60}-minute window; {budget['rate_limited_responses']} 429s seen"
        )
    return day["events"] <= allowed and not (budget and budget["rate_limited_responses"]), lines


STEPS = {
    "high_error_rate": (
        ("Recent errors (GraphQL Analytics)", recent_errors),
        ("Worker status", worker_status),
        ("Dependency checks", dependencies),
        ("Recent deployments", recent_deployments),
    ),
    "slow_performance": (
        ("Slow queries (D1 query_log)", slow_queries),
        ("Cache hit rate and latency (/metrics)", cache_and_latency),
    ),
    "resource_exhaustion": (
        ("Usage against the limits (/metrics)", usage_limits),
        ("Rate-limit hits", rate_limit_hits),
    ),
}


def investigate(kind: str, at: datetime | None = None, cfg: dict | None = None) -> dict:
    """Run one investigation; every step's outcome (ok, needs attention, informational, or failed to
    check) and lines, and the whole as text for an alert."""
    if kind not in STEPS:
        raise ValueError(f"unknown investigation {kind!r}; known: {sorted(STEPS)}")
    if cfg is None:
        cfg = runtime_config()
    at = at or datetime.now(timezone.utc)
    src = _Sources(cfg)
    steps = []
    for name, step in STEPS[kind]:
        try:
            ok, lines = step(src, at)
        except Exception as exc:  # noqa: BLE001 - a step that cannot be made is a finding, not the end
            log.warning("troubleshooting step %r failed: %s", name, exc)
            ok, lines = False, [f"could not check: {type(exc).__name__}: {exc}"]
        steps.append({"step": name, "ok": ok, "lines": lines})
    title, guide, resolution = GUIDE[kind]
    result = {
        "kind": kind,
        "title": title,
        "guide": guide,
        "at": at.isoformat(timespec="seconds"),
        "steps": steps,
        "resolution": resolution,
    }
    result["text"] = as_text(result)
    return result


def as_text(result: dict) -> str:
    """An investigation's findings as the text an alert carries."""
    mark = {True: "ok", False: "!!", None: "--"}
    lines = [f"Diagnosis: {result['title']} (guide: {result['guide']}), investigated at {result['at']}"]
    for step in result["steps"]:
        lines.append(f"[{mark[step['ok']]}] {step['step']}")
        lines += [f"    {line}" for line in step["lines"]]
    lines.append("Resolution (guide): " + "; ".join(result["resolution"]))
    return "\n".join(lines)


# Which investigation a crossed threshold calls for, by the metric's name in the checks.
FOR_METRIC = {
    "error rate (%)": "high_error_rate",
    "p95 latency (ms)": "slow_performance",
    "rate-limit violations": "resource_exhaustion",
    "free-tier usage (%)": "resource_exhaustion",
}
