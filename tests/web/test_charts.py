"""The server-side SVG charts: numbers, ticks, gaps, escaping and accessibility."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from quiver.web.charts import (
    PALETTE,
    TEXT,
    Bar,
    Series,
    bar_chart,
    format_value,
    line_chart,
    nice_ticks,
    sparkline,
    time_label,
    time_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 12, 6, 21, 0, tzinfo=UTC).timestamp()


def parsed(svg: str) -> ET.Element:
    """The chart as XML (it must be well formed), checked to be an accessible image."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox", ""))
    if root.get("width") != "100%":  # a sparkline: its own size
        assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    else:  # a chart: as wide as its container, its height following
        assert root.get("height") is None
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def minutes(*values: float | None) -> tuple[tuple[float, float | None], ...]:
    return tuple((T0 + 60 * i, value) for i, value in enumerate(values))


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0, "count", "0"),
        (7, "count", "7"),
        (12.5, "count", "12.5"),
        (999, "count", "999"),
        (1234, "count", "1.2k"),
        (12_345, "count", "12.3k"),
        (999_960, "count", "1M"),
        (3_400_000, "count", "3.4M"),
        (5.6e9, "count", "5.6G"),
        (-1500, "count", "-1.5k"),
        (0.25, "ms", "0.25 ms"),
        (250, "ms", "250 ms"),
        (999.96, "ms", "1 s"),
        (1500, "ms", "1.5 s"),
        (90_000, "ms", "1.5 min"),
        (512, "bytes", "512 B"),
        (1_200_000, "bytes", "1.2 MB"),
        (0.025, "percent", "2.5%"),
        (1, "percent", "100%"),
        (1234.5, "usd", "$1.2k"),
        (0.42, "usd", "$0.42"),
    ],
)
def test_values_are_short_with_their_unit(value: float, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 97, [0, 25, 50, 75, 100]),
        (0, 1234, [0, 500, 1000, 1500]),
        (0, 1, [0, 0.25, 0.5, 0.75, 1]),
        (0, 0.07, [0, 0.02, 0.04, 0.06, 0.08]),
        (-30, 45, [-40, -20, 0, 20, 40, 60]),
        (0, 0, [0, 0.25, 0.5, 0.75, 1]),
        (5, 5, [0, 2.5, 5, 7.5, 10]),
        (0, 3_400_000, [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000]),
    ],
)
def test_axis_ticks_are_round_numbers_around_the_data(
    low: float, high: float, ticks: list[float]
) -> None:
    assert nice_ticks(low, high) == ticks


def test_time_ticks_fall_on_round_times_in_utc() -> None:
    ticks, step = time_ticks(T0 + 30, T0 + 3600)
    assert step == 600
    labels = [time_label(t, step) for t in ticks]
    assert labels == ["21:10", "21:20", "21:30", "21:40", "21:50", "22:00"]
    ticks, step = time_ticks(T0 + 30, T0 + 3600, count=4)
    assert step == 900 and time_label(ticks[0], step) == "21:15"
    assert time_label(T0 + 5, 1) == "21:00:05"
    ticks, step = time_ticks(T0, T0 + 7 * 86400)
    assert step == 2 * 86400 and time_label(ticks[0], step) == "07 Dec"
    assert time_ticks(T0, T0) == ([T0], 1.0)
    ticks, step = time_ticks(T0, T0 + 20 * 365 * 86400)  # (years: steps of whole days)
    assert 2 <= len(ticks) <= 7 and step % 86400 == 0


def test_a_line_chart_has_axes_a_legend_and_a_summary() -> None:
    series = [
        Series("p50", minutes(12, 15, 11, 14)),
        Series("p95", minutes(40, 80, 55, 60)),
        Series("p99", minutes(90, 180, 120, 1400)),
    ]
    root = parsed(line_chart(series, title="Latency", unit="ms"))
    shown = texts(root)
    assert {"0 ms", "500 ms", "1 s", "1.5 s"} <= set(shown)  # value axis, with units
    assert {"21:00", "21:01", "21:02", "21:03"} <= set(shown)  # time axis
    assert {"p50", "p95", "p99"} <= set(shown)  # legend
    desc = root.findtext(f"{SVG}desc") or ""
    assert "From 2026-12-06 21:00 to 2026-12-06 21:03 UTC" in desc
    assert "p99: from 90 ms to 1.4 s, last 1.4 s." in desc
    assert root.findtext(f"{SVG}title") == "Latency"
    paths = list(root.iter(f"{SVG}path"))
    assert len(paths) == 3
    assert [p.get("stroke-dasharray") for p in paths] == [None, "6 3", "2 3"]  # not colour alone


