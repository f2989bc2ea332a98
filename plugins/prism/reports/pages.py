"""A report as one self-contained HTML page, rendered from its Markdown (the same text that is
published as <name>.md), with its charts as inline SVG under the title.

The page has a <title> (the report's title) and loads nothing (no scripts, fonts or images from
elsewhere), so it opens the same from the bucket, the dashboard or an e-mail attachment. Raw HTML in
the Markdown is not passed through: every value a report quotes (names, queries, notes) is escaped.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:900px;margin:2rem auto;padding:0 1rem;color:#111827}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #e5e7eb;padding-bottom:.2rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d1d5db;padding:.25rem .5rem;font-size:.9rem}
th{background:#f3f4f6}code{background:#f3f4f6;padding:0 .2rem;border-radius:3px}.charts figure{margin:1rem 0}
"""


@lru_cache(maxsize=1)
def _markdown_it():
    # markdown_it (~40 ms) is wanted only when a report is written, not when DAG files are parsed.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


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
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def title_of(markdown_text: str) -> str:
    """A report's title: its first line, without the '# '."""
    return markdown_text.partition("\n")[0].removeprefix("# ").strip()


def render(markdown_text: str, charts: list[dict] | None = None) -> str:
    """The HTML page of a report: <title> and heading from its first line, the charts under the
    heading, then the rest of the Markdown."""
    first, _, rest = markdown_text.partition("\n")
    md = _markdown_it()
    figures = "".join(f"<figure>{c['svg']}</figure>" for c in charts or [])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title_of(markdown_text))}</title><style>{STYLE}</style></head><body>"
        + md.render(first)
        + (f'<section class="charts">{figures}</section>' if figures else "")
        + md.render(rest)
        + "</body></html>\n"
    )
