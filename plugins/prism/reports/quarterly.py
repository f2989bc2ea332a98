"""The quarterly review: each quarter's checklist, with figures, as one report.

A run reviews one quarter, the one its data interval covers (periods.quarterly_windows()): the title,
the key, the window, which quarter's checklist it is and every figure follow from it. Each `*_items`
function turns what a quarter's tasks gathered into checklist sections; point-in-time sections (the
resources, the cache, the bucket's backup sets, the restore drill, npm audit) are markdown.Live ones,
given with the capture their task made. checklist() makes them the review (reports.Report), with one
alert for all the items that need attention. Nothing here reads Cloudflare, S3 or the config; the
tasks pass all of it in.
"""

from __future__ import annotations

from prism.monitoring.analytics_windows import FREE_TIER_DAILY
from prism.reports.charts import bar_chart
from prism.reports.markdown import Live, Report, checklist_item, code, live, number, percent, result_rows
from prism.reports.pages import chart
from prism.reports.periods import from_iso

# The daily limits the scaling review checks (KV deletes and lists stay out of it).
SCALING_RESOURCES = ("worker_requests", "ai_neurons", "d1_rows_read", "d1_rows_written", "kv_reads", "kv_writes")
FLAGGED = "- [!]"
SETS_BY_STATUS = "- Sets by status: "


def _lines(section) -> list[str]:
    """The lines a section shows: a live section's only when it was captured."""
    return (section.lines or []) if isinstance(section, Live) else section


def checklist(
    win: dict, title: str, sections: dict[str, list[str] | Live], figures: dict | None = None, stale: bool = False
) -> Report:
    """The review of the quarter in `win` (periods.quarterly_windows()); one alert lists the items
    that need attention. `figures` feed its charts (review_charts()); `stale`: some figures had left
    GraphQL when it was made (markdown.expired())."""
    flagged = [line for section in sections.values() for line in _lines(section) if line.startswith(FLAGGED)]
    alerts = (
        [
            {
                "subject": f"quarterly review {win['label']}: {len(flagged)} item(s) need attention",
                "body": "\n".join(flagged),
                "severity": "warning",
            }
        ]
        if flagged
        else []
    )
    quarter = win["window"]
    return Report(
        "review",
        win["label"],
        f"PRISM Quarterly Review {win['label']}: {title}",
        (from_iso(quarter["start"]), from_iso(quarter["end"])),
        sections,
        {"quarter": win["quarter"], "flagged": flagged, "items": sum(len(_lines(v)) for v in sections.values())},
        alerts,
        lambda bodies: review_charts(bodies, figures or {}),
        expired=stale,
    )


def review_charts(bodies: dict[str, list[str]], figures: dict) -> list[dict]:
    """The checklist's items by outcome and the backup sets by status, from the lines the review shows
    (`bodies`: its sections' final lines, kept live sections included), and what the quarter's
    figures hold: Worker requests per month (`monthly_traffic`), PRISM's usage log per month
    (`usage_by_month`), security events by type (`security_events`)."""
    items = [line for lines in bodies.values() for line in lines]
    outcome = [
        ("done", sum(i.startswith("- [x]") for i in items)),
        ("needs attention", sum(i.startswith(FLAGGED) for i in items)),
        ("not done", sum(i.startswith("- [ ]") for i in items)),
    ]
    charts = [
        chart(
            "Checklist items",
            bar_chart(
                "Checklist items",
                outcome,
                "items",
                colors={"done": "#16a34a", "needs attention": "#dc2626", "not done": "#9ca3af"},
            ),
            outcome,
        )
    ]
    traffic = [(m["label"], m["requests"]) for m in figures.get("monthly_traffic") or [] if m.get("available")]
    if traffic:
        charts.append(
            chart("Worker requests per month", bar_chart("Worker requests per month", traffic, "requests"), traffic)
        )
    usage = [(m["month"], m["requests"]) for m in result_rows(figures.get("usage_by_month"))]
    if usage:
        charts.append(
            chart(
                "PRISM requests per month (usage log)",
                bar_chart("PRISM requests per month (usage log)", usage, "requests"),
                usage,
            )
        )
    events = [(r["type"], r["events"]) for r in result_rows(figures.get("security_events"))]
    if events:
        charts.append(chart("Security events by type", bar_chart("Security events by type", events, "events"), events))
    bars = [
        (status, int(n.replace(",", "")))
        for line in items
        if line.startswith(SETS_BY_STATUS)
        for status, _, n in (part.rpartition(" ") for part in line[len(SETS_BY_STATUS) :].split(", "))
    ]
    if bars:
        charts.append(
            chart(
                "Backup sets of the quarter by status",
                bar_chart(
                    "Backup sets of the quarter by status",
                    bars,
                    "sets",
                    colors={"verified": "#16a34a", "failed": "#dc2626"},
                ),
                bars,
            )
        )
    return charts


