"""Charts as inline SVG: no JavaScript and no dependency, so a report renders the same in a browser,
an e-mail client and a file viewer, and the dashboard shows them without fetching anything. This is
the one chart module: the reports and the dashboard (prism_dashboard.page) both draw with it.

Each function takes plain figures and returns an `<svg>` element as text. Every string that goes into
one (title, unit, names, labels, tooltips) is escaped, with the characters XML forbids removed; long
visible labels are cut to fit (the tooltip keeps them whole). Numbers are written for people:
thousands separators, no "50.0" for a count (human_number; short_number on axes).

Scale. The y-axis spans the data (measured and projected series, or bars) with a little headroom, and
includes 0 unless a line's values sit in a narrow band far from it (its lowest over 5/6 of its
highest); bars always start at 0. A limit within the axis, or near enough to stretch it by at most a
quarter of the data's range, is drawn as a labelled dashed line. A limit further out is named in a
note above the plot ("free tier 1,000 ↑ off scale; highest value shown 435 (43.5% of it)"), so a small
figure is never flattened against a large allowance. A caller adds what it knows of a limit to its
note (`limit_notes`, e.g. capacity.capacity_chart(): "reached around 2031-04 (...)").

Horizon. Dashed series are projections. The time axis covers the measured (solid) series plus a
look-ahead as long as their span (chart_horizon(): at most a year), so the measured points fill at
least half of it; projections are cut there, and a marker past it (a limit date) is stated in a note
("→ free tier 2031-04-12: after this chart's end (2026-05-12)") instead of stretching the axis.

Text size. Sizes are px at the chart's nominal `width`, which is also its viewBox width. The svg is
`width="100%"` with `max-width` at that width: it never grows and shrinks only in a narrower
container, so a caller passes the width it lays the chart out at (the dashboard its card's). On the
page a text's size is font-size × rendered width / viewBox width; axis text is FONT px at nominal width.

For a browser test (data attributes, no classes: a page's CSS, like the dashboard's `.bar`, must not
restyle a chart, nor a chart add classes to a page), every chart's `<svg>` has data-chart ("line",
"bar", "strip" or "empty") and data-font-size (FONT, viewBox units). Inside it, by data-part:
- "plot": the `<g>` around the plot area, with data-plot-left, data-plot-right, data-plot-top and
  data-plot-bottom (viewBox units), data-y-min and data-y-max (the axis' values at bottom and top),
  data-all-zero, and on a line chart data-x-min and data-x-max (ISO times at the axis' ends);
- "series": `<polyline data-series="NAME" points="x,y ...">`, with data-projected="true" on a projection;
  "bar": `<rect data-value="V">`; "cell": a status strip's squares; "marker": a date's vertical line;
- "limit": `<line data-limit="LABEL" data-value="V">`, a limit drawn on the plot;
- "note": `<text>` rows above the plot, with data-note "off-scale" (and data-limit, data-value: a
  limit off the scale), "limit" (what the caller said of a drawn limit), "off-horizon" (a marker past
  the time axis), "no-data" or "text"; a long note wraps over several rows; "unit": the y-axis' unit.
How much of its plot the data reach: (data-plot-bottom − the smallest y among the series' points and
the bars' tops) / (data-plot-bottom − data-plot-top). Both are in viewBox units, so the ratio holds on
the page as drawn; a chart whose values are all 0 (data-all-zero="true") reaches 0.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from html import escape

WIDTH = 640  # nominal px: a report's page shows its charts at this width
PLOT_HEIGHT = 160
FONT = 12  # axis labels, notes, legend
TITLE_FONT = 14
LINE = 17  # from one row of text to the next
GLYPH = 0.6  # a sans-serif digit is about 0.6 em wide: lays labels out and cuts them to fit
PROSE_GLYPH = 0.52  # and a glyph of running text (spaces and narrow letters) about 0.52 em: wraps notes
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")
INK, MUTED, GRID, NOTE = "#111827", "#4b5563", "#e5e7eb", "#92400e"
ZERO_BAND = 5 / 6  # a line whose lowest value is above this share of its highest leaves 0 off its axis
STRETCH = 0.25  # a limit this far (a share of the data's range) past the data stretches the axis to it
HEADROOM = 0.05
HORIZON_MAX = timedelta(days=365)
HORIZON_SINGLE = timedelta(days=30)  # the look-ahead after a single measured point

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _e(value) -> str:
    """Escaped for SVG text and attribute values, without the characters XML does not allow."""
    return escape(_NOT_XML.sub("", str(value)), quote=True)


def _fit(value, px: float, size: int = FONT) -> str:
    """One line of visible text cut to about `px` wide (whitespace and line breaks folded)."""
    text = " ".join(_NOT_XML.sub("", str(value)).split())
    room = max(1, int(px / (size * GLYPH)))
    return text if len(text) <= room else text[: max(0, room - 1)] + "…"


def _text_px(text: str, size: int = FONT) -> float:
    return len(text) * size * GLYPH


def _plain(v: float) -> str:
    """A number for a data attribute: machine-readable, no separators."""
    return f"{v:.12g}"


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def human_number(v) -> str:
    """A figure as a person reads it: 50000 -> 50,000; 50.0 -> 50; 310.5 -> 310.5; 0.25 -> 0.25."""
    if not _num(v):
        return "n/a" if v is None else str(v)
    v = float(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000 or v.is_integer():
        return f"{v:,.0f}"
    if a < 0.01:
        return f"{v:.2g}"
    digits = 1 if a >= 100 else 2 if a >= 1 else 3
    return f"{v:,.{digits}f}".rstrip("0").rstrip(".")


def short_number(v) -> str:
    """A compact figure for axes and tooltips: 1234 -> 1.2k, 50000 -> 50k, 2500000 -> 2.5M."""
    if not _num(v):
        return human_number(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div * 0.99995:
            scaled = round(v / div, 1)
            return f"{scaled:,.1f}".removesuffix(".0") + suffix
    return human_number(round(v, 2) if abs(v) < 10 else round(v))


def chart_horizon(first: datetime, last: datetime) -> datetime:
    """Where the time axis of a chart with projections ends: the last measured point plus a look-ahead
    as long as the measured span (a month after a single point), at most HORIZON_MAX."""
    span = last - first
    return last + (min(span, HORIZON_MAX) if span > timedelta(0) else HORIZON_SINGLE)


def _tick_labels(ticks: list[float]) -> list[str]:
    """Axis labels sharing one unit and as few decimals as tell them apart: 0, 10k, 20k or 0.5, 1, 1.5."""
    top = max(abs(t) for t in ticks)
    unit, suffix = next(((d, s) for d, s in ((1e9, "G"), (1e6, "M"), (1e4, "k")) if top >= d), (1.0, ""))
    unit = 1e3 if suffix == "k" else unit  # below 10,000 a figure reads in full: 2,500
    digits = next(
        (d for d in range(4) if all(abs(t / unit * 10**d - round(t / unit * 10**d)) < 1e-6 for t in ticks)), 3
    )
    return ["0" if t == 0 else f"{t / unit:,.{digits}f}{suffix}" for t in ticks]


class _YAxis:
    """The value axis: from the data's own range (see the module's Scale), limits in or off it."""

    def __init__(self, values: list[float], limits: dict[str, float], plot_h: float, zero: bool | None = None):
        lo, hi = min(values), max(values)
        if zero is None:
            zero = lo == hi or lo < 0 < hi or (lo >= 0 and lo <= hi * ZERO_BAND) or (hi <= 0 and hi >= lo * ZERO_BAND)
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        self.all_zero = lo == hi == 0
        if lo == hi:
            hi = lo + 1
        near = (lo - STRETCH * (hi - lo), hi + STRETCH * (hi - lo))
        for value in limits.values():
            if near[0] <= value <= near[1]:
                lo, hi = min(lo, value), max(hi, value)
        span = hi - lo
        top = hi if (zero and hi == 0) or self.all_zero else hi + HEADROOM * span
        bottom = lo if zero and lo == 0 else lo - HEADROOM * span
        most = max(2, int(plot_h // 30))
        magnitude = 10 ** math.floor(math.log10((top - bottom) / most))
        for m in (1, 2, 2.5, 5, 10, 20, 25, 50):
            step = m * magnitude
            first, last = math.floor(bottom / step + 1e-9), math.ceil(top / step - 1e-9)
            if last - first <= most:
                break
        self.ticks = [float(f"{i * step:.12g}") for i in range(first, last + 1)]
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.peak = max(values)
        self.inside = {k: v for k, v in limits.items() if self.lo <= v <= self.hi}
        self.outside = {k: v for k, v in limits.items() if k not in self.inside}

    def y(self, value: float, top: float, height: float) -> float:
        return top + height * (1 - (min(max(value, self.lo), self.hi) - self.lo) / (self.hi - self.lo))

    def notes(self, said: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        """One note per limit off the scale, naming it and where the data are against it, and one per
        limit the caller `said` something about ({label: text}, e.g. when it is reached)."""
        out = []
        for label, value in self.outside.items():
            if value > self.hi:
                text = f"{label} {human_number(value)} ↑ off scale"
                if value > 0 and self.peak >= 0:
                    share = 100 * self.peak / value
                    share_text = "under 0.1" if 0 < share < 0.1 else human_number(round(share, 1))
                    text += f"; highest value shown {human_number(self.peak)} ({share_text}% of it)"
            else:
                text = f"{label} {human_number(value)} ↓ off scale (below the axis)"
            attrs = {"data-part": "note", "data-note": "off-scale", "data-limit": label, "data-value": _plain(value)}
            out.append((text + (f": {said[label]}" if said.get(label) else ""), attrs))
        for label, value in self.inside.items():
            if said.get(label):
                attrs = {"data-part": "note", "data-note": "limit", "data-limit": label, "data-value": _plain(value)}
                out.append((f"{label} {human_number(value)}: {said[label]}", attrs))
        return out


def _ts(t: datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


_TIME_STEPS = (
    [("s", m * 60) for m in (5, 10, 15, 30)]
    + [("s", h * 3600) for h in (1, 2, 3, 6, 12)]
    + [("s", d * 86400) for d in (1, 2, 7, 14)]
    + [("m", n) for n in (1, 2, 3, 6, 12, 24, 60, 120)]
)


def _time_ticks(t0: float, t1: float, plot_w: float) -> list[tuple[float, str]]:
    """Ticks at round times (hours, midnights, first days of months), as many as their labels fit."""
    for kind, n in _TIME_STEPS:
        room = max(2, int(plot_w // (_text_px("2026-11-29") + 14)))
        if kind == "s":
            fmt = "%H:%M" if n < 86400 else "%Y-%m-%d"
            shift = 4 * 86400 if n >= 7 * 86400 else 0  # weeks start on Mondays (1970-01-05), not Thursdays
            first, last = math.ceil((t0 - shift) / n), math.floor((t1 - shift) / n)
            ticks = [k * n + shift for k in range(first, last + 1)] if last - first < room else []
        else:
            fmt = "%Y-%m" if n < 12 else "%Y"
            start = datetime.fromtimestamp(t0, timezone.utc)
            at_first = start == start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            index = math.ceil((start.year * 12 + start.month - 1 + (0 if at_first else 1)) / n) * n
            ticks = []
            while len(ticks) <= room:
                t = datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc).timestamp()
                if t > t1:
                    break
                ticks.append(t)
                index += n
        if 1 <= len(ticks) <= room:
            out = []
            for t in ticks:
                when = datetime.fromtimestamp(t, timezone.utc)
                out.append((t, when.strftime("%m-%d" if fmt == "%H:%M" and t % 86400 == 0 else fmt)))
            return out
    return [(t0, datetime.fromtimestamp(t0, timezone.utc).strftime("%Y-%m-%d %H:%M"))]


def _svg(kind: str, title: str, width: int, height: float, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(title)}" '
        f'data-chart="{kind}" data-font-size="{FONT}" viewBox="0 0 {width} {height:.0f}" width="100%" '
        f'style="max-width:{width}px;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif">'
        f"<title>{_e(title)}</title>" + "".join(body) + "</svg>"
    )


def _wrap(text: str, px: float, size: int = FONT, rows: int = 3) -> list[str]:
    """Text as lines of about `px` wide, the last of `rows` cut to fit."""
    words, lines, line = " ".join(_NOT_XML.sub("", str(text)).split()).split(" "), [], ""
    for word in words:
        if line and len(line + " " + word) * size * PROSE_GLYPH > px:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    if len(lines) > rows:
        lines = lines[: rows - 1] + [" ".join(lines[rows - 1 :])]
    return [_fit(x, px * GLYPH / PROSE_GLYPH, size) for x in lines]


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{_e(v)}"' for k, v in attrs.items())


def _head(title: str, width: int, notes: list[tuple[str, dict[str, str]]] = (), unit: str = "") -> tuple[list, int]:
    """The rows above a plot: the title (two lines at most), the notes, the unit; and the last row's y."""
    out, y = [], 0
    for line in _wrap(title, width - 8, TITLE_FONT, rows=2):
        y += TITLE_FONT + 4 if not out else LINE
        out.append(f'<text x="4" y="{y}" font-size="{TITLE_FONT}" font-weight="bold" fill="{INK}">{_e(line)}</text>')
    for text, attrs in notes:
        for line in _wrap(text, width - 8):
            y += LINE
            out.append(f'<text x="4" y="{y}" font-size="{FONT}" fill="{NOTE}"{_attrs(attrs)}>{_e(line)}</text>')
    if unit:
        y += LINE
        out.append(
            f'<text x="4" y="{y}" font-size="{FONT}" fill="{MUTED}" data-part="unit">{_e(_fit(unit, width - 8))}</text>'
        )
    return out, y


