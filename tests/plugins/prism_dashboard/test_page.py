"""The dashboard page from given figures: every section, values escaped, nothing fetched."""

from __future__ import annotations

from prism_dashboard.page import render

USAGE = {
    "window": {"start": "2026-11-28T18:00:00Z", "end": "2026-11-29T18:00:00Z"}, "captured_at": "2026-11-29T18:00:05+00:00",
    "requests": {"total": 6590, "errors": 16, "success_rate": 99.757, "error_rate": 0.243},
    "performance": {"p50_latency_ms": 163.6, "p95_latency_ms": 409.7, "p99_latency_ms": 639.5},
    "cache": {"hits": 4173, "misses": 2417, "hit_rate": 63.32, "entries": 300, "size_bytes": 1_200_000, "evictions": 67},
    "tokens": {"saved": 1_752_660, "cost_saved_usd": 17.53},
    "d1": {"name": "claudes-friend-db", "file_size": 917_504, "num_tables": 14}, "vectorize": {"vectors": 615, "dimensions": 384},
    "limits": [{"name": "ai_neurons", "label": "Workers AI neurons", "counted": "per day", "used": 1907, "free_limit": 10000,
                "free_percent": 19.07, "paid_limit": None, "paid_percent": None}],
    "hourly": [{"hour": "2026-11-29T16:00:00Z", "requests": 400, "errors": 1, "p95_ms": 410.0},
               {"hour": "2026-11-29T17:00:00Z", "requests": 420, "errors": 2, "p95_ms": 420.0}],
    "api_budget": {"limit": 1200, "remaining": 866, "used": 334, "window_seconds": 300, "rate_limited_responses": 0,
                   "observed_at": "2026-11-29T18:00:04+00:00"},
}


def data(**over) -> dict:
    base = {"now": "2026-11-29T18:30:00+00:00", "usage": USAGE, "usage_run": "r5",
            "health": [{"run_id": "r4", "at": "2026-11-29T18:20:00+00:00", "state": "failed", "status": "unhealthy", "checks": {},
                        "crossed": []},
                       {"run_id": "r5", "at": "2026-11-29T18:25:00+00:00", "state": "success", "status": "healthy",
                        "checks": {"d1": {"ok": True, "ms": 6.0, "detail": "SELECT 1 ok"}}, "crossed": []}],
            "backups": {"daily": {"last_verified": {"period": "20261129", "captured_at": "2026-11-29T09:10:00+00:00", "bytes": 2_400_000,
                                                    "status": "verified", "method": "test restore", "at": "x"},
                                  "latest": None}},
            "reports": [{"title": "PRISM Capacity Planning - 2026-11-28", "key": "reports/prism_monthly/202611/capacity.md",
                         "html": True, "dag_id": "prism_monthly", "at": "2026-11-28T03:10:00+00:00"}],
            "alerts": [{"severity": "error", "at": "2026-11-29T18:20:05+00:00", "subject": "check_resources failed <b>",
                        "body": "Diagnosis: high error rate", "investigations": ["high_error_rate"]}]}
    base["backups"]["daily"]["latest"] = base["backups"]["daily"]["last_verified"]
    base["latest_health"] = base["health"][-1]
    return {**base, **over}


def test_every_section_with_its_figures():
    html = render(data())
    assert 'data-testid="health-status"><span class="badge healthy">healthy</span>' in html
    assert 'data-testid="health-runs">2<' in html and 'data-testid="health-failed">1<' in html
    assert 'data-testid="requests-total">6,590<' in html and 'data-testid="p95">409.7 ms<' in html
    assert "Workers AI neurons" in html and "19.1%" in html and "no limit" in html
    assert 'data-testid="cache-hit-rate">63.32%<' in html and 'data-testid="cost-saved">$17.53<' in html
    assert 'data-testid="rpo-daily">9.3 h<' in html and "2.4 MB" in html
    assert 'data-testid="api-budget">334 / 1,200<' in html
    assert 'href="reports/reports/prism_monthly/202611/capacity.md"' in html and 'capacity.html"' in html
    assert "check_resources failed &lt;b&gt;" in html and "<b>" not in html.split("check_resources failed")[1][:10]
    assert "src=" not in html and 'href="http' not in html and "<script" not in html  # nothing fetched from elsewhere


def test_an_empty_dashboard_says_what_is_missing():
    html = render(data(usage=None, health=[], latest_health=None, backups={}, reports=[], alerts=[]))
    assert "No usage recorded yet." in html and "No backup verified yet." in html and "No report published yet." in html
    assert 'data-testid="health-status"><span class="badge none">none</span>' in html