NPM_WHAT = "npm audit (the project's dependencies as they are now)"
SETS_WHAT = "the bucket's backup sets and the restore drill (as they are now)"


def npm_audit_item(npm: dict | None) -> str:
    if not npm:
        return checklist_item(None, "npm audit: skipped, no npm project configured (npm.project_dir in the config)")
    return checklist_item(
        npm["returncode"] == 0, f"npm audit: {code(' '.join(npm['command']))} exited {npm['returncode']}"
    )


def q1_items(
    cf: dict,
    thresholds: dict,
    inventory: dict | None,
    table_counts: dict | None,
    events: dict | None,
    npm: dict | None,
    capture: dict,
) -> dict[str, list[str] | Live]:
    """Q1: architecture review (resources.architecture() against the config: point-in-time, None when
    the run was too late to read it), the quarter's security events, npm audit."""
    rows = {r["table_name"]: r["row_count"] for r in result_rows(table_counts)}
    by_type = {r["type"]: r["events"] for r in result_rows(events)}
    failed, limit = by_type.get("failed_login", 0), 3 * thresholds["failed_logins_per_month"]
    architecture = None
    if inventory:
        vec, d1 = inventory["vectorize"], inventory["d1"]
        matches = (vec["dimensions"], vec["metric"]) == (cf["vectorize_dimensions"], cf["vectorize_metric"])
        architecture = [
            checklist_item(
                True,
                f"D1 {code(d1['name'])}: {number(d1['bytes'])} bytes, {number(d1['tables'])} tables; rows: "
                + (", ".join(f"{code(t)} {number(n)}" for t, n in rows.items()) or "not counted"),
            ),
            checklist_item(
                matches,
                f"Vectorize {code(cf['vectorize_index'])}: {number(vec['vectors'])} vectors, "
                f"{number(vec['dimensions'])} dimensions, {vec['metric']} (config: "
                f"{number(cf['vectorize_dimensions'])}, {cf['vectorize_metric']}); metadata indexes: "
                + (", ".join(code(m) for m in vec["metadata_indexes"]) or "none"),
            ),
            checklist_item(
                cf["kv_namespace"] in inventory["kv"],
                "KV namespaces: "
                + (", ".join(code(n) for n in inventory["kv"]) or "none")
                + f" (config: {code(cf['kv_namespace'])})",
            ),
            checklist_item(
                True,
                f"Worker {code(cf['worker_name'])}: {number(inventory['worker']['versions_in_quarter'])} versions "
                "in the quarter, latest deployment "
                + (
                    code(inventory["worker"]["latest_deployment"])
                    if inventory["worker"]["latest_deployment"]
                    else "none"
                ),
            ),
        ]
    return {
        "Architecture review": live("the resources and their row counts (as they are now)", capture, architecture),
        "Security audit": [
            checklist_item(
                failed <= limit,
                f"Failed logins in the quarter: {number(failed)} (threshold {number(limit)}: "
                f"3 x {number(thresholds['failed_logins_per_month'])} a month)",
            ),
            checklist_item(True, f"API-key abuse events: {number(by_type.get('api_key_abuse', 0))}"),
            checklist_item(
                True,
                f"401 unauthorized: {number(by_type.get('unauthorized', 0))}, 403 forbidden: "
                f"{number(by_type.get('forbidden', 0))}, 429 rate limited: {number(by_type.get('rate_limited', 0))}",
            ),
        ],
        "npm audit": live(NPM_WHAT, capture, [npm_audit_item(npm)]),
    }


def traffic_item(m: dict, t: dict) -> str:
    """A month's Worker traffic (traffic_in() with its label) against the p95 and error-rate targets."""
    if not m["available"]:
        return checklist_item(None, f"{m['label']}: traffic {m['note']}")
    p95 = m["wall_time_ms"].get("p95", 0)
    ok = p95 <= t["p95_latency_ms"] and m["error_rate_percent"] <= t["error_rate_percent"]
    return checklist_item(
        ok,
        f"{m['label']}: {number(m['requests'])} requests, error rate {percent(m['error_rate_percent'])}, "
        f"p95 {number(p95)} ms" + (f" ({m['note']})" if m["note"] else ""),
    )


