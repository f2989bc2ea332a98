"""The monthly calendar's reports, built from the figures their tasks gathered.

Each function takes figures and windows (as periods.monthly_windows() gives them) and returns a
reports.Report: its title and window, its sections, the alerts its figures call for and what its
task returns. Point-in-time figures are markdown.Live sections, given with the capture their task
made (markdown.live_capture()). Nothing here reads Cloudflare, S3 or the config; the tasks pass all of it in.
"""

from __future__ import annotations

from prism.monitoring.analytics_windows import FREE_TIER_DAILY, FREE_TIER_STORAGE, resource_totals
from prism.monitoring.capacity import capacity_chart, capacity_plan, capacity_series, window_rates
from prism.reports.charts import bar_chart, line_chart
from prism.reports.markdown import (
    Report,
    code,
    expired,
    live,
    number,
    percent,
    result_rows,
    traffic_lines,
)
from prism.reports.pages import chart
from prism.reports.periods import from_iso

SECURITY_EVENT_TYPES = ("failed_login", "api_key_abuse", "unauthorized", "forbidden", "rate_limited")
NO_NPM = "- Skipped: no npm project configured (npm.project_dir in the config)."


def _span(win: dict) -> tuple:
    return from_iso(win["start"]), from_iso(win["end"])


def _npm_lines(npm: dict | None) -> list[str]:
    if not npm:
        return [NO_NPM]
    return [
        f"- {code(' '.join(npm['command']))} exited {npm['returncode']}"
        + (" (findings at or above the audit level)" if npm["returncode"] else " (no findings)")
    ]


def performance(traffic: dict, metrics: dict, month: dict, thresholds: dict) -> Report:
    """Day 1: the previous calendar month's traffic (GraphQL), with recommendations, and the Worker's
    own 30-day figures (point-in-time: `metrics` holds its task's `capture`, and the figures when it was timely)."""
    recs = []
    p95 = (traffic.get("wall_time_ms") or {}).get("p95")
    if traffic.get("available"):
        if p95 is not None and p95 > thresholds["p95_latency_ms"]:
            recs.append(
                f"- P95 latency {number(p95)} ms is above the {number(thresholds['p95_latency_ms'])} ms target: "
                "consider caching optimization."
            )
        if traffic["error_rate_percent"] > thresholds["error_rate_percent"]:
            recs.append(
                f"- Error rate {percent(traffic['error_rate_percent'])} is above "
                f"{percent(thresholds['error_rate_percent'])}: review the errors and recent deployments."
            )
    else:
        recs.append("- No recommendation: the month's traffic figures are unavailable.")
    if not recs:
        recs.append("- No action needed: latency and error rate are within the targets.")
    capture, tokens = metrics["capture"], metrics.get("tokens")
    hit_rate = (metrics.get("cache") or {}).get("hit_rate")
    token_lines = None
    if tokens is not None:
        token_lines = [
            f"- Tokens saved: {number(tokens['saved'])}",
            f"- Cost savings: ${tokens['cost_saved_usd']:,.2f}",
            f"- Cache hit rate: {percent(hit_rate)}",
            f"- Source: the Worker's /metrics?period=30d, {metrics['window']['start']} to {metrics['window']['end']}",
        ]
        if hit_rate is not None and hit_rate < 50:
            token_lines.append(
                f"- Recommendation: cache hit rate {percent(hit_rate)} is under 50%: review cache keys and TTLs."
            )
    return Report(
        "performance",
        month["period"],
        f"PRISM Performance Report - {month['label']}",
        _span(month),
        {
            "Request Metrics": traffic_lines(traffic),
            "Recommendations": recs,
            "Token Savings": live("the Worker's /metrics (its last 30 days)", capture, token_lines),
        },
        {
            "requests": traffic.get("requests"),
            "success_rate_percent": round(100 - traffic["error_rate_percent"], 4) if traffic.get("available") else None,
            "p95_ms": p95,
            "tokens_saved": tokens["saved"] if tokens else None,
            "cost_saved_usd": tokens["cost_saved_usd"] if tokens else None,
            "recommendations": recs + [line for line in token_lines or [] if line.startswith("- Recommendation")],
            "live_captured": tokens is not None,
        },
        charts=performance_charts(traffic.get("daily") or [], thresholds),
        expired=expired(traffic),
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
            [(d["date"], f"{number(d['requests'])} requests, {number(d['errors'])} errors") for _, d in days],
        ),
        chart(
            "P95 latency per day (ms)",
            line_chart(
                "P95 latency per day (ms)",
                {"p95": [(t, d["p95_ms"]) for t, d in days]},
                "ms",
                limits={"target": thresholds["p95_latency_ms"]},
            ),
            [(d["date"], f"{number(d['p95_ms'])} ms") for _, d in days],
        ),
    ]


