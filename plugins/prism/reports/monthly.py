"""The monthly calendar's reports, built from the figures their tasks gathered.

Each function takes figures and windows (as calendar_windows.monthly_windows() gives them) and
returns a reports.Report: its text, the alerts its figures call for and what its task returns.
Nothing here reads Cloudflare, S3 or the config; the tasks pass all of it in.
"""

from __future__ import annotations

from prism.monitoring.analytics_windows import FREE_TIER_DAILY, FREE_TIER_STORAGE, resource_totals
from prism.monitoring.capacity import capacity_plan, capacity_series, projection_series, window_rates
from prism.reports.charts import bar_chart, line_chart
from prism.reports.markdown import Report, markdown, number, result_rows, traffic_lines
from prism.reports.pages import chart
from prism.reports.periods import from_iso

SECURITY_EVENT_TYPES = ("failed_login", "api_key_abuse", "unauthorized", "forbidden", "rate_limited")


def _span(win: dict) -> tuple:
    return from_iso(win["start"]), from_iso(win["end"])


def performance(traffic: dict, metrics: dict, month: dict, thresholds: dict) -> Report:
    """Day 1: the previous calendar month's traffic (GraphQL) and the Worker's own 30-day figures
    (point-in-time), with recommendations."""
    recs = []
    p95 = (traffic.get("wall_time_ms") or {}).get("p95")
    if traffic.get("available"):
        if p95 is not None and p95 > thresholds["p95_latency_ms"]:
            recs.append(
                f"- P95 latency {p95} ms is above the {thresholds['p95_latency_ms']} ms target: consider caching optimization."
            )
        if traffic["error_rate_percent"] > thresholds["error_rate_percent"]:
            recs.append(
                f"- Error rate {traffic['error_rate_percent']}% is above {thresholds['error_rate_percent']}%: "
                "review the errors and recent deployments."
            )
    hit_rate = (metrics.get("cache") or {}).get("hit_rate")
    if hit_rate is not None and hit_rate < 50:
        recs.append(f"- Cache hit rate {hit_rate}% is under 50%: review cache keys and TTLs.")
    if not recs:
        recs.append("- No action needed: latency and error rate are within the targets.")
    tokens, labels = metrics["tokens"], metrics["labels"]
    text = markdown(
        f"PRISM Performance Report - {month['label']}",
        _span(month),
        {
            "Request Metrics": traffic_lines(traffic),
            "Token Savings": [
                f"- Tokens saved: {number(tokens['saved'])}",
                f"- Cost savings: ${tokens['cost_saved_usd']:,.2f}",
                f"- Cache hit rate: {hit_rate}%",
                f"- Source: the Worker's /metrics?period=30d ({metrics['window']['start']} to {metrics['window']['end']}), "
                f"captured at {labels['captured_at']} for the run of {labels['logical_date']}"
                + (" inside a backfill: these are today's figures, not the month's" if labels["in_backfill"] else ""),
            ],
            "Recommendations": recs,
        },
        captured=labels,
    )
    return Report(
        "performance",
        month["period"],
        text,
        {
            "requests": traffic.get("requests"),
            "success_rate_percent": round(100 - traffic["error_rate_percent"], 4) if traffic.get("available") else None,
            "p95_ms": p95,
            "tokens_saved": tokens["saved"],
            "cost_saved_usd": tokens["cost_saved_usd"],
            "recommendations": recs,
        },
        charts=performance_charts(traffic.get("daily") or [], thresholds),
    )


def performance_charts(daily: list[dict], thresholds: dict) -> list[dict]:
    """Requests and errors per day, and the p95 trend against its target (traffic per day, GraphQL)."""
    if not daily:
        return []
    days = [(from_iso(d["date"] + "T00:00:00+00:00"), d) for d in daily]
    return [
        chart(
            "Requests and errors per day",
            line_chart(
                "Requests and errors per day",
                {"requests": [(t, d["requests"]) for t, d in days], "errors": [(t, d["errors"]) for t, d in days]},
                "per day",
            ),
            [(d["date"], f"{d['requests']:,} requests, {d['errors']:,} errors") for _, d in days],
        ),
        chart(
            "P95 latency per day (ms)",
            line_chart(
                "P95 latency per day (ms)",
                {"p95": [(t, d["p95_ms"]) for t, d in days]},
                "ms",
                limits={"target": thresholds["p95_latency_ms"]},
            ),
            [(d["date"], f"{d['p95_ms']} ms") for _, d in days],
        ),
    ]