def q2_items(
    cfg: dict, months: list[dict], slow: dict | None, cache: dict | None, usage: dict, capture: dict
) -> dict[str, list[str] | Live]:
    """Q2: traffic per month (traffic_in() results with their label) and slow queries of the quarter,
    the cache as it is (point-in-time), and the quarter's usage (analytics_windows.totals_in(): its
    last 30 days, all GraphQL keeps of D1/AI/KV) against the free tier."""
    t = cfg["thresholds"]
    perf = [traffic_item(m, t) for m in months]
    perf += [
        checklist_item(
            r["avg_duration_ms"] <= t["p95_latency_ms"],
            f"Slow query: {number(r['avg_duration_ms'], 1)} ms average over {number(r['runs'])} runs: {code(r['query'])}",
        )
        for r in result_rows(slow)[:5]
    ] or [checklist_item(True, "No queries logged in the quarter")]
    cache_lines = [
        checklist_item(
            r["hits_per_entry"] >= cfg["retention"]["cache_low_hit_count"],
            f"Cache {code(r['type'])}: {number(r['hits_per_entry'])} hits per entry over "
            f"{number(r['total_entries'])} entries",
        )
        for r in result_rows(cache)
    ] or [checklist_item(True, "The cache is empty")]
    if usage.get("available"):
        share = {n: 100 * usage["totals"][n] / usage["days"] / FREE_TIER_DAILY[n] for n in SCALING_RESOURCES}
        scaling = [
            checklist_item(
                share[n] < t["free_tier_usage_percent"],
                f"{n}: {number(round(usage['totals'][n] / usage['days']))} a day, {number(share[n], 1)}% of the "
                f"free tier's {number(FREE_TIER_DAILY[n])}",
            )
            for n in SCALING_RESOURCES
        ]
        scaling.append(
            f"- Window: {usage['window']['start']} to {usage['window']['end']}"
            + (f" ({usage['note']})" if usage["note"] else "")
        )
    else:
        scaling = [checklist_item(None, f"Usage of the quarter: {usage.get('note', 'not collected')}")]
    return {
        "Performance optimization": perf,
        "Cache effectiveness": live("the cache's hit counts (its entries as they are now)", capture, cache_lines),
        "Scaling review": scaling,
    }


def _set_status(entry: dict) -> str:
    if not entry["complete"]:
        return "incomplete (objects without a manifest: an interrupted backup)"
    return entry["status"] or "unverified"


def backup_inventory_items(inventory: dict | None) -> list[str]:
    """The quarter's sets (backups.inventory.backups_of_quarter()): each monthly set, the daily sets in
    one line, the months without a complete monthly set, and the sets by status (charted). Anything
    not complete and verified is flagged."""
    if not inventory:
        return [
            checklist_item(
                False, "Backup sets of the quarter: not listed (the inventory task did not finish; see its log)"
            )
        ]
    missing = inventory["missing_monthly"]
    lines = [
        checklist_item(
            not missing,
            "Months without a complete monthly set: " + ", ".join(missing)
            if missing
            else "Every month of the quarter has a complete monthly set",
        )
    ]
    lines += [
        checklist_item(s["status"] == "verified", f"monthly/{s['period']}: {_set_status(s)}")
        for s in inventory["monthly"]
    ]
    daily = inventory["daily"]
    unverified = [f"{s['period']} {_set_status(s)}" for s in daily if s["status"] != "verified"]
    text = f"Daily sets of the quarter: {len(daily)}" + (
        f" ({daily[0]['period']} to {daily[-1]['period']})" if daily else ""
    )
    lines.append(
        checklist_item(
            bool(daily) and not unverified,
            text
            + (
                "; not verified: " + "; ".join(unverified)
                if unverified
                else ", all complete and verified"
                if daily
                else ""
            ),
        )
    )
    by_status: dict[str, int] = {}
    for entry in daily + inventory["monthly"]:
        status = _set_status(entry).split(" ")[0]
        by_status[status] = by_status.get(status, 0) + 1
    if by_status:
        lines.append(SETS_BY_STATUS + ", ".join(f"{k} {number(n)}" for k, n in sorted(by_status.items())))
    return lines


