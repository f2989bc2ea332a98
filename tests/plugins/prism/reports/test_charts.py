"""Inline SVG charts: scaled to their data, limits drawn or named, projections cut at the chart's
horizon, text legible at the width it is drawn for, everything escaped; read through the attributes a
browser test reads (chart_dom)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "prism_dashboard"))
from chart_dom import read  # noqa: E402
from hostile import ALL, HOSTILE, assert_inert, text_of  # noqa: E402

from prism.reports.charts import (  # noqa: E402
    FONT,
    bar_chart,
    chart_horizon,
    empty_chart,
    human_number,
    line_chart,
    short_number,
    status_strip,
)

UTC = timezone.utc
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PAST, FUTURE = datetime(2019, 1, 1, tzinfo=UTC), datetime(2099, 6, 1, tzinfo=UTC)


def days(start: datetime, values: list[float], step: float = 30) -> list[tuple[datetime, float]]:
    return [(start + timedelta(days=step * i), v) for i, v in enumerate(values)]


def test_charts_are_well_formed_svg_with_their_values():
    bars = bar_chart("Events <by> type", [("failed_login", 150), ("forbidden", 25)])
    lines = line_chart(
        "P95",
        {"p95": days(T0, [300.0 + i for i in range(5)], step=1)},
        "ms",
        limits={"target": 303},
        markers=[(T0 + timedelta(days=4), "limit")],
    )
    strip = status_strip("Health", [("healthy", "18:00"), ("unhealthy", "18:05")])
    for svg in (bars, lines, strip, empty_chart("nothing")):
        read(svg)  # parses: escaped and closed
    assert "Events &lt;by&gt; type" in bars and "failed_login: 150" in bars
    assert "target 303" in lines and "p95 2026-11-03 00:00: 302</title>" in lines and 'data-part="marker"' in lines
    assert strip.count("<rect") == 2 and "#dc2626" in strip
    assert [b[1] for b in read(bars).bars] == [150, 25] and read(lines).limits == {"target": 303}


def test_a_series_at_43_5_percent_of_a_100k_limit_fills_its_plot_and_names_the_limit():
    # The bug: an axis to the limit put 40-43.5k in the bottom 44% and anything smaller flat at zero.
    growing = line_chart("requests", {"measured": days(T0, [40_000, 41_800, 43_500])}, "a day", {"free tier": 100_000})
    flat = line_chart("requests", {"measured": days(T0, [43_500, 43_500, 43_500])}, "a day", {"free tier": 100_000})
    for svg in (growing, flat):
        plot = read(svg)
        assert plot.reach >= 0.8, plot.reach
        assert plot.y_max < 100_000 and plot.limits == {}
        assert plot.off_scale["free tier"].startswith("free tier 100,000 ↑ off scale")
        assert "(43.5% of it)" in plot.note_text
    assert read(flat).y_min == 0 and read(growing).y_min > 0  # a narrow band far from 0 leaves 0 off


@pytest.mark.parametrize(
    ("values", "limit", "drawn"),
    [
        ([310.0, 640.0, 900.0], 1000.0, True),  # near the data: the axis stretches to it, a labelled line
        ([310.0, 320.0, 300.0], 1000.0, False),  # three times the data: a note
        ([435.0, 420.0, 400.0], 32_852.0, False),  # KV writes against the paid plan's amount
        ([0.5, 0.25, 0.75], 0.8, True),
    ],
)
def test_a_limit_is_a_line_within_reach_and_a_note_beyond_it(values, limit, drawn):
    plot = read(line_chart("x", {"v": days(T0, values)}, "", {"limit": limit}))
    assert plot.reach >= 0.6, plot.reach
    if drawn:
        assert plot.limits == {"limit": limit} and "limit" not in plot.off_scale
        assert f"limit {human_number(limit)}" in plot.texts
    else:
        assert plot.limits == {} and plot.off_scale["limit"].startswith(f"limit {human_number(limit)} ↑ off scale")


def test_a_limit_below_the_data_is_named_below_the_axis():
    plot = read(line_chart("x", {"v": days(T0, [9_000, 9_500, 10_000])}, "", {"floor": 100}))
    assert plot.y_min > 100 and "↓ off scale" in plot.off_scale["floor"]


def test_bars_start_at_zero_and_fill_their_plot():
    plot = read(bar_chart("Requests per month", [("2026-01", 410_000), ("2026-02", 435_000)], limits={"cap": 10**7}))
    assert plot.y_min == 0 and plot.reach >= 0.8 and "cap 10,000,000 ↑ off scale" in plot.note_text
    assert ">435,000<" in bar_chart("r", [("2026-02", 435_000)])  # the figure above its bar, for people


def test_a_projection_stops_at_the_horizon_and_a_later_limit_date_is_stated_in_words():
    measured = days(T0, [40_000, 41_000, 42_000])  # 60 days measured
    projected = days(T0 + timedelta(days=75), [42_500 * 1.01**i for i in range(60)])  # five years on
    svg = line_chart(
        "worker_requests",
        {"measured": measured, "projected": projected},
        "a day",
        limits={"free tier": 100_000},
        dashed={"projected"},
        markers=[(datetime(2031, 4, 12, tzinfo=UTC), "free tier 2031-04-12")],
    )
    plot = read(svg)
    horizon = chart_horizon(measured[0][0], measured[-1][0])
    assert horizon == T0 + timedelta(days=120) and plot.x_max == horizon.isoformat()
    assert plot.projected == {"projected"} and max(x for x, _ in plot.series["projected"]) <= plot.right + 0.05
    assert plot.span("measured") >= 0.5  # the measured points fill half the time axis, not a sliver
    assert "→ free tier 2031-04-12: after this chart's end (2027-03-01)" in plot.note_text
    assert "2031" not in "".join(t for t in plot.texts if t not in plot.notes)  # no tick runs to 2031


def test_horizons_in_the_past_present_and_future():
    for start in (PAST, T0, FUTURE):
        measured = days(start, [10.0, 12.0])
        plot = read(
            line_chart(
                "x",
                {"m": measured, "p": days(start + timedelta(days=30), [12.0, 14.4, 17.3, 20.7])},
                dashed={"p"},
                markers=[(start - timedelta(days=400), "earlier"), (start + timedelta(days=45), "within")],
            )
        )
        assert plot.x_min == start.isoformat() and plot.x_max == (start + timedelta(days=60)).isoformat()
        assert f"← earlier: before this chart's start ({start:%Y-%m-%d})" in plot.note_text
        assert "within" in plot.texts and str(start.year) in " ".join(plot.texts)
    # Further look-ahead is bounded: a year at most, a month after a single point.
    assert chart_horizon(PAST, FUTURE) == FUTURE + timedelta(days=365)
    assert chart_horizon(T0, T0) == T0 + timedelta(days=30)


@pytest.mark.parametrize(
    ("span", "step", "labels"),
    [
        (timedelta(hours=24), timedelta(hours=1), {"11-02", "06:00", "12:00", "18:00"}),
        (timedelta(days=30), timedelta(days=1), {"2026-11-09", "2026-11-23"}),  # Mondays
        (timedelta(days=180), timedelta(days=1), {"2026-11", "2026-12", "2027-04"}),
        (timedelta(days=730), timedelta(days=30), {"2027-01", "2028-01"}),
    ],
)
def test_time_ticks_at_round_times(span, step, labels):
    points = [(T0 + step * i, float(i)) for i in range(int(span / step) + 1)]
    texts = read(line_chart("x", {"v": points})).texts
    assert labels <= set(texts), texts


def test_text_is_sized_for_the_width_the_chart_is_drawn_at():
    # The dashboard draws at its card's width: 12 px text stays 12 px there (the old 640-wide viewBox
    # squeezed into a 420 px card made it 6.6 px).
    for width in (420, 640):
        for svg in (
            line_chart("x", {"v": days(T0, [1.0, 2.0])}, "ms", width=width),
            bar_chart("x", [("a", 1)], width=width),
            status_strip("x", [("healthy", "t")], width=width),
            empty_chart("x", width=width),
        ):
            plot = read(svg)
            assert plot.view_width == width and plot.max_width == f"{width}px"
            assert min(plot.font_sizes) >= FONT


def test_numbers_are_written_for_people():
    assert [human_number(v) for v in (50_000.0, 50.0, 32_852.4, 310.5, 43.5, 0.25, 0.004, 0, None)] == [
        "50,000",
        "50",
        "32,852",
        "310.5",
        "43.5",
        "0.25",
        "0.004",
        "0",
        "n/a",
    ]
    assert [short_number(v) for v in (1000, 1234, 50_000, 2_500_000, 999_960, 310.5, 2.5)] == [
        "1k",
        "1.2k",
        "50k",
        "2.5M",
        "1M",
        "310",
        "2.5",
    ]
    texts = read(line_chart("x", {"v": days(T0, [40_000.0, 50_000.0])}, "", {"paid plan": 32_852.4})).texts
    assert "20k" in texts and not [t for t in texts if ".0k" in t or t.endswith(".0")]


def test_no_data_is_said_plainly():
    for svg in (
        line_chart("empty", {"p95": []}),
        line_chart("none", {"p95": [(T0, None), (T0, float("nan")), ("not a time", 3.0)]}),
        bar_chart("empty", []),
        status_strip("empty", []),
        empty_chart("empty", notes=["the window ended before GraphQL's 31 days"]),
    ):
        plot = read(svg)
        assert plot.kind == "empty" and plot.notes[-1] == "no data recorded yet"
    zeros = read(line_chart("zeros", {"v": days(T0, [0.0, 0.0, 0.0])}))
    assert zeros.all_zero and (zeros.y_min, zeros.y_max) == (0, 1) and zeros.reach == 0


def test_hostile_strings_in_every_label_are_escaped_text():
    series = {v: days(T0, [1.0, 2.5, 3.0]) for v in HOSTILE.values()}
    svgs = [
        line_chart(
            ALL,
            series,
            ALL,
            limits={ALL: 2.0, HOSTILE["attr"]: 1_000.0},
            dashed={HOSTILE["script"]},
            markers=[(T0, ALL), (FUTURE, HOSTILE["style"])],
            notes=[ALL],
            limit_notes={ALL: ALL, HOSTILE["attr"]: HOSTILE["single"]},
            colors={HOSTILE["script"]: HOSTILE["attr"]},
        ),
        bar_chart(ALL, [(v, 1.0) for v in HOSTILE.values()], ALL, {ALL: HOSTILE["attr"]}, limits={ALL: 10**6}),
        empty_chart(ALL, notes=[ALL]),
        status_strip(ALL, [(v, v) for v in HOSTILE.values()]),
    ]
    for svg in svgs:
        read(svg)  # XML: no control character or stray markup survived
        doc = assert_inert(svg, allowed_tags={"svg"}, style_elements=0)
        assert sum(t == "svg" for t, _ in doc.tags) == 1
        assert HOSTILE["script"] in text_of(doc)
    plot = read(svgs[0])
    # (XML folds a line break in an attribute into a space, so count the series rather than compare names)
    assert len(plot.series) == len(HOSTILE) and plot.off_scale.keys() == {HOSTILE["attr"]}