class _Layout:
    """Rows of text above the plot (title, notes, unit), the plot, and rows below (time axis, legend)."""

    def __init__(self, title: str, width: int, notes: list[tuple[str, dict[str, str]]], unit: str, left: float):
        self.body, y = _head(title, width, notes, unit)
        self.left, self.right = left, width - 12
        self.top = y + 12
        self.plot_w = self.right - self.left


def _y_grid(axis: _YAxis, lay: _Layout, plot_h: float) -> list[str]:
    out = []
    for tick, label in zip(axis.ticks, _tick_labels(axis.ticks)):
        y = axis.y(tick, lay.top, plot_h)
        stroke = "#9ca3af" if tick == 0 else GRID
        out.append(f'<line x1="{lay.left}" y1="{y:.1f}" x2="{lay.right}" y2="{y:.1f}" stroke="{stroke}"/>')
        out.append(
            f'<text x="{lay.left - 6}" y="{y + FONT / 3:.1f}" text-anchor="end" font-size="{FONT}" fill="{MUTED}">'
            f"{label}</text>"
        )
    return out


def _limit_lines(axis: _YAxis, lay: _Layout, plot_h: float) -> list[str]:
    out = []
    for label, value in axis.inside.items():
        y = axis.y(value, lay.top, plot_h)
        text = _fit(f"{label} {human_number(value)}", lay.plot_w - 8)
        out.append(
            f'<line data-part="limit" data-limit="{_e(label)}" data-value="{_plain(value)}" x1="{lay.left}" '
            f'y1="{y:.1f}" x2="{lay.right}" y2="{y:.1f}" stroke="#6b7280" stroke-dasharray="3 3"/>'
            f'<text x="{lay.right - 2}" y="{y - 4:.1f}" font-size="{FONT}" text-anchor="end" fill="{MUTED}" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">{_e(text)}</text>'
        )
    return out