def security(win: dict, thresholds: dict, events: dict | None, abuse: dict | None, npm: dict | None) -> Report:
    """Day 7: the 30 days before the run's security events, abused API keys and npm audit (None: skipped)."""
    by_type = {r["type"]: r for r in result_rows(events)}
    count = {t: (by_type.get(t) or {}).get("events", 0) for t in SECURITY_EVENT_TYPES}
    keys = result_rows(abuse)
    limit = thresholds["failed_logins_per_month"]
    alerted = count["failed_login"] > limit
    alerts = []
    if alerted:
        alerts.append(
            {
                "subject": f"{count['failed_login']} failed logins in the 30 days to {win['run_date']} (threshold {limit})",
                "body": "Investigate the sources in security_events.",
                "severity": "warning",
            }
        )
    if npm and npm["returncode"] != 0:
        alerts.append(
            {"subject": "npm audit reports vulnerabilities", "body": npm["output"][-1500:], "severity": "warning"}
        )
    text = markdown(
        f"PRISM Security Audit - {win['run_date']}",
        (from_iso(win["last_30_days"]["start"]), from_iso(win["end"])),
        {
            "Failed authentication": [
                f"- Failed logins: {count['failed_login']} (threshold {limit})"
                + (" - ABOVE THE THRESHOLD, alert sent" if alerted else "")
            ],
            "API key abuse": [f"- API-key abuse events: {count['api_key_abuse']}"]
            + [
                f"  - {k['api_key_id']}: {k['events']} events from {k['sources']} sources, last {k['last_seen']}"
                for k in keys
            ],
            "401/403 responses": [
                f"- Unauthorized (401): {count['unauthorized']}",
                f"- Forbidden (403): {count['forbidden']}",
                f"- Rate limited (429): {count['rate_limited']}",
                "- Source: security_events written by the Worker (Cloudflare has no `wrangler tail --since`).",
            ],
            "npm audit": [
                f"- `{' '.join(npm['command'])}` exited {npm['returncode']}"
                + (" (findings at or above the audit level)" if npm["returncode"] else " (no findings)")
            ]
            if npm
            else ["- Skipped: no npm project configured (npm.project_dir in the config)."],
        },
    )
    bars = [(t, count[t]) for t in SECURITY_EVENT_TYPES]
    charts = [
        chart(
            "Security events by type (30 days)",
            bar_chart(
                "Security events by type (30 days)",
                bars,
                "events",
                colors={"failed_login": "#dc2626" if alerted else "#2563eb"},
            ),
            bars,
        )
    ]
    return Report(
        "security",
        win["date"],
        text,
        {**count, "failed_login_threshold": limit, "alerted": alerted, "abused_keys": len(keys)},
        alerts,
        charts,
    )


