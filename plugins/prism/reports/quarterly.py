"""The quarterly review: each quarter's checklist, with figures, as one report.

Each `*_items` function turns what a quarter's tasks gathered into checklist sections; checklist()
makes them the review (reports.Report), with one alert for all the items that need attention.
Nothing here reads Cloudflare, S3 or the config; the tasks pass all of it in.
"""

from __future__ import annotations

from prism.monitoring.analytics_windows import FREE_TIER_DAILY
from prism.reports.charts import bar_chart
from prism.reports.markdown import Report, checklist_item, markdown, result_rows
from prism.reports.pages import chart
from prism.reports.periods import from_iso

# The daily limits the scaling review checks (KV deletes and lists stay out of it).
SCALING_RESOURCES = ("worker_requests", "ai_neurons", "d1_rows_read", "d1_rows_written", "kv_reads", "kv_writes")
FLAGGED = "- [!]"


def checklist(
    win: dict, title: str, sections: dict[str, list[str]], captured: dict, figures: dict | None = None
) -> Report:
    """The review of the quarter in `win` (calendar_windows.quarterly_windows()); one alert lists the
    items that need attention. `figures` feed its charts (review_charts())."""
    flagged = [line for lines in sections.values() for line in lines if line.startswith(FLAGGED)]
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
    quarter = win["previous_quarter"]
    text = markdown(
        f"PRISM Quarterly Review {win['label']}: {title}",
        (from_iso(quarter["start"]), from_iso(quarter["end"])),
        sections,
        captured=captured,
    )
    return Report(
        "review",
        win["label"],
        text,
        {"flagged": flagged, "items": sum(len(v) for v in sections.values())},
        alerts,
        review_charts(sections, figures or {}),
    )


def review_charts(sections: dict[str, list[str]], figures: dict) -> list[dict]:
    """The checklist's items by outcome, and what the quarter's figures hold: Worker requests per
    month (`monthly_traffic`), PRISM's usage log per month (`usage_by_month`), security events by type
    (`security_events`), backup sets by status (`backups`)."""
    items = [line for lines in sections.values() for line in lines]
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
    backups = figures.get("backups")
    if backups:
        sets = backups.get("daily", []) + backups.get("monthly", [])
        by_status: dict[str, int] = {}
        for entry in sets:
            by_status[_set_status(entry).split(" ")[0]] = by_status.get(_set_status(entry).split(" ")[0], 0) + 1
        bars = sorted(by_status.items())
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


def npm_audit_item(npm: dict | None) -> str:
    if not npm:
        return checklist_item(None, "npm audit: skipped, no npm project configured (npm.project_dir in the config)")
    return checklist_item(npm["returncode"] == 0, f"npm audit: `{' '.join(npm['command'])}` exited {npm['returncode']}")


def q1_items(
    cf: dict, thresholds: dict, inventory: dict, table_counts: dict | None, events: dict | None, npm: dict | None
) -> dict[str, list[str]]:
    """Q1: architecture review (resource_inventory.architecture() against the config) and security audit."""
    rows = {r["table_name"]: r["row_count"] for r in result_rows(table_counts)}
    by_type = {r["type"]: r["events"] for r in result_rows(events)}
    failed, limit = by_type.get("failed_login", 0), 3 * thresholds["failed_logins_per_month"]
    vec = inventory["vectorize"]
    matches = (vec["dimensions"], vec["metric"]) == (cf["vectorize_dimensions"], cf["vectorize_metric"])
    return {
        "Architecture review": [
            checklist_item(
                True,
                f"D1 {inventory['d1']['name']}: {inventory['d1']['bytes']:,} bytes, {inventory['d1']['tables']} "
                "tables; rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()),
            ),
            checklist_item(
                matches,
                f"Vectorize {cf['vectorize_index']}: {vec['vectors']:,} vectors, {vec['dimensions']} dimensions, "
                f"{vec['metric']} (config: {cf['vectorize_dimensions']}, {cf['vectorize_metric']}); metadata indexes "
                f"{vec['metadata_indexes']}",
            ),
            checklist_item(
                cf["kv_namespace"] in inventory["kv"],
                f"KV namespaces: {inventory['kv']} (config: {cf['kv_namespace']})",
            ),
            checklist_item(
                True,
                f"Worker {cf['worker_name']}: {inventory['worker']['versions_in_quarter']} versions in the quarter, "
                f"latest deployment {inventory['worker']['latest_deployment']}",
            ),
        ],
        "Security audit": [
            checklist_item(
                failed <= limit,
                f"Failed logins in the quarter: {failed} (threshold {limit}: "
                f"3 x {thresholds['failed_logins_per_month']} a month)",
            ),
            checklist_item(True, f"API-key abuse events: {by_type.get('api_key_abuse', 0)}"),
            checklist_item(
                True,
                f"401 unauthorized: {by_type.get('unauthorized', 0)}, 403 forbidden: {by_type.get('forbidden', 0)}, "
                f"429 rate limited: {by_type.get('rate_limited', 0)}",
            ),
            npm_audit_item(npm),
        ],
    }


