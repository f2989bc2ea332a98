"""Reports: keys, numbers, the building blocks of report text, and delivery to the S3 stand-in: one HTML
page beside each Markdown text, rendered from it; what an earlier report of the same window captured
kept; nothing written again when nothing changed; a window that has not ended refused."""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from prism.refusals import Refused
from prism.reports.markdown import (
    LIVE_GRACE,
    Live,
    Report,
    checklist_item,
    code,
    deliver,
    expired,
    live,
    live_capture,
    markdown,
    number,
    percent,
    publish_report,
    pulled,
    report_key,
    result_rows,
    sections_of,
    traffic_lines,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "prism_dashboard"))
from hostile import ALL, HOSTILE, assert_inert, text_of  # noqa: E402

UTC = timezone.utc
TRAFFIC = {
    "available": True,
    "note": "",
    "window": {"start": "2026-02-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
    "requests": 1234567,
    "errors": 1235,
    "error_rate_percent": 0.1,
    "wall_time_ms": {"p50": 12.0, "p95": 80.5, "p99": 140.0},
}
WINDOW = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
CAPTURED = {"captured_at": "2026-03-01T03:00:05+00:00", "timely": True}
LATE = {"captured_at": "2026-03-09T12:00:00+00:00", "timely": False}


@pytest.fixture
def versioned(s3, monkeypatch):
    """A bucket of its own with versioning on (every write leaves a version), set as the config's bucket."""
    bucket = f"reports-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    s3.get_conn().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
    return bucket


def versions(s3, bucket: str) -> dict[str, int]:
    listed = s3.get_conn().list_object_versions(Bucket=bucket).get("Versions", [])
    out: dict[str, int] = {}
    for v in listed:
        out[v["Key"]] = out.get(v["Key"], 0) + 1
    return out


def objects(s3, bucket: str) -> dict[str, tuple[str, bytes]]:
    """Every object: its ETag and its bytes."""
    return {
        k: (s3.get_key(k, bucket).e_tag, s3.get_key(k, bucket).get()["Body"].read()) for k in s3.list_keys(bucket) or []
    }


def report(sections: dict, name: str = "performance", **kw) -> Report:
    return Report(name, "202602", "PRISM Performance Report - 2026-02", WINDOW, sections, **kw)


# ---- numbers and text ----------------------------------------------------------------------------


def test_numbers_read_well():
    assert [number(v) for v in (1234567, 2.5, 3.0, None, "n/a", 1234.5678, 0.004, True)] == [
        "1,234,567",
        "2.5",
        "3",
        "n/a",
        "n/a",
        "1,234.57",
        "0",
        "yes",
    ]
    assert number({"success": 7317, "clientError": 12.0}) == "success 7,317, clientError 12"
    assert number([1, 2.0, None]) == "1, 2, n/a" and number([]) == number({}) == "none"
    assert number(float("nan")) == "n/a" and number(2.999) == "3" and number(0.12345, 4) == "0.1235"
    assert [percent(v) for v in (0.1, 99.9, 90.0, 0.01234, None)] == ["0.1%", "99.9%", "90%", "0.0123%", "n/a"]
    assert number("a\nb") == "a b"  # a name on one line


def test_code_spans_hold_any_text():
    assert code("SELECT 1") == "`SELECT 1`"
    assert code("a `b` c") == "``a `b` c``" and code("`x`") == "`` `x` ``"
    assert code("x\n## heading") == "`x ## heading`"


def test_traffic_lines_give_the_figures_or_say_why_there_are_none():
    lines = traffic_lines(TRAFFIC)
    assert lines == [
        "- Window queried: 2026-02-01T00:00:00Z to 2026-03-01T00:00:00Z",
        "- Total requests: 1,234,567",
        "- Errors: 1,235 (error rate 0.1%)",
        "- Success rate: 99.9%",
        "- P95 latency: 80.5 ms (p50 12 ms, p99 140 ms)",
    ]
    assert traffic_lines({**TRAFFIC, "note": "partial: from 2026-02-02"})[-1] == "- Note: partial: from 2026-02-02"
    assert traffic_lines({"available": False, "note": "unavailable: too old"}) == [
        "- Traffic figures unavailable: too old"
    ]


def test_checklist_items_and_results():
    assert [checklist_item(d, "x") for d in (True, False, None)] == ["- [x] x", "- [!] x", "- [ ] x"]
    assert result_rows({"rows": [{"n": 1}]}) == [{"n": 1}]
    assert result_rows(None) == result_rows({"rows": None}) == []
    ti = SimpleNamespace(xcom_pull=lambda task_ids: {"g.t": {"rows": []}}.get(task_ids))
    assert pulled({"ti": ti}, "g.t") == {"rows": []} and pulled({"ti": ti}, "g.other") is None
    assert expired({"available": True}, [{"available": False}]) is False
    assert expired({"available": True}, [{"available": False, "expired": True}]) is True


def test_markdown_names_its_window_and_keeps_each_line_on_one_line():
    text = markdown("T", WINDOW, {"A": ["- a", "- b\n## injected"], "B": "b"})
    assert text == (
        "# T\n\nWindow: 2026-02-01T00:00:00+00:00 to 2026-03-01T00:00:00+00:00 (UTC)\n\n"
        "## A\n\n- a\n- b ## injected\n\n## B\n\nb\n"
    )
    assert sections_of(text) == {"A": ["- a", "- b ## injected"], "B": ["b"]}
    assert report_key("prism_monthly", "capacity", "202603") == "reports/prism_monthly/202603/capacity.md"


# ---- point-in-time figures -------------------------------------------------------------------------


def context(end: datetime, run_type: str = "scheduled") -> dict:
    return {
        "data_interval_start": end - timedelta(days=30),
        "data_interval_end": end,
        "dag_run": SimpleNamespace(run_type=run_type),
    }


@pytest.mark.parametrize(
    ("window_end", "run_type", "timely"),
    [
        (datetime.now(UTC) - timedelta(hours=3), "scheduled", True),  # the run at its window's end
        (datetime.now(UTC) - timedelta(hours=3), "backfill", False),  # a backfill never
        (datetime.now(UTC) - LIVE_GRACE - timedelta(minutes=5), "manual", False),  # a manual run made later
        (datetime(2019, 3, 1, tzinfo=UTC), "manual", False),  # long past
    ],
)
def test_live_figures_are_read_only_at_the_windows_end(window_end, run_type, timely):
    capture = live_capture(context(window_end, run_type), window_end)
    assert capture["timely"] is timely
    section = live("the Worker's /metrics", capture, ["- saved 5"])
    assert (section.lines is not None) is timely
    body = section.body()
    if timely:
        assert body[0].startswith(f"Captured at {capture['captured_at']}: point-in-time") and body[-1] == "- saved 5"
    else:
        assert body == [
            "- Left out: the Worker's /metrics. These are point-in-time figures, read as they are at the moment of "
            "reading, and this report was made after its window had ended (inside a backfill, or later), when they "
            "would not describe it."
        ]


# ---- delivery ---------------------------------------------------------------------------------------


def test_deliver_publishes_markdown_and_its_html_page_and_alerts(s3, versioned, alerts):
    from prism.reports.charts import bar_chart
    from prism.reports.pages import chart

    bars = [("failed_login", 150), ("forbidden", 25)]
    out = deliver(
        "prism_monthly",
        report(
            {"Failed logins": ["- 150"]},
            name="security",
            summary={"alerted": True},
            alerts=[{"subject": "over the limit", "severity": "warning"}],
            charts=[chart("Events by type", bar_chart("Events by type", bars), bars)],
        ),
    )
    base = f"s3://{versioned}/reports/prism_monthly/202602/security"
    assert out == {"report": base + ".md", "report_html": base + ".html", "alerted": True}
    assert alerts == ["[PRISM WARNING] over the limit"]
    md = s3.read_key("reports/prism_monthly/202602/security.md", versioned)
    html = s3.read_key("reports/prism_monthly/202602/security.html", versioned)
    assert md.startswith("# PRISM Performance Report - 2026-02\n\nWindow: 2026-02-01T00:00:00+00:00 to ")
    assert "## Charts (figures)" in md and "| failed_login | 150 |" in md and "<svg" not in md
    assert html.startswith("<!doctype html>") and "<title>PRISM Performance Report - 2026-02</title>" in html
    assert "<h1>PRISM Performance Report - 2026-02</h1>" in html and "<svg" in html and "<li>150</li>" in html
    # Every report has its page, charts or not (publish_report serves the other modules' reports).
    url = publish_report(versioned, "reports/prism_daily/20260301/log_review.md", "# PRISM daily log review\n\n- a\n")
    assert url == f"s3://{versioned}/reports/prism_daily/20260301/log_review.md"
    page = s3.read_key("reports/prism_daily/20260301/log_review.html", versioned)
    assert "<title>PRISM daily log review</title>" in page and "<li>a</li>" in page


def test_the_same_report_again_writes_no_byte(s3, versioned, alerts):
    sections = {"Request Metrics": ["- Total requests: 5"], "Token Savings": live("the /metrics", CAPTURED, ["- 7"])}
    first = deliver("prism_monthly", report(sections))
    before = objects(s3, versioned)
    assert deliver("prism_monthly", report(sections)) == first
    assert objects(s3, versioned) == before
    assert versions(s3, versioned) == {
        "reports/prism_monthly/202602/performance.md": 1,
        "reports/prism_monthly/202602/performance.html": 1,
    }


def test_a_late_run_keeps_the_live_sections_the_first_capture_wrote(s3, versioned, alerts):
    """A backfill reprocessing the run: the window's sections are made again (the same), the /metrics
    the timely run captured stay as they were, and so do the bytes."""
    timely = {"Request Metrics": ["- Total requests: 5"], "Token Savings": live("the /metrics", CAPTURED, ["- 7"])}
    deliver("prism_monthly", report(timely))
    before = objects(s3, versioned)
    late = {"Request Metrics": ["- Total requests: 5"], "Token Savings": live("the /metrics", LATE, None)}
    deliver("prism_monthly", report(late))
    assert objects(s3, versioned) == before
    text = s3.read_key("reports/prism_monthly/202602/performance.md", versioned)
    assert "Captured at 2026-03-01T03:00:05+00:00" in text and "Left out" not in text and "2026-03-09" not in text
    # A later run that captures again (a retry within the grace) keeps the first capture too.
    again = {**timely, "Token Savings": live("the /metrics", {**CAPTURED, "captured_at": "x"}, ["- 8"])}
    deliver("prism_monthly", report(again))
    assert objects(s3, versioned) == before
    # ... while the window's own sections follow the window's figures (a fix shows).
    deliver("prism_monthly", report({**late, "Request Metrics": ["- Total requests: 6"]}))
    text = s3.read_key("reports/prism_monthly/202602/performance.md", versioned)
    assert "- Total requests: 6" in text and "Captured at 2026-03-01T03:00:05+00:00" in text


def test_a_first_report_made_late_says_what_it_left_out_and_stays_so(s3, versioned, alerts):
    late = {"Request Metrics": ["- Total requests: 5"], "Token Savings": live("the /metrics", LATE, None)}
    deliver("prism_monthly", report(late))
    before = objects(s3, versioned)
    assert "- Left out: the /metrics." in before["reports/prism_monthly/202602/performance.md"][1].decode()
    deliver("prism_monthly", report(late))
    assert objects(s3, versioned) == before


def test_once_graphql_no_longer_holds_the_window_the_report_is_kept_as_it_is(s3, versioned, alerts):
    deliver("prism_monthly", report({"Request Metrics": ["- Total requests: 5"]}))
    before = objects(s3, versioned)
    gone = {"Request Metrics": ["- Traffic figures unavailable: GraphQL keeps 92 days ..."]}
    deliver("prism_monthly", report(gone, expired=True))
    assert objects(s3, versioned) == before
    # Never made before: it says what is unavailable.
    deliver("prism_monthly", report(gone, name="other", expired=True))
    assert "unavailable" in s3.read_key("reports/prism_monthly/202602/other.md", versioned)


def test_a_window_that_has_not_ended_is_refused_before_anything_is_sent_or_written(s3, versioned, alerts):
    ahead = datetime.now(UTC) + timedelta(days=3)
    future = Report("x", "p", "T", (ahead - timedelta(days=30), ahead), {"A": ["- a"]}, alerts=[{"subject": "s"}])
    with pytest.raises(Refused, match=r"^refusing to write the report 'T': the run's window ends .* Nothing was"):
        deliver("prism_monthly", future)
    assert alerts == [] and not s3.list_keys(versioned)


def test_hostile_strings_in_a_report_stay_text_in_its_html(s3, versioned, alerts):
    lines = [f"- {v}" for v in HOSTILE.values()] + [
        f"- {code(ALL)}",
        "- [click](javascript:alert(1)) <javascript:alert(2)> ![x](javascript:alert(3))",
        f"- {HOSTILE['newlines']}\n## Token Savings\n- forged",
    ]
    sections = {ALL: lines, "Token Savings": live(ALL, CAPTURED, [f"- {ALL}"])}
    out = deliver("prism_monthly", Report("hostile", "p", f"Report {ALL}", WINDOW, sections))
    html = s3.read_key(out["report_html"].split("/", 3)[3], versioned)
    doc = assert_inert(html, allowed_tags={"meta"})
    assert not [a for t, a in doc.tags if t == "a"]
    assert HOSTILE["script"] in text_of(doc) and HOSTILE["attr"] in text_of(doc)
    md = s3.read_key(out["report"].split("/", 3)[3], versioned)
    assert md.count("\n## Token Savings\n") == 1 and "## Token Savings - forged" not in md.split("\n")
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "<" not in title and "&lt;script&gt;" in title  # the title, escaped, is the report's
    kept = sections_of(md)
    assert kept["Token Savings"][-1] == f"- {' '.join(ALL.split())}" and isinstance(sections["Token Savings"], Live)
