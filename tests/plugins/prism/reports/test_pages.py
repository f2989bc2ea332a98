"""A report's HTML page: its Markdown rendered, its charts inline, nothing loaded from elsewhere."""

from __future__ import annotations

from prism.reports.pages import chart, chart_markdown, render


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