def test_a_time_label_at_the_right_edge_ends_there_and_is_not_cut_off() -> None:
    root = parsed(line_chart([Series("requests", minutes(1, 2, 3, 4))], title="Requests"))
    anchors = {t.text: t.get("text-anchor") for t in root.iter(f"{SVG}text")}
    assert anchors["21:03"] == "end"  # the last minute, at the right edge
    assert anchors["21:01"] == "middle"


def test_a_missing_point_is_a_gap_and_a_lone_point_a_dot() -> None:
    root = parsed(line_chart([Series("p95", minutes(10, 20, None, 30, None, 25, 26))], title="x"))
    [path] = root.iter(f"{SVG}path")
    assert path.get("d", "").count("M") == 2  # two runs: 10-20 and 25-26
    assert len(list(root.iter(f"{SVG}circle"))) == 1  # 30, alone between gaps
    assert "2 missing" in (root.findtext(f"{SVG}desc") or "")


def test_one_point_is_drawn() -> None:
    root = parsed(line_chart([Series("requests", minutes(42))], title="Requests"))
    assert len(list(root.iter(f"{SVG}circle"))) == 1
    assert "requests: from 42 to 42, last 42." in (root.findtext(f"{SVG}desc") or "")
    assert "21:00" in texts(root)


@pytest.mark.parametrize("series", [[], [Series("p50", ())], [Series("p50", minutes(None, None))]])
def test_a_chart_without_data_says_so(series: list[Series]) -> None:
    root = parsed(line_chart(series, title="Latency", unit="ms"))
    assert "No data" in texts(root)
    assert root.findtext(f"{SVG}desc") == "No data."
    assert not list(root.iter(f"{SVG}path"))


def test_names_from_users_are_escaped() -> None:
    evil = '<script>alert("x")</script>&\x00'
    charts = [
        line_chart([Series(evil, minutes(1, 2))], title=evil),
        bar_chart([Bar(evil, 3)], title=evil),
        sparkline([1, 2], title=evil),
        line_chart([Series("a", minutes(1))], title="t", ident='"><script>'),
    ]
    for svg in charts:
        assert "<script" not in svg
        root = parsed(svg)  # well formed: the name is text, nothing else
        if "&lt;script&gt;" in svg:
            assert root.findtext(f"{SVG}title") == evil.removesuffix("\x00")


def test_a_bar_chart_shows_each_label_and_value() -> None:
    bars = [Bar("acme-app", 3_400_000), Bar("shop", 1234), Bar("x" * 50, 0)]
    root = parsed(bar_chart(bars, title="Top consumers"))
    shown = texts(root)
    assert {"acme-app", "3.4M", "shop", "1.2k", "0"} <= set(shown)
    assert "x" * 31 + "\u2026" in shown  # a long label is cut, whole in its tooltip
    rects = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert rects[0] > rects[1] > rects[2] == 0
    assert root.findtext(f"{SVG}desc") == "acme-app: 3.4M; shop: 1.2k; " + "x" * 50 + ": 0."
    spend = parsed(bar_chart([Bar("gpt-4o", 12.5)], title="Spend", unit="usd"))
    assert "$12.5" in texts(spend)
    empty = parsed(bar_chart([], title="Spend"))
    assert empty.findtext(f"{SVG}desc") == "No data."


def test_a_sparkline_marks_its_last_value() -> None:
    root = parsed(sparkline([3, 5, None, 4, 6], title="Requests"))
    assert root.get("viewBox") == "0 0 120 24"
    assert root.findtext(f"{SVG}desc") == "5 values, from 3 to 6, last 6."
    assert len(list(root.iter(f"{SVG}circle"))) == 1
    [path] = root.iter(f"{SVG}path")
    assert path.get("d", "").count("M") == 2
    assert parsed(sparkline([None], title="x")).findtext(f"{SVG}desc") == "No data."


def luminance(colour: str) -> float:
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.03928 else ((channel + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(colour: str, background: str = "#ffffff") -> float:
    high, low = sorted((luminance(colour), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_colours_come_from_css_properties_with_accessible_fallbacks() -> None:
    svg = line_chart([Series(f"s{i}", minutes(i, i + 1)) for i in range(3)], title="t")
    for index, colour in enumerate(PALETTE, start=1):
        assert f"var(--quiver-chart-{index},{colour})" in svg
        assert contrast(colour) >= 3.0  # WCAG 1.4.11: graphics
    assert contrast(TEXT) >= 4.5  # WCAG 1.4.3: text
    assert "var(--quiver-chart-text," in svg