def q2_items(cfg: dict, months: list[dict], slow: dict | None, cache: dict | None, usage: dict) -> dict[str, list[str]]:
    """Q2: traffic per month (traffic_in() results with their label), slow queries and cache; the
    last 30 days' usage (analytics_windows.totals_in()) against the free tier."""
    t = cfg["thresholds"]
    perf = []
    for m in months:
        if not m["available"]:
            perf.append(checklist_item(None, f"{m['label']}: traffic {m['note']}"))
            continue
        p95 = m["wall_time_ms"].get("p95", 0)
        ok = p95 <= t["p95_latency_ms"] and m["error_rate_percent"] <= t["error_rate_percent"]
        perf.append(
            checklist_item(
                ok,
                f"{m['label']}: {m['requests']:,} requests, error rate {m['error_rate_percent']}%, p95 {p95} ms"
                + (f" ({m['note']})" if m["note"] else ""),
            )
        )
    perf += [
        checklist_item(
            r["avg_duration_ms"] <= t["p95_latency_ms"],
            f"Slow query: {r['avg_duration_ms']:.1f} ms average over {r['runs']} runs: `{r['query']}`",
        )
        for r in result_rows(slow)[:5]
    ] or [checklist_item(True, "No queries logged in the quarter")]
    perf += [
        checklist_item(
            r["hits_per_entry"] >= cfg["retention"]["cache_low_hit_count"],
            f"Cache {r['type']}: {r['hits_per_entry']:.2f} hits per entry over {r['total_entries']} entries",
        )
        for r in result_rows(cache)
    ]
    if usage.get("available"):
        percent = {n: 100 * usage["totals"][n] / usage["days"] / FREE_TIER_DAILY[n] for n in SCALING_RESOURCES}
        scaling = [
            checklist_item(
                percent[n] < t["free_tier_usage_percent"],
                f"{n}: {usage['totals'][n] / usage['days']:,.0f} a day, {percent[n]:.1f}% of the free tier's "
                f"{FREE_TIER_DAILY[n]:,}",
            )
            for n in SCALING_RESOURCES
        ]
        scaling.append(
            f"- Window: {usage['window']['start']} to {usage['window']['end']}"
            + (f" ({usage['note']})" if usage["note"] else "")
        )
    else:
        scaling = [checklist_item(None, f"Usage of the last 30 days: {usage.get('note', 'not collected')}")]
    return {"Performance optimization": perf, "Scaling review": scaling}


def _set_status(entry: dict) -> str:
    if not entry["complete"]:
        return "incomplete (objects without a manifest: an interrupted backup)"
    return entry["status"] or "unverified"


def backup_inventory_items(inventory: dict | None) -> list[str]:
    """The quarter's sets (backup_inventory.quarter_sets()): each monthly set, the daily sets in one
    line, the months without a complete monthly set. Anything not complete and verified is flagged."""
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
                f"D1: {len(tables)} tables, {sum(tables.values()):,} rows restored, quick_check "
                f"{', '.join(drill['d1']['quick_check'])}, {drill['d1']['rows_sampled']} sampled rows equal to the dump"
            )
        if drill.get("vectorize"):
            figures.append(
                f"Vectorize: {drill['vectorize']['vector_count']:,} vectors restored, "
                f"{drill['vectorize']['vectors_sampled']} sampled vectors compared"
            )
        if drill.get("kv_keys") is not None:
            figures.append(f"KV: {drill['kv_keys']:,} keys in the set")
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
    inventory: dict | None, chosen: dict | None, drill: dict | None, dropped: list[str] | None, npm: dict | None
) -> dict[str, list[str]]:
    """Q3: npm audit; the quarter's backup sets and the restore drill of the newest complete set."""
    return {
        "Dependency audit": [npm_audit_item(npm)],
        "Backup testing": backup_inventory_items(inventory) + restore_drill_items(chosen, drill, dropped),
    }


def q4_items(
    limit_percent: float, usage_by_month: dict | None, traffic: list[dict], plan: dict
) -> dict[str, list[str]]:
    """Q4: the year's usage log and Worker traffic per month; capacity.monthly_growth()'s `plan`."""
    months = result_rows(usage_by_month)
    year = [
        checklist_item(
            True,
            f"{m['month']}: {m['requests']:,} requests, {m['tokens_saved']:,} tokens saved, "
            f"{m['neurons_used']:,} neurons ({m['days']} days logged)",
        )
        for m in months
    ] or [checklist_item(None, "No usage logged in the year")]
    year += [
        checklist_item(
            True,
            f"{t['label']} Worker traffic: {t['requests']:,} requests, error rate {t['error_rate_percent']}%, "
            f"p95 {t['wall_time_ms'].get('p95')} ms" + (f" ({t['note']})" if t["note"] else ""),
        )
        if t["available"]
        else checklist_item(None, f"{t['label']} Worker traffic: {t['note']}")
        for t in traffic
    ]
    capacity = [
        checklist_item(
            p.get("percent_of_limit") is None or p["percent_of_limit"] < limit_percent,
            f"{name}: {p.get('daily')} a day ({p.get('percent_of_limit')}% of {FREE_TIER_DAILY[name]:,}), growth "
            f"{p.get('growth_month_percent')}% a month, limit reached: {p['reaches_limit']}",
        )
        for name, p in plan.items()
        if name != "months"
    ]
    capacity.append(
        f"- From PRISM's usage log ({len(plan['months'])} complete months: {', '.join(plan['months'])}); "
        "GraphQL keeps too little history for a year's trend."
    )
    return {"Yearly review": year, "Capacity planning": capacity}
