"""A chart's SVG read as a browser test reads the page: through the attributes prism.reports.charts
documents (the plot area's bounds, the series' points, the bars, the limits and the notes)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS = "{http://www.w3.org/2000/svg}"


@dataclass
class Plot:
    kind: str
    view_width: float
    max_width: str
    top: float = 0.0
    bottom: float = 0.0
    left: float = 0.0
    right: float = 0.0
    y_min: float = 0.0
    y_max: float = 0.0
    all_zero: bool = False
    x_min: str = ""
    x_max: str = ""
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    projected: set[str] = field(default_factory=set)
    bars: list[tuple[float, float]] = field(default_factory=list)  # (y of the top, value)
    limits: dict[str, float] = field(default_factory=dict)
    off_scale: dict[str, str] = field(default_factory=dict)  # label: the note's text
    notes: list[str] = field(default_factory=list)  # every note's text, in order
    texts: list[str] = field(default_factory=list)
    font_sizes: list[float] = field(default_factory=list)

    @property
    def note_text(self) -> str:
        """The notes above the plot as one text (a long note wraps over several <text> rows)."""
        return " ".join(self.notes)

    @property
    def reach(self) -> float:
        """The share of the plot's height the data reach, from its bottom edge to the highest point."""
        ys = [y for pts in self.series.values() for _, y in pts] + [y for y, _ in self.bars]
        return (self.bottom - min(ys)) / (self.bottom - self.top)

    def span(self, name: str) -> float:
        """The share of the plot's width a series covers."""
        xs = [x for x, _ in self.series[name]]
        return (max(xs) - min(xs)) / (self.right - self.left)


def read(svg: str) -> Plot:
    root = ET.fromstring(svg)  # well-formed: escaped and closed
    style = dict(p.split(":", 1) for p in root.get("style", "").split(";") if ":" in p)
    plot = Plot(root.get("data-chart"), float(root.get("viewBox").split()[2]), style.get("max-width", ""))
    g = root.find(f"{NS}g[@data-part='plot']")
    if g is not None:
        plot.top, plot.bottom = float(g.get("data-plot-top")), float(g.get("data-plot-bottom"))
        plot.left, plot.right = float(g.get("data-plot-left")), float(g.get("data-plot-right"))
        plot.y_min, plot.y_max = float(g.get("data-y-min")), float(g.get("data-y-max"))
        plot.all_zero = g.get("data-all-zero") == "true"
        plot.x_min, plot.x_max = g.get("data-x-min", ""), g.get("data-x-max", "")
    for el in root.iter():
        assert el.get("class") is None  # a chart adds no class to the page it is in
        part = el.get("data-part")
        if part == "series":
            name = el.get("data-series")
            plot.series[name] = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
            if el.get("data-projected") == "true":
                plot.projected.add(name)
        elif part == "bar":
            plot.bars.append((float(el.get("y")), float(el.get("data-value"))))
        elif part == "limit":
            plot.limits[el.get("data-limit")] = float(el.get("data-value"))
        if el.tag == f"{NS}text":
            plot.texts.append(el.text or "")
            plot.font_sizes.append(float(el.get("font-size")))
            if part == "note":
                plot.notes.append(el.text or "")
            if el.get("data-note") == "off-scale":
                label = el.get("data-limit")
                plot.off_scale[label] = (plot.off_scale.get(label, "") + " " + (el.text or "")).strip()
    return plot