def _plot_group(axis: _YAxis, lay: _Layout, plot_h: float, inner: list[str], extra: dict[str, str]) -> str:
    attrs = {
        "data-part": "plot",
        "data-plot-left": f"{lay.left:.1f}",
        "data-plot-right": f"{lay.right:.1f}",
        "data-plot-top": f"{lay.top:.1f}",
        "data-plot-bottom": f"{lay.top + plot_h:.1f}",
        "data-y-min": _plain(axis.lo),
        "data-y-max": _plain(axis.hi),
        "data-all-zero": "true" if axis.all_zero else "false",
        **extra,
    }
    return f"<g{_attrs(attrs)}>" + "".join(inner) + "</g>"


def _legend(items: list[tuple[str, str, bool]], width: int, y: float) -> tuple[list[str], float]:
    """Legend entries (name, colour, dashed) in rows from `y`; returns them and the last row's y."""
    out, x = [], 4.0
    for name, color, dashed in items:
        text = _fit(name, min(width - 40, 260))
        need = 26 + _text_px(text) + 16
        if x > 4 and x + need > width:
            x, y = 4.0, y + LINE
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 20:.1f}" y2="{y - 4:.1f}" stroke="{color}" stroke-width="2.5"{dash}/>'
            f'<text x="{x + 26:.1f}" y="{y:.1f}" font-size="{FONT}" fill="{INK}">{_e(text)}</text>'
        )
        x += need
    return out, y


