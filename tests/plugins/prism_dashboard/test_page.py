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
        "calls_this_run": 7,
        "calls_by_task": {"check_resources": 6, "usage": 1},
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


def test_the_budget_panel_shows_the_api_calls_of_the_last_monitor_run():
    html = render(data())
    assert 'data-testid="api-calls-run">7<' in html
    assert '<span data-testid="api-calls-by-task">check_resources 6, usage 1</span>' in html
    # A record from before the count, and one whose x-ratelimit headers were never seen.
    usage = json.loads(json.dumps(USAGE))
    del usage["api_budget"]["calls_this_run"], usage["api_budget"]["calls_by_task"]
    html = render(data(usage=usage))
    assert 'data-testid="api-calls-run">n/a<' in html and "api-calls-by-task" not in html
    usage["api_budget"] = {"calls_this_run": 1, "calls_by_task": {"usage": 1}}
    html = render(data(usage=usage))
    assert 'data-testid="api-calls-run">1<' in html and "No x-ratelimit headers seen yet; the whole account" in html


@pytest.mark.parametrize("name", ["script", "attr", "template"])
def test_a_call_count_that_is_markup_is_shown_as_text(name):
    usage = json.loads(json.dumps(USAGE))
    usage["api_budget"]["calls_this_run"] = HOSTILE[name]
    usage["api_budget"]["calls_by_task"] = {HOSTILE[name]: HOSTILE[name]}
    doc = assert_inert(render(data(usage=usage)))
    assert text_of(doc).count(HOSTILE[name]) >= 3  # the count, the task and its count, each as itself


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
            "calls_this_run": h,
            "calls_by_task": {h: h, HOSTILE["attr"]: 3},
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
        "nw",
        "ln",
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


# ---- charts: drawn for the card's width ------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "prism" / "reports"))
import re  # noqa: E402

from chart_dom import read  # noqa: E402

from prism_dashboard.page import CHART_WIDTH  # noqa: E402


def test_charts_are_drawn_at_the_cards_width_so_their_text_stays_legible():
    # A 640-wide viewBox squeezed into a 420 px card made 10 px labels 6.6 px at 100% zoom.
    svgs = re.findall(r"<svg.*?</svg>", render(data()), re.S)
    assert len(svgs) == 3  # the health strip, p95 and the requests per hour
    for svg in map(read, svgs):
        assert svg.view_width == CHART_WIDTH and svg.max_width == f"{CHART_WIDTH}px" and min(svg.font_sizes) >= 12
        if svg.kind == "line":
            assert svg.reach >= 0.6, svg.reach  # the hours' figures fill the plot, not a sliver of it


# ---- times for people, measured from the page's own time ------------------------------------------------------

from datetime import datetime, timezone  # noqa: E402

from prism_dashboard.page import ago, body_lines, when  # noqa: E402

