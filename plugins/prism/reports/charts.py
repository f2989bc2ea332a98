"""Charts as inline SVG: no JavaScript and no dependency, so a report renders the same in a browser,
an e-mail client and a file viewer, and the dashboard shows them without fetching anything.

Each function takes plain figures and returns an `<svg>` element as text; values are escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 28, 36
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")


def short_number(v: float) -> str:
    """1234 -> 1.2k, 2500000 -> 2.5M: axis labels and tooltips."""
    if abs(v) >= 1e9:
        return f"{v / 1e9:.1f}G"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}" if float(v).is_integer() or abs(v) >= 10 else f"{v:.2f}"


def _frame(title: str, body: list[str], y_max: float, y_label: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    plot_h = height - PAD_TOP - PAD_BOTTOM
    grid = []
    for i in range(5):
        y = PAD_TOP + plot_h * i / 4
        grid.append(f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{width - PAD_RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        grid.append(
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#6b7280">'
            f"{short_number(y_max * (4 - i) / 4)}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;font-family:sans-serif">'
        f"<title>{escape(title)}</title>"
        f'<text x="{PAD_LEFT}" y="16" font-size="13" font-weight="bold" fill="#111827">{escape(title)}</text>'
        f'<text x="{width - PAD_RIGHT}" y="16" font-size="10" text-anchor="end" fill="#6b7280">{escape(y_label)}</text>'
        + "".join(grid)
        + "".join(body)
        + "</svg>"
    )


def _nice_max(values: list[float]) -> float:
    top = max([v for v in values if v is not None] or [0]) or 1.0
    for step in (1, 2, 2.5, 5, 10):
        magnitude = 10 ** (len(str(int(top))) - 1)
        if top <= step * magnitude:
            return step * magnitude
    return top


def bar_chart(
    title: str, bars: list[tuple[str, float]], y_label: str = "", colors: dict[str, str] | None = None
) -> str:
    """Vertical bars, one per (label, value)."""
    if not bars:
        return empty_chart(title)
    y_max = _nice_max([v for _, v in bars])
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / len(bars)
    body = []
    for i, (label, value) in enumerate(bars):
        h = plot_h * (value or 0) / y_max
        x = PAD_LEFT + i * slot + slot * 0.15
        color = (colors or {}).get(label, COLORS[0])
        body.append(
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(str(label))}: {escape(short_number(value or 0))}</title></rect>"
        )
        if len(bars) <= 16 or i % max(1, len(bars) // 8) == 0:
            body.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" font-size="10" text-anchor="middle" '
                f'fill="#374151">{escape(str(label))}</text>'
            )
        if len(bars) <= 16:
            body.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{PAD_TOP + plot_h - h - 3:.1f}" font-size="10" text-anchor="middle" '
                f'fill="#111827">{escape(short_number(value or 0))}</text>'
            )
    return _frame(title, body, y_max, y_label)


def line_chart(
    title: str,
    series: dict[str, list[tuple[datetime, float]]],
    y_label: str = "",
    limits: dict[str, float] | None = None,
    dashed: set[str] | None = None,
    markers: list[tuple[datetime, str]] | None = None,
) -> str:
    """Lines over time: `series` {name: [(when, value)]}; `limits` horizontal lines {label: value};
    `dashed` the series drawn dashed (projections); `markers` vertical lines at (when, label)."""
    points = [p for s in series.values() for p in s if p[1] is not None]
    if not points:
        return empty_chart(title)
    times = [p[0] for p in points] + [m[0] for m in markers or []]
    t0, t1 = min(times), max(times)
    span = (t1 - t0).total_seconds() or 1.0
    y_max = _nice_max([p[1] for p in points] + list((limits or {}).values()))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def xy(t: datetime, v: float) -> tuple[float, float]:
        return PAD_LEFT + plot_w * (t - t0).total_seconds() / span, PAD_TOP + plot_h * (1 - min(v, y_max) / y_max)

    body = []
    for label, value in (limits or {}).items():
        _, y = xy(t0, value)
        body.append(
            f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y:.1f}" stroke="#9ca3af" '
            f'stroke-dasharray="2 3"/><text x="{WIDTH - PAD_RIGHT}" y="{y - 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="#6b7280">{escape(label)} {escape(short_number(value))}</text>'
        )
    for when, label in markers or []:
        x, _ = xy(when, 0)
        body.append(
            f'<line x1="{x:.1f}" y1="{PAD_TOP}" x2="{x:.1f}" y2="{PAD_TOP + plot_h}" stroke="#dc2626" stroke-dasharray="4 3"/>'
            f'<text x="{x - 3:.1f}" y="{PAD_TOP + 10}" font-size="10" text-anchor="end" fill="#dc2626">{escape(label)}</text>'
        )
    for i, (name, pts) in enumerate(series.items()):
        pts = [p for p in pts if p[1] is not None]
        if not pts:
            continue
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(t, v) for t, v in pts))
        dash = ' stroke-dasharray="6 4"' if name in (dashed or set()) else ""
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}><title>{escape(name)}</title></polyline>'
        )
        for t, v in pts if len(pts) <= 40 else []:
            x, y = xy(t, v)
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{escape(name)} '
                f"{t:%Y-%m-%d %H:%M}: {escape(short_number(v))}</title></circle>"
            )
        body.append(
            f'<text x="{PAD_LEFT + 4 + 150 * i}" y="{HEIGHT - 4}" font-size="10" fill="{color}">&#9632; {escape(name)}</text>'
        )
    fmt = "%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d"
    body.append(
        f'<text x="{PAD_LEFT}" y="{HEIGHT - PAD_BOTTOM + 14}" font-size="10" fill="#374151">{t0:{fmt}}</text>'
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - PAD_BOTTOM + 14}" font-size="10" text-anchor="end" fill="#374151">'
        f"{t1:{fmt}}</text>"
    )
    return _frame(title, body, y_max, y_label)


def status_strip(title: str, cells: list[tuple[str, str]], width: int = WIDTH) -> str:
    """One small square per (state, tooltip), oldest first: green ok, amber degraded, red failed."""
    fill = {
        "healthy": "#16a34a",
        "degraded": "#d97706",
        "unhealthy": "#dc2626",
        "failed": "#dc2626",
        "success": "#16a34a",
    }
    if not cells:
        return empty_chart(title, height=60)
    size = max(3.0, min(14.0, (width - 8) / len(cells) - 2))
    body = [
        f'<rect x="{4 + i * (size + 2):.1f}" y="24" width="{size:.1f}" height="22" rx="2" fill="{fill.get(state, "#9ca3af")}">'
        f"<title>{escape(tip)}</title></rect>"
        for i, (state, tip) in enumerate(cells)
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} 52" width="100%" '
        f'style="max-width:{width}px;font-family:sans-serif"><title>{escape(title)}</title>'
        f'<text x="4" y="16" font-size="13" font-weight="bold" fill="#111827">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def empty_chart(title: str, height: int = 80) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" style="max-width:{WIDTH}px;font-family:sans-serif"><title>{escape(title)}</title>'
        f'<text x="8" y="18" font-size="13" font-weight="bold">{escape(title)}</text>'
        f'<text x="8" y="44" font-size="12" fill="#6b7280">no data recorded yet</text></svg>'
    )
