"""A report as one self-contained HTML page: its Markdown rendered, with its charts as inline SVG.

The page loads nothing (no scripts, fonts or images from elsewhere), so it opens the same from the
bucket, the dashboard or an e-mail attachment.
"""

from __future__ import annotations

from html import escape

from markdown_it import MarkdownIt

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:900px;margin:2rem auto;padding:0 1rem;color:#111827}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #e5e7eb;padding-bottom:.2rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d1d5db;padding:.25rem .5rem;font-size:.9rem}
th{background:#f3f4f6}code{background:#f3f4f6;padding:0 .2rem;border-radius:3px}.charts figure{margin:1rem 0}
"""

_md = MarkdownIt("commonmark", {"html": False}).enable("table")


def chart(title: str, svg: str, table: list[tuple[str, object]]) -> dict:
    """A chart of a report: the SVG for the HTML page and its figures as rows for the Markdown."""
    return {"title": title, "svg": svg, "table": [(str(k), v) for k, v in table]}


def chart_markdown(charts: list[dict]) -> list[str]:
    """The charts' figures as Markdown tables (the Markdown report carries the numbers, the HTML the pictures)."""
    lines: list[str] = []
    for c in charts:
        lines += ["", f"**{_cell(c['title'])}**", "", "| | value |", "|---|---|"] + [
            f"| {_cell(k)} | {_cell(v)} |" for k, v in c["table"]
        ]
    return lines


def _cell(value) -> str:
    """One table cell on one line: a '|' or a line break in a label must not end the row or the table."""
    return " ".join(str(value).split()).replace("|", "\\|")


def render(markdown_text: str, charts: list[dict]) -> str:
    """The HTML page of a report: the charts under the title, then the Markdown body."""
    title, _, rest = markdown_text.partition("\n")
    figures = "".join(f"<figure>{c['svg']}</figure>" for c in charts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title.lstrip('# '))}</title><style>{STYLE}</style></head><body>"
        + _md.render(title)
        + (f'<section class="charts">{figures}</section>' if figures else "")
        + _md.render(rest)
        + "</body></html>\n"
    )
