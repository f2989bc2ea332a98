"""The dashboard page: data.dashboard()'s figures as one HTML page with inline SVG charts (pure: no
I/O, every value escaped)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import quote

from prism_cloudflare.plan_limits import API_REQUESTS_PER_WINDOW
from prism_cloudflare.svg_charts import line_chart, status_strip

STYLE = """
:root{color-scheme:light}body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:1rem 1.25rem;
color:#111827;background:#f9fafb}h1{font-size:1.35rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:0 0 .6rem}
.sub{color:#6b7280;font-size:.85rem;margin-bottom:1rem}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:.9rem 1rem}.kpis{display:flex;flex-wrap:wrap;gap:1.2rem;margin-bottom:.6rem}
.kpi b{display:block;font-size:1.35rem}.kpi>span{color:#6b7280;font-size:.78rem}table{border-collapse:collapse;width:100%;font-size:.85rem}
td,th{border-bottom:1px solid #f3f4f6;padding:.3rem .4rem;text-align:left}.detail{overflow-wrap:anywhere}th{color:#6b7280;font-weight:600}
.badge{display:inline-block;border-radius:999px;padding:.1rem .6rem;font-weight:600;font-size:.85rem;color:#fff}
.healthy,.verified,.ok{background:#16a34a}.degraded,.warning{background:#d97706}.unhealthy,.failed,.error{background:#dc2626}
.none,.checksummed{background:#9ca3af}.bar{background:#e5e7eb;border-radius:4px;height:8px;min-width:80px}
.bar i{display:block;height:8px;border-radius:4px;background:#2563eb}.bar i.hot{background:#dc2626}
details pre{white-space:pre-wrap;font-size:.78rem;background:#f3f4f6;padding:.5rem;border-radius:4px}
.muted{color:#6b7280}a{color:#1d4ed8}.wide{grid-column:span 2}@media (max-width:960px){.wide{grid-column:auto}}
.kpi .badge{font-size:1rem;padding:.15rem .8rem}
"""


def _n(v, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{v:,.0f}" if isinstance(v, (int, float)) else escape(str(v))


def _bytes(v) -> str:
    if v is None:
        return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if v < 1000 or unit == "GB":
            return f"{v:,.1f} {unit}" if unit != "B" else f"{v:,} B"
        v /= 1000
    return str(v)


def _age(since: str | None, now: datetime) -> str:
    if not since:
        return "n/a"
    seconds = (now - datetime.fromisoformat(since)).total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _badge(state: str) -> str:
    return f'<span class="badge {escape(state)}">{escape(state)}</span>'


def _bar(percent: float | None) -> str:
    if percent is None:
        return ""
    return f'<div class="bar" title="{percent}%"><i class="{"hot" if percent >= 80 else ""}" style="width:{min(percent, 100):.1f}%"></i></div>'


def _kpi(value: str, label: str, test_id: str) -> str:
    return f'<div class="kpi"><b data-testid="{test_id}">{value}</b><span>{escape(label)}</span></div>'


def health_card(data: dict) -> str:
    history, latest = data["health"], data["latest_health"]
    status = latest["status"] if latest else "none"
    failed = sum(h["status"] == "unhealthy" for h in history)
    checks = "".join(f"<tr><td>{escape(name)}</td><td>{_badge('ok' if c['ok'] else 'failed')}</td><td>{c['ms']:.0f} ms</td>"
                     f"<td class='muted detail'>{escape(str(c['detail']))[:140]}</td></tr>" for name, c in (latest or {}).get("checks", {}).items())
    strip = status_strip("Health over the last 24 hours (one mark a run, oldest first)",
                         [(h["status"], f"{h['at']}: {h['status']}" + (f" ({', '.join(h['crossed'])})" if h["crossed"] else ""))
                          for h in history])
    return (f'<section class="card" id="health"><h2>Health status</h2><div class="kpis">'
            + _kpi(_badge(status), "now" + (f" (checked {latest['at']})" if latest else ""), "health-status")
            + _kpi(str(len(history)), "checks in 24 h", "health-runs") + _kpi(str(failed), "failed", "health-failed")
            + f"</div>{strip}<table><tr><th>check</th><th>result</th><th>time</th><th>detail</th></tr>{checks}</table></section>")


def requests_card(usage: dict | None) -> str:
    if not usage:
        return '<section class="card" id="requests"><h2>Requests</h2><p class="muted">No usage recorded yet.</p></section>'
    req, perf, hourly = usage["requests"], usage["performance"], usage.get("hourly") or []
    times = [(datetime.fromisoformat(h["hour"].replace("Z", "+00:00")), h) for h in hourly]
    chart = line_chart("P95 latency per hour (ms)", {"p95": [(t, h["p95_ms"]) for t, h in times]}, "ms")
    volume = line_chart("Requests and errors per hour", {"requests": [(t, h["requests"]) for t, h in times],
                                                         "errors": [(t, h["errors"]) for t, h in times]}, "per hour")
    return ('<section class="card" id="requests"><h2>Requests (last 24 h)</h2><div class="kpis">'
            + _kpi(_n(req["total"]), "requests", "requests-total") + _kpi(f"{req['success_rate']}%", "success rate", "success-rate")
            + _kpi(f"{req['error_rate']}%", "error rate", "error-rate") + _kpi(f"{perf['p95_latency_ms']} ms", "p95 latency", "p95")
            + _kpi(f"{perf['p50_latency_ms']} / {perf['p99_latency_ms']} ms", "p50 / p99", "p50-p99")
            + f"</div>{chart}{volume}<p class=muted>Window {escape(usage['window']['start'])} to {escape(usage['window']['end'])} "
            f"(the Worker's /metrics), captured {escape(usage['captured_at'])}.</p></section>")


def resources_card(usage: dict | None) -> str:
    if not usage:
        return ""
    rows = "".join(
        f"<tr data-resource=\"{escape(r['name'])}\"><td>{escape(r['label'])}</td><td class=muted>{escape(r['counted'])}</td>"
        f"<td>{_bytes(r['used']) if r['name'].endswith('bytes') else _n(r['used'])}</td>"
        f"<td>{_bytes(r['free_limit']) if r['name'].endswith('bytes') else _n(r['free_limit'])}</td>"
        f"<td>{_n(r['free_percent'], 1) if r['free_percent'] is not None else 'n/a'}%{_bar(r['free_percent'])}</td>"
        f"<td>{(_bytes(r['paid_limit']) if r['name'].endswith('bytes') else _n(r['paid_limit'])) if r['paid_limit'] else 'no limit'}</td>"
        f"<td>{(_n(r['paid_percent'], 2) + '%') if r['paid_percent'] is not None else ''}</td></tr>" for r in usage["limits"])
    d1, vec = usage["d1"], usage["vectorize"]
    return ('<section class="card wide" id="resources"><h2>Resource usage against the plan limits</h2>'
            "<table><tr><th>resource</th><th>counted</th><th>used</th><th>free tier</th><th>% of free tier</th>"
            f"<th>Workers Paid includes</th><th>% of paid</th></tr>{rows}</table>"
            f"<p class=muted>D1 {escape(str(d1['name']))}: {d1['num_tables']} tables, {_bytes(d1['file_size'])}. Vectorize: "
            f"{_n(vec['vectors'])} vectors of {vec['dimensions']} dimensions. Paid amounts per day are the monthly allowance / 30.44.</p></section>")


def cache_tokens_card(usage: dict | None) -> str:
    if not usage:
        return ""
    cache, tokens = usage["cache"], usage["tokens"]
    return ('<section class="card" id="cache"><h2>Cache performance and token savings (last 24 h)</h2><div class="kpis">'
            + _kpi(f"{cache['hit_rate']}%", "cache hit rate", "cache-hit-rate")
            + _kpi(_n(cache["entries"]), "entries", "cache-entries") + _kpi(_bytes(cache["size_bytes"]), "cache size", "cache-size")
            + _kpi(_n(cache["evictions"]), "evictions", "cache-evictions")
            + "</div><div class=\"kpis\">" + _kpi(_n(tokens["saved"]), "tokens saved", "tokens-saved")
            + _kpi(f"${tokens['cost_saved_usd']:,.2f}", "cost saved", "cost-saved")
            + f"</div><p class=muted>{_n(cache['hits'])} hits, {_n(cache['misses'])} misses.</p></section>")


def budget_card(usage: dict | None) -> str:
    budget = (usage or {}).get("api_budget")
    if not budget:
        return ('<section class="card" id="budget"><h2>Cloudflare API budget</h2><p class="muted">Not observed yet.</p></section>')
    percent = round(100 * budget["used"] / (budget["limit"] or API_REQUESTS_PER_WINDOW), 1)
    return ('<section class="card" id="budget"><h2>Cloudflare API budget</h2><div class="kpis">'
            + _kpi(f"{_n(budget['used'])} / {_n(budget['limit'])}", f"requests used in the current {budget['window_seconds'] // 60}-minute window",
                   "api-budget")
            + _kpi(_n(budget["remaining"]), "remaining", "api-remaining") + _kpi(str(budget["rate_limited_responses"]), "429s seen", "api-429")
            + f"</div>{_bar(percent)}<p class=muted>As Cloudflare's x-ratelimit headers said at {escape(str(budget['observed_at']))}; "
            "the whole account shares 1,200 requests per 5 minutes. Viewing this page spends none of it.</p></section>")


def backups_card(backups: dict, now: datetime) -> str:
    rows = []
    for cadence, entry in backups.items():
        last, latest = entry["last_verified"], entry["latest"]
        if last:
            rows.append(f"<tr data-cadence=\"{cadence}\"><td>{cadence}</td><td>{escape(last['period'])}</td>"
                        f"<td>{escape(last['captured_at'])}</td><td data-testid=\"rpo-{cadence}\">{_age(last['captured_at'], now)}</td>"
                        f"<td>{_bytes(last['bytes'])}</td><td>{_badge(last['status'])} <span class=muted>{escape(last['method'])}</span></td></tr>")
        else:
            rows.append(f"<tr data-cadence=\"{cadence}\"><td>{cadence}</td><td colspan=4>no verified set</td><td></td></tr>")
        if latest is not last and latest["status"] != "verified":
            rows.append(f"<tr><td></td><td>{escape(latest['period'])}</td><td>{escape(latest['captured_at'])}</td><td></td>"
                        f"<td>{_bytes(latest['bytes'])}</td><td>{_badge(latest['status'])} latest attempt: "
                        f"{escape('; '.join(latest.get('problems') or []))[:200]}</td></tr>")
    body = ("<table><tr><th>cadence</th><th>last verified set</th><th>captured</th><th>age (RPO)</th><th>size</th><th>verification</th></tr>"
            + "".join(rows) + "</table>") if rows else '<p class="muted">No backup verified yet.</p>'
    return f'<section class="card wide" id="backups"><h2>Backups</h2>{body}</section>'


def reports_card(reports: list[dict]) -> str:
    def link(key: str, label: str) -> str:
        return f'<a href="reports/{quote(key)}" target="_blank" rel="noopener">{label}</a>'

    rows = "".join(f"<tr><td>{escape(r['title'])}</td><td class=muted>{escape(r['dag_id'])}</td><td class=muted>{escape(r['at'])}</td>"
                   f"<td>{link(r['key'], 'Markdown')}" + (f" · {link(r['key'][:-3] + '.html', 'HTML')}" if r.get("html") else "")
                   + "</td></tr>" for r in reports)
    body = f"<table><tr><th>report</th><th>DAG</th><th>published</th><th></th></tr>{rows}</table>" if reports else \
        '<p class="muted">No report published yet.</p>'
    return f'<section class="card wide" id="reports"><h2>Reports</h2>{body}</section>'


def alerts_card(alerts: list[dict]) -> str:
    items = "".join(f"<details><summary>{_badge(a['severity'])} {escape(a['at'])} {escape(a['subject'])}"
                    + (f" <span class=muted>(diagnosis: {escape(', '.join(a['investigations']))})</span>" if a.get("investigations") else "")
                    + f"</summary><pre>{escape(a.get('body') or '')}</pre></details>" for a in alerts)
    return f'<section class="card" id="alerts"><h2>Recent alerts (7 days)</h2>{items or "<p class=muted>None.</p>"}</section>'


def render(data: dict) -> str:
    now = datetime.fromisoformat(data["now"])
    usage = data["usage"]
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"60\">"
            f"<title>PRISM dashboard</title><style>{STYLE}</style></head><body><h1>PRISM dashboard</h1>"
            f"<div class=\"sub\">As the PRISM DAGs recorded it, read from Airflow's metadata DB at {escape(data['now'])}; "
            "this page never calls Cloudflare. It refreshes every minute.</div><div class=\"grid\">"
            + health_card(data) + requests_card(usage) + budget_card(usage) + resources_card(usage) + cache_tokens_card(usage)
            + backups_card(data["backups"], now) + alerts_card(data["alerts"]) + reports_card(data["reports"])
            + "</div></body></html>")