def optimization(win: dict, cfg: dict, figures: dict[str, dict | None]) -> Report:
    """Day 15: what index optimization did (nothing inside a backfill: `analyze` is None), and the
    slow queries, cache and indexes. `figures`: D1SqlOperator results by task name (analyze, quick_check,
    query_plan, slow_queries, cache_effectiveness, index_usage)."""
    analyzed = figures.get("analyze")
    check = [next(iter(r.values())) for r in result_rows(figures.get("quick_check"))]
    plan_rows = [r.get("detail", "") for r in result_rows(figures.get("query_plan"))]
    slow_rows = result_rows(figures.get("slow_queries"))
    cache_rows = result_rows(figures.get("cache_effectiveness"))
    indexes = result_rows(figures.get("index_usage"))
    alerts = (
        [{"subject": "D1 quick_check found problems", "body": "\n".join(map(str, check))}]
        if analyzed and check != ["ok"]
        else []
    )
    target = cfg["thresholds"]["p95_latency_ms"]
    low = cfg["retention"]["cache_low_hit_count"]
    uses_index = any("USING INDEX" in d or "USING COVERING INDEX" in d for d in plan_rows)
    index_lines = (
        ["- Skipped inside a backfill."]
        if not analyzed
        else [
            "- `PRAGMA optimize; ANALYZE`: planner statistics refreshed.",
            f"- `PRAGMA quick_check`: {', '.join(map(str, check))}",
            f"- Chunk lookup plan: {'; '.join(plan_rows)}"
            + ("" if uses_index else " - NO INDEX USED: add one on document_chunks(document_id)"),
            "- `VACUUM`: unsupported on D1 (it refuses VACUUM; D1 manages its storage itself), not run.",
            "- `REINDEX`: not documented for D1, not run; quick_check verifies the indexes instead.",
        ]
    )
    text = markdown(
        f"PRISM Optimization Report - {win['run_date']}",
        (from_iso(win["last_7_days"]["start"]), from_iso(win["end"])),
        {
            "Index optimization": index_lines,
            "Slow queries (the 7 days to the run)": [
                f"- {r['avg_duration_ms']:.1f} ms average, {r['max_duration_ms']:.1f} ms max, {r['runs']} runs: `{r['query']}`"
                + (" - slower than the latency target" if r["avg_duration_ms"] > target else "")
                for r in slow_rows
            ]
            or ["- No queries logged in the window."],
            "Cache effectiveness": [
                f"- {r['type']}: {r['total_hits']} hits over {r['total_entries']} entries ({r['hits_per_entry']:.2f} per entry)"
                + (
                    f" - under {low} hits per entry: the weekly cache cleanup removes such entries"
                    if r["hits_per_entry"] < low
                    else ""
                )
                for r in cache_rows
            ]
            or ["- The cache is empty."],
            "Index usage": [f"- {r['name']} on {r['tbl_name']}" for r in indexes],
        },
    )
    return Report(
        "optimization",
        win["date"],
        text,
        {
            "quick_check": check,
            "chunk_lookup_uses_index": uses_index,
            "slow_queries": len(slow_rows),
            "slowest_avg_ms": slow_rows[0]["avg_duration_ms"] if slow_rows else None,
            "cache_types": {r["type"]: r["total_hits"] for r in cache_rows},
            "indexes": len(indexes),
        },
        alerts,
    )


def log_review(win: dict, thresholds: dict, traffic: dict, events: dict | None) -> Report:
    """Day 21: the month to date's error rate and p95 against the thresholds, failed auth and rate limiting."""
    by_type = {r["type"]: r["events"] for r in result_rows(events)}
    findings, investigations = [], []
    if traffic.get("available"):
        p95 = traffic["wall_time_ms"].get("p95", 0)
        if traffic["error_rate_percent"] > thresholds["error_rate_percent"]:
            findings.append(f"error rate {traffic['error_rate_percent']}% is above {thresholds['error_rate_percent']}%")
            investigations.append("high_error_rate")
        if p95 > thresholds["p95_latency_ms"]:
            findings.append(f"p95 latency {p95} ms is above {thresholds['p95_latency_ms']} ms")
            investigations.append("slow_performance")
    mtd = win["month_to_date"]
    alerts = (
        [
            {
                "subject": f"monthly log review ({mtd['label']} to date): " + "; ".join(findings),
                "severity": "warning",
                "investigations": investigations,
            }
        ]
        if findings
        else []
    )
    auth = by_type.get("failed_login", 0) + by_type.get("unauthorized", 0) + by_type.get("forbidden", 0)
    text = markdown(
        f"PRISM Log Review - {mtd['label']} to {win['run_date']}",
        (from_iso(mtd["start"]), from_iso(win["end"])),
        {
            "Traffic": traffic_lines(traffic),
            "Findings": [f"- {f} (alert sent)" for f in findings] or ["- Error rate and p95 within the targets."],
            "Failed authentication": [
                f"- Failed logins: {by_type.get('failed_login', 0)}",
                f"- 401 unauthorized: {by_type.get('unauthorized', 0)}",
                f"- 403 forbidden: {by_type.get('forbidden', 0)}",
                f"- API-key abuse: {by_type.get('api_key_abuse', 0)}",
            ],
            "Rate limiting": [f"- Rate-limit violations (429): {by_type.get('rate_limited', 0)}"],
        },
    )
    return Report(
        "log_review",
        win["date"],
        text,
        {
            "requests": traffic.get("requests"),
            "error_rate_percent": traffic.get("error_rate_percent"),
            "p95_ms": (traffic.get("wall_time_ms") or {}).get("p95"),
            "failed_auth": auth,
            "rate_limited": by_type.get("rate_limited", 0),
            "findings": findings,
        },
        alerts,
    )