def security(
    win: dict, thresholds: dict, events: dict | None, abuse: dict | None, npm: dict | None, capture: dict
) -> Report:
    """Day 7: the 30 days before the run's security events and abused API keys (D1), and npm audit
    (None: skipped; point-in-time, with its `capture`)."""
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
    sections = {
        "Failed authentication": [
            f"- Failed logins: {number(count['failed_login'])} (threshold {number(limit)})"
            + (" - ABOVE THE THRESHOLD, alert sent" if alerted else "")
        ],
        "API key abuse": [f"- API-key abuse events: {number(count['api_key_abuse'])}"]
        + [
            f"  - {code(k['api_key_id'])}: {number(k['events'])} events from {number(k['sources'])} sources, "
            f"last {k['last_seen']}"
            for k in keys
        ],
        "401/403 responses": [
            f"- Unauthorized (401): {number(count['unauthorized'])}",
            f"- Forbidden (403): {number(count['forbidden'])}",
            f"- Rate limited (429): {number(count['rate_limited'])}",
            "- Source: security_events written by the Worker (Cloudflare has no `wrangler tail --since`).",
        ],
        "npm audit": live("npm audit (the project's dependencies as they are now)", capture, _npm_lines(npm)),
    }
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
        f"PRISM Security Audit - {win['run_date']}",
        (from_iso(win["last_30_days"]["start"]), from_iso(win["end"])),
        sections,
        {**count, "failed_login_threshold": limit, "alerted": alerted, "abused_keys": len(keys)},
        alerts,
        charts,
    )


