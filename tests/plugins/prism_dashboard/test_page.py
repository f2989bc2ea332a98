"""The dashboard page from given figures: every section, values escaped, nothing fetched."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from prism_dashboard.page import render

USAGE = {
    "window": {"start": "2026-11-28T18:00:00Z", "end": "2026-11-29T18:00:00Z"},
    "captured_at": "2026-11-29T18:00:05+00:00",
    "requests": {"total": 6590, "errors": 16, "success_rate": 99.757, "error_rate": 0.243},
    "performance": {"p50_latency_ms": 163.6, "p95_latency_ms": 409.7, "p99_latency_ms": 639.5},
    "cache": {
        "hits": 4173,
        "misses": 2417,
        "hit_rate": 63.32,
        "entries": 300,
        "size_bytes": 1_200_000,
        "evictions": 67,
    },
    "tokens": {"saved": 1_752_660, "cost_saved_usd": 17.53},
    "d1": {"name": "claudes-friend-db", "file_size": 917_504, "num_tables": 14},
    "vectorize": {"vectors": 615, "dimensions": 384},
    "limits": [
        {
            "name": "ai_neurons",
            "label": "Workers AI neurons",
            "counted": "per day",
            "used": 1907,
            "free_limit": 10000,
            "free_percent": 19.07,
            "paid_limit": None,
            "paid_percent": None,
        }
    ],
    "hourly": [
        {"hour": "2026-11-29T16:00:00Z", "requests": 400, "errors": 1, "p95_ms": 410.0},
        {"hour": "2026-11-29T17:00:00Z", "requests": 420, "errors": 2, "p95_ms": 420.0},
    ],
    "api_budget": {
        "limit": 1200,
        "remaining": 866,
        "used": 334,
        "window_seconds": 300,
        "rate_limited_responses": 0,
        "observed_at": "2026-11-29T18:00:04+00:00",
    },
}


def data(**over) -> dict:
    base = {
        "now": "2026-11-29T18:30:00+00:00",
        "usage": USAGE,
        "usage_run": "r5",
        "health": [
            {
                "run_id": "r4",
                "at": "2026-11-29T18:20:00+00:00",
                "state": "failed",
                "status": "unhealthy",
                "checks": {},
                "crossed": [],
            },
            {
                "run_id": "r5",
                "at": "2026-11-29T18:25:00+00:00",
                "state": "success",
                "status": "healthy",
                "checks": {"d1": {"ok": True, "ms": 6.0, "detail": "SELECT 1 ok"}},
                "crossed": [],
            },
        ],
        "backups": {
            "daily": {
                "last_verified": {
                    "period": "20261129",
                    "captured_at": "2026-11-29T09:10:00+00:00",
                    "bytes": 2_400_000,
                    "status": "verified",
                    "method": "test restore",
                    "at": "x",
                },
                "latest": None,
            }
        },
        "reports": [
            {
                "title": "PRISM Capacity Planning - 2026-11-28",
                "key": "reports/prism_monthly/202611/capacity.md",
                "html": True,
                "dag_id": "prism_monthly",
                "at": "2026-11-28T03:10:00+00:00",
            }
        ],
        "alerts": [
            {
                "severity": "error",
                "at": "2026-11-29T18:20:05+00:00",
                "subject": "check_resources failed <b>",
                "body": "Diagnosis: high error rate",
                "investigations": ["high_error_rate"],
            }
        ],
    }
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


# ---- hostile values: every field a record can carry, shown as text -------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import ALL, HOSTILE, LONG, assert_inert, text_of  # noqa: E402


@pytest.mark.parametrize(
    "section,field",
    [
        ("requests", "success_rate"),
        ("requests", "error_rate"),
        ("requests", "total"),
        ("performance", "p50_latency_ms"),
        ("performance", "p95_latency_ms"),
        ("performance", "p99_latency_ms"),
        ("cache", "hit_rate"),
        ("cache", "entries"),
        ("cache", "size_bytes"),
        ("tokens", "cost_saved_usd"),
        ("tokens", "saved"),
    ],
)
@pytest.mark.parametrize("name", ["script", "attr", "style"])
def test_a_worker_metric_that_is_markup_is_shown_as_text(section, field, name):
    """The Found of issue 11: a /metrics "number" that is a string reached the page as markup."""
    usage = json.loads(json.dumps(USAGE))
    usage[section][field] = HOSTILE[name]
    html = render(data(usage=usage))
    doc = assert_inert(html)
    assert HOSTILE[name] in text_of(doc)


def _hostile_data() -> dict:
    h = ALL
    usage = {
        "window": {"start": h, "end": HOSTILE["js_url"]},
        "captured_at": HOSTILE["cdata"],
        "requests": {"total": h, "errors": h, "success_rate": HOSTILE["script"], "error_rate": HOSTILE["attr"]},
        "performance": {
            "p50_latency_ms": HOSTILE["style"],
            "p95_latency_ms": HOSTILE["single"],
            "p99_latency_ms": LONG,
        },
        "cache": {"hits": h, "misses": h, "hit_rate": HOSTILE["script"], "entries": h, "size_bytes": h, "evictions": h},
        "tokens": {"saved": h, "cost_saved_usd": HOSTILE["attr"]},
        "d1": {"name": h, "file_size": h, "num_tables": h},
        "vectorize": {"vectors": h, "dimensions": h},
        "limits": [
            {
                "name": h,
                "label": h,
                "counted": h,
                "used": h,
                "free_limit": h,
                "free_percent": h,
                "paid_limit": h,
                "paid_percent": h,
            },
            {
                "name": h + "bytes",
                "label": LONG,
                "counted": h,
                "used": h,
                "free_limit": h,
                "free_percent": None,
                "paid_limit": None,
                "paid_percent": None,
            },
        ],
        "hourly": [
            {"hour": h, "requests": h, "errors": h, "p95_ms": h},
            {"hour": "2026-11-29T16:00:00Z", "requests": h, "errors": 1, "p95_ms": 410.0},
            {"hour": "2026-11-29T17:00:00Z", "requests": 420, "errors": 2, "p95_ms": h},
        ],
        "api_budget": {
            "limit": h,
            "remaining": h,
            "used": h,
            "window_seconds": h,
            "rate_limited_responses": h,
            "observed_at": h,
        },
    }
    verified = {"period": h, "captured_at": h, "bytes": h, "status": "verified", "method": h, "at": "x"}
    failed = {
        "period": HOSTILE["attr"],
        "captured_at": "2026-11-29T09:10:00+00:00",
        "bytes": h,
        "status": h,
        "method": h,
        "at": "y",
        "problems": [HOSTILE["script"], HOSTILE["style"], LONG],
    }
    health = [{"run_id": h, "at": h, "state": h, "status": h, "checks": {}, "crossed": [h, HOSTILE["script"]]}]
    return {
        "now": "2026-11-29T18:30:00+00:00",
        "usage": usage,
        "usage_run": h,
        "health": health,
        "latest_health": {
            "status": h,
            "at": h,
            "checks": {
                h: {"ok": False, "ms": h, "detail": HOSTILE["script"] + LONG},
                HOSTILE["attr"]: {"ok": True, "ms": 6.0, "detail": h},
            },
        },
        "backups": {
            h: {"last_verified": verified, "latest": failed},
            "daily": {"last_verified": None, "latest": failed},
        },
        "reports": [
            {"title": h, "key": "reports/" + h + ".md", "html": True, "dag_id": h, "at": h},
            {"title": LONG, "key": HOSTILE["js_url"], "html": True, "dag_id": HOSTILE["attr"], "at": h},
        ],
        "alerts": [
            {"severity": h, "at": h, "subject": h, "body": h + "\n" + LONG, "investigations": [h, HOSTILE["style"]]}
        ],
    }


def test_hostile_strings_in_every_field_are_inert_text():
    html = render(_hostile_data())
    doc = assert_inert(html)
    text = text_of(doc)
    for name, value in HOSTILE.items():
        assert value in text, name  # shown as itself: escaped once, never dropped or doubled
    assert "49" not in text  # a template expression in data is never evaluated
    # Links come only from the template: relative, under reports/, the key percent-encoded.
    hrefs = [a["href"] for t, a in doc.tags if t == "a"]
    assert hrefs and all(h.startswith("reports/") and ":" not in h and '"' not in h and "<" not in h for h in hrefs), (
        hrefs
    )
    # A state that is not one of the page's own becomes the neutral badge: data picks no class.
    classes = {c for t, a in doc.tags for c in a.get("class", "").split()}
    assert classes <= {
        "kpi",
        "kpis",
        "badge",
        "card",
        "wide",
        "grid",
        "sub",
        "muted",
        "detail",
        "bar",
        "hot",
        "healthy",
        "verified",
        "ok",
        "degraded",
        "warning",
        "unhealthy",
        "failed",
        "error",
        "none",
        "checksummed",
    }, classes
    # Attribute values from data stay inside their quotes.
    assert [a.get("data-resource") for t, a in doc.tags if t == "tr" and "data-resource" in a][0] == ALL
    assert [a.get("data-cadence") for t, a in doc.tags if t == "tr" and "data-cadence" in a][0] == ALL


def test_numbers_that_are_strings_do_not_break_the_page():
    """A Worker answering text where numbers belong still gets a page (its figures as text), never a 500."""
    usage = json.loads(json.dumps(USAGE))
    for section, field in [("requests", "total"), ("cache", "size_bytes"), ("tokens", "cost_saved_usd")]:
        usage[section][field] = "12abc"
    usage["api_budget"]["window_seconds"] = "300s"
    usage["hourly"][0]["p95_ms"] = "fast"
    html = render(data(usage=usage))
    assert 'data-testid="requests-total">12abc<' in html and 'data-testid="cost-saved">$12abc<' in html
    assert "300s window" in html and 'data-testid="p95">409.7 ms<' in html


@pytest.mark.parametrize("now", ["2020-01-01T00:00:00+00:00", "2026-11-29T18:30:00+00:00", "2099-12-31T23:59:59+00:00"])
def test_ages_from_the_past_present_and_future(now):
    html = render(data(now=now))
    assert_inert(html)
    rpo = html.split('data-testid="rpo-daily">')[1].split("<")[0]
    assert (
        rpo == "in the future" if now < "2026" else rpo.endswith(("min", " h", "days")) and not rpo.startswith("-")
    ), rpo