def resources(win: dict, cf: dict, limit_percent: float, live: dict, labels: dict) -> Report:
    """Day 21: resource_inventory.live_resources() against the free tier's storage (point-in-time, labelled)."""
    db, vec, namespaces = live["d1"], live["vectorize"], live["kv"]
    latest = live["deployments"][0] if live["deployments"] else None
    usage = {
        "d1_database_bytes": db.get("file_size", 0),
        "vectorize_stored_dimensions": vec["vectorCount"] * vec["dimensions"],
    }
    percent = {k: round(100 * v / FREE_TIER_STORAGE[k], 2) for k, v in usage.items()}
    over = {k: p for k, p in percent.items() if p >= limit_percent}
    alerts = (
        [
            {
                "subject": f"free-tier storage above {limit_percent}%: {over}",
                "severity": "warning",
                "investigations": ["resource_exhaustion"],
            }
        ]
        if over
        else []
    )
    text = markdown(
        f"PRISM Resource Check - {win['run_date']}",
        (from_iso(win["month_to_date"]["start"]), from_iso(win["end"])),
        {
            "D1": [
                f"- {db['name']} ({db['uuid']}): {number(db.get('file_size', 0))} bytes, {db.get('num_tables')} tables "
                f"({percent['d1_database_bytes']}% of the {FREE_TIER_STORAGE['d1_database_bytes'] // 1000**2} MB free-tier database size)"
            ],
            "Vectorize": [
                f"- {cf['vectorize_index']}: {number(vec['vectorCount'])} vectors of {vec['dimensions']} dimensions "
                f"({percent['vectorize_stored_dimensions']}% of the free tier's stored dimensions)"
            ],
            "KV namespaces": [f"- {ns['title']} ({ns['id']})" for ns in namespaces],
            "Latest deployment": [
                f"- {latest['id']} created {latest.get('created_on')} by {latest.get('author_email', '?')}: "
                f"{[v.get('version_id') for v in latest.get('versions', [])]}"
            ]
            if latest
            else ["- none"],
        },
        captured=labels,
    )
    return Report(
        "resources",
        win["date"],
        text,
        {
            "d1_bytes": db.get("file_size"),
            "d1_tables": db.get("num_tables"),
            "vectors": vec["vectorCount"],
            "kv_namespaces": [ns["title"] for ns in namespaces],
            "latest_deployment": latest and latest["id"],
            "percent_of_free_tier": percent,
            "labels": labels,
        },
        alerts,
    )


def month_usage(win: dict, figures: dict) -> Report:
    """Day 28: the month to date's traffic and D1/AI/KV usage. `figures`: {traffic, usage} from
    analytics_windows.traffic_in() and usage_in()."""
    mtd, usage = win["month_to_date"], figures["usage"]
    totals = resource_totals(figures["traffic"], usage)
    lines = (
        [f"- Usage figures {usage['note']}"]
        if not usage.get("available")
        else (
            [f"- Window queried: {usage['window']['start']} to {usage['window']['end']} ({usage['days']:.1f} days)"]
            + [
                f"- {name}: {number(totals[name])} ({number(round(totals[name] / usage['days']))} a day; "
                f"free tier {number(FREE_TIER_DAILY[name])} a day)"
                for name in FREE_TIER_DAILY
                if name in totals and name != "worker_requests"
            ]
            + ([f"- Note: {usage['note']}"] if usage.get("note") else [])
        )
    )
    text = markdown(
        f"PRISM Monthly Report - {mtd['label']} (to {win['run_date']})",
        _span(mtd),
        {
            "Traffic and errors": traffic_lines(figures["traffic"]),
            "D1, Workers AI and KV usage": lines,
        },
    )
    return Report(
        "monthly_report",
        mtd["period"],
        text,
        {"totals": totals, "traffic_window": figures["traffic"].get("window"), "usage_window": usage.get("window")},
    )