def bar_chart(
    title: str,
    bars: list[tuple[str, float]],
    y_label: str = "",
    colors: dict[str, str] | None = None,
    *,
    limits: dict[str, float] | None = None,
    width: int = WIDTH,
    plot_height: int = PLOT_HEIGHT,
) -> str:
    """Vertical bars from 0, one per (label, value); `limits` {label: value} as lines or off-scale notes."""
    if not bars:
        return empty_chart(title, width=width)
    values = [float(v) if _num(v) else 0.0 for _, v in bars]
    limits = {str(k): float(v) for k, v in (limits or {}).items() if _num(v)}
    axis = _YAxis(values, limits, plot_height, zero=True)
    lay = _Layout(title, width, axis.notes({}), y_label, 12 + max(_text_px(s) for s in _tick_labels(axis.ticks)))
    bottom = lay.top + plot_height
    base = axis.y(0.0, lay.top, plot_height)
    slot = lay.plot_w / len(bars)
    names = [" ".join(str(label).split()) for label, _ in bars]
    want = min(max(len(n) for n in names), 14) * FONT * GLYPH + 8
    every = max(1, math.ceil(want / slot))
    # Each bar's figure above it, in full where all fit, else compact, else none (the tooltip has it).
    figures = next(
        (
            f
            for f in ([human_number(v) for v in values], [short_number(v) for v in values])
            if _text_px(max(f, key=len)) <= slot - 2
        ),
        [],
    )
    inner = []
    for i, ((label, _), value) in enumerate(zip(bars, values)):
        x = lay.left + i * slot + slot * 0.15
        y = axis.y(value, lay.top, plot_height)
        color = (colors or {}).get(label, COLORS[0])
        inner.append(
            f'<rect data-part="bar" data-value="{_plain(value)}" x="{x:.1f}" y="{min(y, base):.1f}" '
            f'width="{slot * 0.7:.1f}" height="{abs(base - y):.1f}" fill="{_e(color)}">'
            f"<title>{_e(label)}: {_e(short_number(value))}</title></rect>"
        )
        if figures:
            inner.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{min(y, base) - 4:.1f}" font-size="{FONT}" text-anchor="middle" '
                f'fill="{INK}">{_e(figures[i])}</text>'
            )
    body = list(lay.body) + _y_grid(axis, lay, plot_height)
    for i, name in enumerate(names):
        if i % every == 0:
            cx = lay.left + (i + 0.5) * slot
            body.append(
                f'<text x="{cx:.1f}" y="{bottom + FONT + 4}" font-size="{FONT}" text-anchor="middle" fill="{INK}">'
                f"{_e(_fit(name, slot * every - 6))}</text>"
            )
    body.append(_plot_group(axis, lay, plot_height, inner + _limit_lines(axis, lay, plot_height), {}))
    return _svg("bar", title, width, bottom + FONT + 12, body)


