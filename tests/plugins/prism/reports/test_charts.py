"""Inline SVG charts: well-formed, escaped, with their figures in the tooltips."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from prism.reports.charts import bar_chart, empty_chart, line_chart, status_strip

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_charts_are_well_formed_svg_with_their_values():
    bars = bar_chart("Events <by> type", [("failed_login", 150), ("forbidden", 25)])
    lines = line_chart(
        "P95",
        {"p95": [(T0 + timedelta(days=i), 300.0 + i) for i in range(5)]},
        "ms",
        limits={"target": 1000},
        dashed={"p95"},
        markers=[(T0 + timedelta(days=4), "limit")],
    )
    strip = status_strip("Health", [("healthy", "18:00"), ("unhealthy", "18:05")])
    for svg in (bars, lines, strip, empty_chart("nothing")):
        ET.fromstring(svg)  # parses: escaped and closed
    assert "Events &lt;by&gt; type" in bars and "failed_login: 150" in bars
    assert "target 1.0k" in lines and 'stroke-dasharray="6 4"' in lines and "2026-11-03 00:00: 302" in lines
    assert strip.count("<rect") == 2 and "#dc2626" in strip
    assert "no data recorded yet" in line_chart("empty", {"p95": []}) and "no data" in bar_chart("empty", [])