def capacity(win: dict, figures: dict, limit_percent: float) -> Report:
    """Day 28: capacity.capacity_plan() of capacity.capacity_figures() as a table, alerting for
    resources at or above `limit_percent` of their free-tier daily limit."""
    end = from_iso(win["end"])
    plan = capacity_plan(figures, end)
    over = {
        n: p["percent_of_limit"]
        for n, p in plan.items()
        if p.get("percent_of_limit") is not None and p["percent_of_limit"] >= limit_percent
    }
    alerts = (
        [
            {
                "subject": f"free-tier daily usage at or above {limit_percent}%: "
                + ", ".join(f"{n} {p}%" for n, p in over.items()),
                "severity": "warning",
                "investigations": ["resource_exhaustion"],
            }
        ]
        if over
        else []
    )
    notes = sorted({w[src]["note"] for w in figures["windows"] for src in ("traffic", "usage") if w[src]["note"]})
    rows = [
        "| resource | daily now | free-tier limit | % of limit | growth / 30 days | free-tier limit reached "
        "| paid plan's included amount (a day) | paid plan's amount reached |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, p in plan.items():
        growth = "n/a" if p.get("growth_30d_percent") is None else f"{p['growth_30d_percent']}%"
        paid = p.get("paid") or {}
        rows.append(
            f"| {name} | {number(p.get('daily'))} | {number(FREE_TIER_DAILY[name])} | {p.get('percent_of_limit', 'n/a')} "
            f"| {growth} | {p['reaches_limit']} | {number(round(paid['limit'])) if paid else 'no limit'} "
            f"| {paid.get('reaches_limit', 'n/a') if paid else 'n/a'} |"
        )
    method = [
        "- Daily rates are window totals divided by the days GraphQL covered; growth compounds the change "
        "from the oldest to the newest window to a 30-day rate; the limit date extrapolates that growth.",
        "- Workers traffic: three 30-day windows. D1, Workers AI and KV: GraphQL keeps only 31 days, so their "
        "trend comes from the two 15-day halves of the last 30 days.",
    ] + [f"- {n}" for n in notes]
    text = markdown(
        f"PRISM Capacity Planning - {win['run_date']}",
        (from_iso(win["capacity"][0]["start"]), end),
        {"Projection": rows, "Method and data available": method},
    )
    return Report(
        "capacity",
        win["month"],
        text,
        {"plan": plan, "alerted": sorted(over)},
        alerts,
        capacity_charts(figures, plan, end),
    )


def capacity_charts(figures: dict, plan: dict, end) -> list[dict]:
    """Per resource: the measured daily rates, the projection at the measured growth, its limits and
    the date it reaches the free-tier limit."""
    series, charts = capacity_series(figures), []
    for name, p in plan.items():
        points = window_rates(series.get(name, []))
        projected = projection_series(points, p, end)
        limits = {"free tier": FREE_TIER_DAILY[name]} | (
            {"paid plan": round(p["paid"]["limit"])} if p.get("paid") else {}
        )
        reached = p["reaches_limit"]
        markers = [(from_iso(reached + "T00:00:00+00:00"), f"free tier {reached}")] if reached[:2] == "20" else []
        title = f"{name}: daily rate and projection"
        charts.append(
            chart(
                title,
                line_chart(
                    title,
                    {"measured": points, "projected": projected},
                    "a day",
                    limits=limits,
                    dashed={"projected"},
                    markers=markers,
                ),
                [(f"{t:%Y-%m-%d}", f"{v:,.0f} a day") for t, v in points]
                + [("free-tier limit reached", reached)]
                + ([("paid plan's amount reached", p["paid"]["reaches_limit"])] if p.get("paid") else []),
            )
        )
    return charts