def _clip_at(points: list[tuple[datetime, float]], end: datetime) -> list[tuple[datetime, float]]:
    """A projection cut at `end`, its last segment interpolated to it."""
    kept = [p for p in points if _ts(p[0]) <= _ts(end)]
    later = [p for p in points if _ts(p[0]) > _ts(end)]
    if kept and later and _ts(kept[-1][0]) < _ts(end):
        (a, va), (b, vb) = kept[-1], later[0]
        share = (_ts(end) - _ts(a)) / (_ts(b) - _ts(a))
        kept.append((end, va + (vb - va) * share))
    return kept


def line_chart(
    title: str,
    series: dict[str, list[tuple[datetime, float]]],
    y_label: str = "",
    limits: dict[str, float] | None = None,
    dashed: set[str] | None = None,
    markers: list[tuple[datetime, str]] | None = None,
    *,
    width: int = WIDTH,
    horizon: datetime | None = None,
    notes: list[str] | None = None,
    limit_notes: dict[str, str] | None = None,
    colors: dict[str, str] | None = None,
    plot_height: int = PLOT_HEIGHT,
) -> str:
    """Lines over time: `series` {name: [(when, value)]}; `limits` {label: value} as lines, or as notes
    when off the scale; `dashed` the series that are projections, cut at `horizon` (default
    chart_horizon() of the measured series); `markers` vertical lines at (when, label), stated in a note
    when outside the time axis; `notes` more lines of text above the plot; `limit_notes` {label: text}
    said of a limit in its note (e.g. when it is reached); `colors` {name: colour} of some series."""
    dashed = set(dashed or ())
    limits = {str(k): float(v) for k, v in (limits or {}).items() if _num(v)}
    clean = {
        name: sorted(((t, float(v)) for t, v in pts if isinstance(t, datetime) and _num(v)), key=lambda p: _ts(p[0]))
        for name, pts in series.items()
    }
    measured = [t for name, pts in clean.items() if name not in dashed for t, _ in pts]
    if horizon is None and measured:
        horizon = chart_horizon(min(measured, key=_ts), max(measured, key=_ts))
    if horizon is not None:
        clean = {n: _clip_at(p, horizon) if n in dashed else p for n, p in clean.items()}
    points = [p for pts in clean.values() for p in pts]
    if not points:
        return empty_chart(title, width=width, notes=notes)
    t0, t1 = min(_ts(t) for t, _ in points), max(_ts(t) for t, _ in points)
    shown, missed = [], []
    for when, label in markers or []:
        at = _ts(when)
        if at < t0 or (horizon is not None and at > _ts(horizon)):
            missed.append((when, label))
        else:
            shown.append((at, when, label))
            t1 = max(t1, at)
    if t1 == t0:
        t0, t1 = t0 - 43200, t1 + 43200
    axis = _YAxis([v for _, v in points], limits, plot_height)
    end_day = datetime.fromtimestamp(t1, timezone.utc).strftime("%Y-%m-%d")
    start_day = datetime.fromtimestamp(t0, timezone.utc).strftime("%Y-%m-%d")
    all_notes = [(n, {"data-part": "note", "data-note": "text"}) for n in notes or []] + axis.notes(limit_notes or {})
    for when, label in missed:
        where = f"after this chart's end ({end_day})" if _ts(when) > t1 else f"before this chart's start ({start_day})"
        arrow = "→" if _ts(when) > t1 else "←"
        all_notes.append((f"{arrow} {label}: {where}", {"data-part": "note", "data-note": "off-horizon"}))
    lay = _Layout(title, width, all_notes, y_label, 12 + max(_text_px(s) for s in _tick_labels(axis.ticks)))
    bottom = lay.top + plot_height

    def xy(t: datetime, v: float) -> tuple[float, float]:
        return lay.left + lay.plot_w * (_ts(t) - t0) / (t1 - t0), axis.y(v, lay.top, plot_height)

    inner = _limit_lines(axis, lay, plot_height)
    for at, _, label in shown:
        x = lay.left + lay.plot_w * (at - t0) / (t1 - t0)
        anchor, dx = ("end", -4) if x > lay.left + lay.plot_w / 2 else ("start", 4)
        inner.append(
            f'<line data-part="marker" x1="{x:.1f}" y1="{lay.top}" x2="{x:.1f}" y2="{bottom}" stroke="#dc2626" '
            f'stroke-dasharray="4 3"/><text x="{x + dx:.1f}" y="{lay.top + FONT}" font-size="{FONT}" '
            f'text-anchor="{anchor}" fill="#b91c1c">{_e(_fit(label, lay.plot_w / 2))}</text>'
        )
    legend = []
    for i, (name, pts) in enumerate(clean.items()):
        color = _e((colors or {}).get(name, COLORS[i % len(COLORS)]))
        legend.append((name, color, name in dashed))
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(t, v) for t, v in pts))
        dash = ' data-projected="true" stroke-dasharray="6 4"' if name in dashed else ""
        inner.append(
            f'<polyline data-part="series" data-series="{_e(name)}" points="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2"{dash}><title>{_e(name)}</title></polyline>'
        )
        for t, v in pts if len(pts) <= 40 else []:
            x, y = xy(t, v)
            inner.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_e(name)} '
                f"{t:%Y-%m-%d %H:%M}: {_e(human_number(v))}</title></circle>"
            )
    body = list(lay.body) + _y_grid(axis, lay, plot_height)
    for at, label in _time_ticks(t0, t1, lay.plot_w):
        x = lay.left + lay.plot_w * (at - t0) / (t1 - t0)
        anchor = "start" if x - lay.left < 30 else "end" if lay.right - x < 30 else "middle"
        body.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#9ca3af"/>'
            f'<text x="{x:.1f}" y="{bottom + FONT + 6}" font-size="{FONT}" text-anchor="{anchor}" fill="{INK}">{label}</text>'
        )
    x_attrs = {
        "data-x-min": datetime.fromtimestamp(t0, timezone.utc).isoformat(),
        "data-x-max": datetime.fromtimestamp(t1, timezone.utc).isoformat(),
    }
    body.append(_plot_group(axis, lay, plot_height, inner, x_attrs))
    rows, last = _legend(legend, width, bottom + FONT + 6 + LINE + 2)
    return _svg("line", title, width, last + 8, body + rows)


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
        return empty_chart(title, width=width)
    size = max(3.0, min(14.0, (width - 8) / len(cells) - 2))
    body, y = _head(title, width)
    body += [
        f'<rect data-part="cell" x="{4 + i * (size + 2):.1f}" y="{y + 10}" width="{size:.1f}" height="22" rx="2" '
        f'fill="{fill.get(state, "#9ca3af")}"><title>{_e(tip)}</title></rect>'
        for i, (state, tip) in enumerate(cells)
    ]
    return _svg("strip", title, width, y + 38, body)


def empty_chart(title: str, height: int = 0, *, width: int = WIDTH, notes: list[str] | None = None) -> str:
    """A chart's frame with its title and a clear "no data" note (after any `notes` of the caller)."""
    lines = [(n, {"data-part": "note", "data-note": "text"}) for n in notes or []]
    lines.append(("no data recorded yet", {"data-part": "note", "data-note": "no-data"}))
    body, y = _head(title, width, lines)
    return _svg("empty", title, width, max(height, y + 10), body)