def optimization(win: dict, cfg: dict, figures: dict[str, dict | None], capture: dict) -> Report:
    """Day 15: what index optimization did (nothing inside a backfill: `analyze` is None) and the
    cache and indexes as they are (point-in-time, with the report task's `capture`), and the slow
    queries of the 7 days to the run. `figures`: D1SqlOperator results by task name (analyze,
    quick_check, query_plan, slow_queries, cache_effectiveness, index_usage)."""
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
            f"- `PRAGMA quick_check`: {number(check)}",
            f"- Chunk lookup plan: {'; '.join(map(str, plan_rows))}"
            + ("" if uses_index else " - NO INDEX USED: add one on document_chunks(document_id)"),
            "- `VACUUM`: unsupported on D1 (it refuses VACUUM; D1 manages its storage itself), not run.",
            "- `REINDEX`: not documented for D1, not run; quick_check verifies the indexes instead.",
        ]
    )
    sections = {
        "Index optimization": live("index optimization (it acts on the database as it is)", capture, index_lines),
        "Slow queries (the 7 days to the run)": [
            f"- {number(r['avg_duration_ms'], 1)} ms average, {number(r['max_duration_ms'], 1)} ms max, "
            f"{number(r['runs'])} runs: {code(r['query'])}"
            + (" - slower than the latency target" if r["avg_duration_ms"] > target else "")
            for r in slow_rows
        ]
        or ["- No queries logged in the window."],
        "Cache effectiveness": live(
            "the cache's hit counts (its entries as they are now)",
            capture,
            [
                f"- {code(r['type'])}: {number(r['total_hits'])} hits over {number(r['total_entries'])} entries "
                f"({number(r['hits_per_entry'])} per entry)"
                + (
                    f" - under {number(low)} hits per entry: the weekly cache cleanup removes such entries"
                    if r["hits_per_entry"] < low
                    else ""
                )
                for r in cache_rows
            ]
            or ["- The cache is empty."],
        ),
        "Index usage": live(
            "the database's indexes (as they are now)",
            capture,
            [f"- {code(r['name'])} on {code(r['tbl_name'])}" for r in indexes] or ["- none"],
        ),
    }
    return Report(
        "optimization",
        win["date"],
        f"PRISM Optimization Report - {win['run_date']}",
        (from_iso(win["last_7_days"]["start"]), from_iso(win["end"])),
        sections,
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
            findings.append(
                f"error rate {percent(traffic['error_rate_percent'])} is above {percent(thresholds['error_rate_percent'])}"
            )
            investigations.append("high_error_rate")
        if p95 > thresholds["p95_latency_ms"]:
            findings.append(f"p95 latency {number(p95)} ms is above {number(thresholds['p95_latency_ms'])} ms")
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
    return Report(
        "log_review",
        win["date"],
        f"PRISM Log Review - {mtd['label']} to {win['run_date']}",
        (from_iso(mtd["start"]), from_iso(win["end"])),
        {
            "Traffic": traffic_lines(traffic),
            "Findings": [f"- {f} (alert sent)" for f in findings]
            or (
                ["- Error rate and p95 within the targets."]
                if traffic.get("available")
                else ["- No findings: the traffic figures are unavailable."]
            ),
            "Failed authentication": [
                f"- Failed logins: {number(by_type.get('failed_login', 0))}",
                f"- 401 unauthorized: {number(by_type.get('unauthorized', 0))}",
                f"- 403 forbidden: {number(by_type.get('forbidden', 0))}",
                f"- API-key abuse: {number(by_type.get('api_key_abuse', 0))}",
            ],
            "Rate limiting": [f"- Rate-limit violations (429): {number(by_type.get('rate_limited', 0))}"],
        },
        {
            "requests": traffic.get("requests"),
            "error_rate_percent": traffic.get("error_rate_percent"),
            "p95_ms": (traffic.get("wall_time_ms") or {}).get("p95"),
            "failed_auth": auth,
            "rate_limited": by_type.get("rate_limited", 0),
            "findings": findings,
        },
        alerts,
        expired=expired(traffic),
    )


def resources(win: dict, cf: dict, limit_percent: float, live_now: dict | None, capture: dict) -> Report:
    """Day 21: resources.live_resources() against the free tier's storage (point-in-time: `live_now`
    is None when the run was too late to read it, see markdown.live_capture())."""
    what = "the resources as they are now"
    if live_now is None:
        sections = {
            name: live(what, capture, None) for name in ("D1", "Vectorize", "KV namespaces", "Latest deployment")
        }
        return Report(
            "resources",
            win["date"],
            f"PRISM Resource Check - {win['run_date']}",
            (from_iso(win["month_to_date"]["start"]), from_iso(win["end"])),
            sections,
            {"captured": False},
        )
    db, vec, namespaces = live_now["d1"], live_now["vectorize"], live_now["kv"]
    latest = live_now["deployments"][0] if live_now["deployments"] else None
    usage = {
        "d1_database_bytes": db.get("file_size", 0),
        "vectorize_stored_dimensions": vec["vectorCount"] * vec["dimensions"],
    }
    percent_of = {k: round(100 * v / FREE_TIER_STORAGE[k], 2) for k, v in usage.items()}
    over = {k: p for k, p in percent_of.items() if p >= limit_percent}
    alerts = (
        [
            {
                "subject": f"free-tier storage above {percent(limit_percent)}: "
                + ", ".join(f"{k} {percent(p)}" for k, p in over.items()),
                "severity": "warning",
                "investigations": ["resource_exhaustion"],
            }
        ]
        if over
        else []
    )
    versions = [v.get("version_id") for v in (latest or {}).get("versions", [])]
    sections = {
        "D1": [
            f"- {code(db['name'])} ({code(db['uuid'])}): {number(db.get('file_size', 0))} bytes, "
            f"{number(db.get('num_tables'))} tables ({percent(percent_of['d1_database_bytes'])} of the "
            f"{number(FREE_TIER_STORAGE['d1_database_bytes'] // 1000**2)} MB free-tier database size)"
        ],
        "Vectorize": [
            f"- {code(cf['vectorize_index'])}: {number(vec['vectorCount'])} vectors of {number(vec['dimensions'])} "
            f"dimensions ({percent(percent_of['vectorize_stored_dimensions'])} of the free tier's stored dimensions)"
        ],
        "KV namespaces": [f"- {code(ns['title'])} ({code(ns['id'])})" for ns in namespaces] or ["- none"],
        "Latest deployment": [
            f"- {code(latest['id'])} created {number(latest.get('created_on'))} by "
            f"{code(latest.get('author_email') or 'unknown')}: versions {', '.join(code(v) for v in versions) or 'none'}"
        ]
        if latest
        else ["- none"],
    }
    return Report(
        "resources",
        win["date"],
        f"PRISM Resource Check - {win['run_date']}",
        (from_iso(win["month_to_date"]["start"]), from_iso(win["end"])),
        {name: live(what, capture, lines) for name, lines in sections.items()},
        {
            "captured": True,
            "d1_bytes": db.get("file_size"),
            "d1_tables": db.get("num_tables"),
            "vectors": vec["vectorCount"],
            "kv_namespaces": [ns["title"] for ns in namespaces],
            "latest_deployment": latest and latest["id"],
            "percent_of_free_tier": percent_of,
            "captured_at": capture["captured_at"],
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
            [
                f"- Window queried: {usage['window']['start']} to {usage['window']['end']} "
                f"({number(usage['days'], 1)} days)"
            ]
            + [
                f"- {name}: {number(totals[name])} ({number(round(totals[name] / usage['days']))} a day; "
                f"free tier {number(FREE_TIER_DAILY[name])} a day)"
                for name in FREE_TIER_DAILY
                if name in totals and name != "worker_requests"
            ]
            + ([f"- Note: {usage['note']}"] if usage.get("note") else [])
        )
    )
    return Report(
        "monthly_report",
        mtd["period"],
        f"PRISM Monthly Report - {mtd['label']} (to {win['run_date']})",
        _span(mtd),
        {
            "Traffic and errors": traffic_lines(figures["traffic"]),
            "D1, Workers AI and KV usage": lines,
        },
        {"totals": totals, "traffic_window": figures["traffic"].get("window"), "usage_window": usage.get("window")},
        expired=expired(figures["traffic"], usage),
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
                "subject": f"free-tier daily usage at or above {percent(limit_percent)}: "
                + ", ".join(f"{n} {percent(p)}" for n, p in over.items()),
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
        paid = p.get("paid") or {}
        rows.append(
            f"| {name} | {number(p.get('daily'))} | {number(FREE_TIER_DAILY[name])} | {percent(p.get('percent_of_limit'))} "
            f"| {percent(p.get('growth_30d_percent'))} | {p['reaches_limit']} "
            f"| {number(round(paid['limit'])) if paid else 'no limit'} "
            f"| {paid.get('reaches_limit', 'n/a') if paid else 'n/a'} |"
        )
    method = [
        "- Daily rates are window totals divided by the days GraphQL covered; growth compounds the change "
        "from the oldest to the newest window to a 30-day rate; the limit date extrapolates that growth.",
        "- Workers traffic: three 30-day windows. D1, Workers AI and KV: GraphQL keeps only 31 days, so their "
        "trend comes from the two 15-day halves of the last 30 days.",
    ] + [f"- {n}" for n in notes]
    # What a report made at the window's end reads (every traffic window, the last usage window and its
    # halves) has left GraphQL when one of them is expired; the older usage windows never were there.
    read = [w["traffic"] for w in figures["windows"]] + [figures["windows"][-1]["usage"]]
    read += [h["usage"] for h in figures.get("halves", [])]
    return Report(
        "capacity",
        win["month"],
        f"PRISM Capacity Planning - {win['run_date']}",
        (from_iso(win["capacity"][0]["start"]), end),
        {"Projection": rows, "Method and data available": method},
        {"plan": plan, "alerted": sorted(over)},
        alerts,
        capacity_charts(figures, plan, end),
        expired=expired(read),
    )


def capacity_charts(figures: dict, plan: dict, end) -> list[dict]:
    """Per resource: the measured daily rates, the projection to the chart's horizon, its limits, and in
    words when each limit is reached (capacity.capacity_chart)."""
    series, charts = capacity_series(figures), []
    for name, p in plan.items():
        points = window_rates(series.get(name, []))
        title = f"{name}: daily rate and projection"
        charts.append(
            chart(
                title,
                capacity_chart(name, points, p, end, title),
                [(f"{t:%Y-%m-%d}", f"{v:,.0f} a day") for t, v in points]
                + [("free-tier limit reached", p["reaches_limit"])]
                + ([("paid plan's amount reached", p["paid"]["reaches_limit"])] if p.get("paid") else []),
            )
        )
    return charts