def restore_drill_items(chosen: dict | None, drill: dict | None, dropped: list[str] | None) -> list[str]:
    """The restore drill: `chosen` the set it tested (None: it did not run; no cadence: there was no
    complete set), `drill` its result (None: it did not finish), `dropped` what the teardown deleted."""
    if chosen is None:
        return [checklist_item(None, "Restore drill: not run (Param run_restore_drill is off, or inside a backfill)")]
    if chosen["cadence"] is None:
        return [checklist_item(False, "Restore drill: no complete daily or monthly backup set in the bucket to test")]
    tested = f"{chosen['cadence']}/{chosen['period']}"
    if drill is None:
        lines = [
            checklist_item(False, f"Restore drill of {tested}: did not finish (no result recorded; see the task's log)")
        ]
    else:
        figures = [f"captured {drill['captured_at']}"]
        if drill.get("d1"):
            tables = drill["d1"]["tables"]
            figures.append(
                f"D1: {number(len(tables))} tables, {number(sum(tables.values()))} rows restored, quick_check "
                f"{number(drill['d1']['quick_check'])}, {number(drill['d1']['rows_sampled'])} sampled rows equal "
                "to the dump"
            )
        if drill.get("vectorize"):
            figures.append(
                f"Vectorize: {number(drill['vectorize']['vector_count'])} vectors restored, "
                f"{number(drill['vectorize']['vectors_sampled'])} sampled vectors compared"
            )
        if drill.get("kv_keys") is not None:
            figures.append(f"KV: {number(drill['kv_keys'])} keys in the set")
        verified = drill["status"] == "verified"
        lines = [
            checklist_item(
                verified,
                f"Restore drill of {tested}: {'verified' if verified else 'FAILED'} (recorded in its "
                f"manifest); " + "; ".join(figures),
            )
        ]
        lines += [f"  - problem: {p}" for p in drill["problems"]] + [f"  - note: {n}" for n in drill["notes"]]
    if dropped is None:
        lines.append(
            checklist_item(
                False, f"Scratch resources {chosen['scratch']}: the teardown did not finish; check for leftovers"
            )
        )
    else:
        lines.append(
            checklist_item(
                True,
                f"Scratch resources {chosen['scratch']}: none left"
                + (f" (the teardown deleted {', '.join(dropped)})" if dropped else ""),
            )
        )
    return lines


def q3_items(
    inventory: dict | None,
    chosen: dict | None,
    drill: dict | None,
    dropped: list[str] | None,
    npm: dict | None,
    capture: dict,
) -> dict[str, list[str] | Live]:
    """Q3: npm audit; the quarter's backup sets and the restore drill of the newest complete set (both
    point-in-time: what the bucket holds and how it restores when the run runs)."""
    return {
        "Dependency audit": live(NPM_WHAT, capture, [npm_audit_item(npm)]),
        "Backup testing": live(
            SETS_WHAT, capture, backup_inventory_items(inventory) + restore_drill_items(chosen, drill, dropped)
        ),
    }


def q4_items(
    limit_percent: float, usage_by_month: dict | None, traffic: list[dict], plan: dict
) -> dict[str, list[str]]:
    """Q4: the year's usage log and Worker traffic per month; capacity.monthly_growth()'s `plan`."""
    months = result_rows(usage_by_month)
    year = [
        checklist_item(
            True,
            f"{m['month']}: {number(m['requests'])} requests, {number(m['tokens_saved'])} tokens saved, "
            f"{number(m['neurons_used'])} neurons ({number(m['days'])} days logged)",
        )
        for m in months
    ] or [checklist_item(None, "No usage logged in the year")]
    year += [
        checklist_item(
            True,
            f"{t['label']} Worker traffic: {number(t['requests'])} requests, error rate "
            f"{percent(t['error_rate_percent'])}, p95 {number(t['wall_time_ms'].get('p95'))} ms"
            + (f" ({t['note']})" if t["note"] else ""),
        )
        if t["available"]
        else checklist_item(None, f"{t['label']} Worker traffic: {t['note']}")
        for t in traffic
    ]
    capacity = [
        checklist_item(
            p.get("percent_of_limit") is None or p["percent_of_limit"] < limit_percent,
            f"{name}: {number(p.get('daily'))} a day ({percent(p.get('percent_of_limit'))} of "
            f"{number(FREE_TIER_DAILY[name])}), growth {percent(p.get('growth_month_percent'))} a month, "
            f"limit reached: {p['reaches_limit']}",
        )
        for name, p in plan.items()
        if name != "months"
    ]
    capacity.append(
        f"- From PRISM's usage log ({number(len(plan['months']))} complete months: "
        f"{', '.join(plan['months']) or 'none'}); GraphQL keeps too little history for a year's trend."
    )
    return {"Yearly review": year, "Capacity planning": capacity}
