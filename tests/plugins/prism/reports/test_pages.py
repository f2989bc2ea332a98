"""A report's HTML page: its title, its Markdown rendered, its charts inline, nothing loaded from elsewhere."""

from __future__ import annotations

import re

from prism.reports.pages import chart, chart_markdown, render, title_of


def test_render_puts_the_charts_under_the_title_and_escapes_the_text():
    c = chart("Events", "<svg><title>Events</title></svg>", [("failed_login", 150)])
    html = render(
        "# PRISM Security Audit - 2026-11-07\n\nWindow: a to b\n\n## Failed <script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        [c],
    )
    assert html.startswith("<!doctype html>") and "<title>PRISM Security Audit - 2026-11-07</title>" in html
    assert html.index("<h1>") < html.index('<section class="charts">') < html.index("Window: a to b")
    assert "<table>" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert chart_markdown([c]) == ["", "**Events**", "", "| | value |", "|---|---|", "| failed_login | 150 |"]
    assert '<section class="charts">' not in render("# T\n", [])
    assert "http" not in re.sub(r'xmlns="[^"]*"', "", html)  # nothing loaded from elsewhere


def test_the_pages_title_is_the_reports():
    text = "# PRISM Quarterly Review 2026Q3: a & <b>\n\nWindow: x\n"
    assert title_of(text) == "PRISM Quarterly Review 2026Q3: a & <b>"
    html = render(text)
    assert "<title>PRISM Quarterly Review 2026Q3: a &amp; &lt;b&gt;</title>" in html
    assert "<h1>PRISM Quarterly Review 2026Q3: a &amp; &lt;b&gt;</h1>" in html


def test_chart_figures_read_as_numbers():
    c = chart("Sets", "<svg/>", [("verified", 1200.0), ("failed", 3)])
    assert chart_markdown([c])[-2:] == ["| verified | 1,200 |", "| failed | 3 |"]
