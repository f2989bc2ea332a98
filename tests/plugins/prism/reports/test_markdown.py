"""Reports: keys, Markdown, the building blocks of report text, and delivery to the bucket with alerts."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

from prism.reports.markdown import (
    Report,
    checklist_item,
    deliver,
    markdown,
    number,
    pulled,
    report_key,
    result_rows,
    traffic_lines,
)

TRAFFIC = {
    "available": True,
    "note": "",
    "window": {"start": "2026-02-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
    "requests": 1234567,
    "errors": 1235,
    "error_rate_percent": 0.1,
    "wall_time_ms": {"p50": 12.0, "p95": 80.5, "p99": 140.0},
}


def test_numbers_read_well():
    assert [number(v) for v in (1234567, 2.5, 3.0, None, "n/a")] == ["1,234,567", "2.50", "3", "None", "n/a"]


def test_traffic_lines_give_the_figures_or_say_why_there_are_none():
    lines = traffic_lines(TRAFFIC)
    assert lines == [
        "- Window queried: 2026-02-01T00:00:00Z to 2026-03-01T00:00:00Z",
        "- Total requests: 1,234,567",
        "- Errors: 1,235 (error rate 0.1%)",
        "- Success rate: 99.9%",
        "- P95 latency: 80.5 ms (p50 12.0 ms, p99 140.0 ms)",
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


def test_markdown_names_its_window_and_capture_time():
    window = (datetime(2026, 2, 1, tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone.utc))
    text = markdown(
        "T",
        window,
        {"A": ["- a"], "B": "b"},
        captured={"captured_at": "2026-05-01T00:00:00+00:00", "in_backfill": True},
    )
    assert text.startswith(
        "# T\n\nWindow: 2026-02-01T00:00:00+00:00 to 2026-03-01T00:00:00+00:00 (UTC)\nCaptured at 2026-05-01"
    )
    assert "inside a backfill" in text and text.endswith("## A\n\n- a\n\n## B\n\nb\n")
    assert report_key("prism_monthly", "capacity", "202603") == "reports/prism_monthly/202603/capacity.md"


def test_deliver_alerts_publishes_and_returns_the_summary(s3, alerts, monkeypatch):
    bucket = f"reports-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
    report = Report(
        "capacity", "202603", "# text\n", {"plan": {}}, [{"subject": "over the limit", "severity": "warning"}]
    )
    assert deliver("prism_monthly", report) == {
        "report": f"s3://{bucket}/reports/prism_monthly/202603/capacity.md",
        "plan": {},
    }
    assert s3.read_key("reports/prism_monthly/202603/capacity.md", bucket) == "# text\n"
    assert alerts == ["[PRISM WARNING] over the limit"]
    assert deliver("prism_monthly", Report("x", "1", "y")) == {"report": f"s3://{bucket}/reports/prism_monthly/1/x.md"}
    assert len(alerts) == 1


def test_deliver_publishes_html_with_charts_beside_the_markdown(s3, alerts, monkeypatch):
    from prism.reports.charts import bar_chart
    from prism.reports.pages import chart

    bucket = f"reports-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
    bars = [("failed_login", 150), ("forbidden", 25)]
    report = Report(
        "security",
        "20260307",
        "# PRISM Security Audit\n\n## Failed logins\n\n- 150\n",
        {},
        charts=[chart("Events by type", bar_chart("Events by type", bars), bars)],
    )
    out = deliver("prism_monthly", report)
    assert out == {
        "report": f"s3://{bucket}/reports/prism_monthly/20260307/security.md",
        "report_html": f"s3://{bucket}/reports/prism_monthly/20260307/security.html",
    }
    html = s3.read_key("reports/prism_monthly/20260307/security.html", bucket)
    assert html.startswith("<!doctype html>") and "<h1>PRISM Security Audit</h1>" in html and "<svg" in html
    assert "failed_login: 150" in html and "<li>150</li>" in html
    md = s3.read_key("reports/prism_monthly/20260307/security.md", bucket)
    assert md.startswith("# PRISM Security Audit") and "| failed_login | 150 |" in md and "<svg" not in md