NOW = datetime(2026, 12, 6, 17, 46, 40, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "then,words",
    [
        ("2026-12-06T17:43:32+00:00", "3 min ago"),
        ("2026-12-06T17:46:00Z", "just now"),
        ("2026-12-06T17:47:30+00:00", "just now"),  # a clock a few seconds ahead is no news
        ("2026-12-06T17:51:40+00:00", "in 5 min"),  # after the page's time: said, never "-5 min ago"
        ("2026-12-06T18:43:32+01:00", "3 min ago"),  # another zone, the same instant
        ("2026-12-06T15:41:00+00:00", "2 h 5 min ago"),
        ("2026-12-05T11:46:40+00:00", "30 h ago"),
        ("2026-11-24T17:46:40+00:00", "12 days ago"),
        ("2019-03-01T00:00:00+00:00", "7.8 years ago"),
        ("2099-12-31T23:59:59+00:00", "in 73.1 years"),
    ],
)
def test_a_time_reads_as_utc_to_the_minute_and_how_long_before_the_page_it_was(then, words):
    t = when(then, NOW)
    assert t["ago"] == words
    assert t["iso"] == datetime.fromisoformat(then.replace("Z", "+00:00")).isoformat()
    assert (
        t["text"]
        == f"{datetime.fromisoformat(then.replace('Z', '+00:00')).astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


@pytest.mark.parametrize(
    "value,shown",
    [
        (None, "n/a"),
        ("", "n/a"),
        ("2026-12-06T17:43:32", "2026-12-06T17:43:32"),  # no zone: not guessed at, shown as recorded
        ("2026-12-06", "2026-12-06"),
        ("yesterday", "yesterday"),
        ("0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00+01:00"),  # its UTC falls off the calendar
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59-01:00"),
        (1733500000, "1733500000"),
        (HOSTILE["script"], HOSTILE["script"]),
        (LONG, LONG),
    ],
)
def test_a_value_that_is_no_time_with_a_zone_is_shown_as_it_is(value, shown):
    assert when(value, NOW) == {"iso": None, "text": shown, "ago": ""}


def test_ago_is_measured_from_the_page_time_it_is_given():
    assert ago(NOW, NOW) == "just now"
    page = data(now="2026-11-29T18:30:00+00:00")
    a, b = render(page), render({**page, "now": "2026-11-30T18:30:00+00:00"})
    assert render(page) == a  # the same data and page time: the same page, whatever the clock says
    a, b = text_of(assert_inert(a)), text_of(assert_inert(b))
    assert "2026-11-29 18:20 UTC (9 min ago)" in a and "2026-11-29 18:20 UTC (24 h ago)" in b


def test_times_on_the_page_are_time_elements_with_the_recorded_value_as_tooltip():
    html = render(data())
    doc = assert_inert(html)
    times = [a for t, a in doc.tags if t == "time"]
    recorded = {
        "2026-11-29T18:30:00+00:00",  # the page's time, in its heading
        "2026-11-29T18:25:00+00:00",  # the latest check
        "2026-11-28T18:00:00+00:00",  # the usage window
        "2026-11-29T18:00:00+00:00",
        "2026-11-29T18:00:05+00:00",  # its capture
        "2026-11-29T18:00:04+00:00",  # the API budget's observation
        "2026-11-29T09:10:00+00:00",  # the backup's capture
        "2026-11-28T03:10:00+00:00",  # the report
        "2026-11-29T18:20:05+00:00",  # the alert
    }
    assert {a["datetime"] for a in times} == recorded and all(a["title"] == a["datetime"] for a in times)
    text = text_of(doc)
    assert "read from Airflow's metadata DB at 2026-11-29 18:30 UTC;" in text
    assert "2026-11-29 18:20 UTC (9 min ago) check_resources failed <b>" in text
    assert "Window 2026-11-28 18:00 UTC to 2026-11-29 18:00 UTC (the Worker's /metrics), captured" in text
    assert "2026-11-28 03:10 UTC (1 days ago)" not in text and "2026-11-28 03:10 UTC (39 h ago)" in text


@pytest.mark.parametrize("now", ["2020-01-01T00:00:00+00:00", "2026-11-29T18:30:00+00:00", "2099-12-31T23:59:59+00:00"])
def test_times_before_and_after_the_page_time_say_which(now):
    text = text_of(assert_inert(render(data(now=now))))
    alert = text.split("Recent alerts (7 days)")[1]
    assert ("(in " in alert) == (now < "2026") and ("ago)" in alert) == (now > "2026")
    assert "-" not in alert.split("UTC (")[1].split(")")[0]  # never a negative age


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_time_is_shown_as_text_and_makes_no_time_element(name):
    alert = {"severity": "error", "at": HOSTILE[name], "subject": "s", "body": "b", "investigations": []}
    usage = json.loads(json.dumps(USAGE))
    usage["captured_at"] = usage["api_budget"]["observed_at"] = HOSTILE[name]
    reports = [{**data()["reports"][0], "at": HOSTILE[name]}]
    doc = assert_inert(render(data(now="2026-11-29T18:30:00+00:00", alerts=[alert], usage=usage, reports=reports)))
    assert text_of(doc).count(HOSTILE[name]) >= 4
    assert all(HOSTILE[name] not in a.get("datetime", "") for t, a in doc.tags if t == "time")


# ---- long text wraps inside its card; figures, units and times do not -----------------------------------------


def test_an_alert_keeps_its_indentation_on_the_lines_it_wraps_onto():
    body = "Diagnosis:\n[ok] Recent errors\n    513 requests at 2026-12-06T17:43:32+00:00\n\t- 327 ms\n\nend"
    lines = body_lines(body)
    assert [(line["indent"], line["hang"]) for line in lines] == [(0, 0), (0, 0), (4, 0), (4, 2), (0, 0), (0, 0)]
    assert "".join(p for line in lines for p, _ in line["parts"]) == body.replace("    ", "").replace("\t", "")
    kept_whole = [p for line in lines for p, whole in line["parts"] if whole]
    assert kept_whole == ["2026-12-06T17:43:32+00:00", "327 ms"]
    html = render(data(alerts=[{**data()["alerts"][0], "body": body}]))
    assert '<span class="ln" style="padding-left:4ch;text-indent:-0ch">513 requests at ' in html
    assert '<span class="nw">2026-12-06T17:43:32+00:00</span>' in html and '<span class="nw">327 ms</span>' in html
    assert '<span class="ln" style="padding-left:6ch;text-indent:-2ch">- <span class="nw">327 ms</span>' in html


def test_an_indentation_is_bounded_and_a_hostile_body_stays_text():
    lines = body_lines(" " * 500 + HOSTILE["script"])
    assert lines[0]["indent"] == 40
    doc = assert_inert(render(data(alerts=[{**data()["alerts"][0], "body": ALL + "\n" + " " * 500 + LONG}])))
    assert LONG in text_of(doc)


def test_figures_with_units_stay_on_one_line_and_long_text_may_wrap():
    html = render(data())
    for test_id, shown in [("p95", "409.7 ms"), ("p50-p99", "163.6 / 639.5 ms"), ("api-budget", "334 / 1,200")]:
        assert f'<b class="nw" data-testid="{test_id}">{shown}<' in html
    assert '<td><span class="nw">6 ms</span></td>' in html and '<td class="nw" data-testid="rpo-daily">' in html
    usage = json.loads(json.dumps(USAGE))
    usage["performance"]["p95_latency_ms"] = LONG
    html = render(data(usage=usage))
    assert '<b data-testid="p95">' + LONG[:100] in html.replace("&lt;", "<")  # no nowrap: it wraps inside its card
