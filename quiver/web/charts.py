"""Charts drawn on the server as SVG: no JavaScript, no dependencies.

Three pure functions return an ``<svg>`` string to put in a page as it is:

    line_chart([Series("p95", ((t0, 12.0), (t1, None), (t2, 30.5)))], title="Latency", unit="ms")
    bar_chart([Bar("acme-app", 1234), Bar("shop", 800)], title="Top consumers")
    sparkline([3, 5, None, 4], title="Requests")

Every chart is an image with an accessible name and a text summary of its data
(``role="img"``, ``<title>`` and ``<desc>``, named by ``aria-labelledby``), is sized
by its ``viewBox`` (it fills the width of its container and keeps its shape; a
sparkline keeps its own size, which CSS may change), and
takes its colours from CSS custom properties (``--quiver-chart-1`` ...
``--quiver-chart-6``, ``--quiver-chart-text``, ``--quiver-chart-axis``,
``--quiver-chart-grid``), whose fallbacks contrast at least 3:1 with a white
background (WCAG 1.4.11; text 4.5:1).  Series are told apart by their dash
pattern too, not by colour alone.  Names and labels come from users: every text
is escaped, and characters XML cannot hold are dropped.

A point whose value is ``None`` is missing: the line stops there and goes on
after it (a gap), and a point alone between gaps is drawn as a dot.  Times are
seconds since the epoch, labelled in UTC.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Literal

Unit = Literal["count", "ms", "bytes", "usd", "percent"]
Point = tuple[float, float | None]
Scale = Callable[[float], float]

#: the fallback of each series colour (blue, orange, green, magenta, purple, ochre)
PALETTE = ("#0072b2", "#c2410c", "#007a5a", "#a2407e", "#6a3d9a", "#8c6d00")
TEXT, AXIS, GRID = "#1f2328", "#57606a", "#d0d7de"
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")

_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_DAY = 86400
_COUNT = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))
_BYTES = ((1.0, " B"), (1e3, " kB"), (1e6, " MB"), (1e9, " GB"), (1e12, " TB"))
_DURATION = ((1.0, " ms"), (1e3, " s"), (6e4, " min"))
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Series:
    """A named line: ``(time, value)`` points, oldest first; ``None`` is missing."""

    name: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float


# -- numbers -------------------------------------------------------------------------


def format_value(value: float, unit: Unit = "count") -> str:
    """``value`` short and readable: 1.2k, 3.4M; 250 ms, 1.5 s; 12 kB; $1.2k; 2.5%
    (``percent`` takes a fraction: 0.025)."""
    if unit == "ms":
        return _scaled(value, _DURATION)
    if unit == "bytes":
        return _scaled(value, _BYTES)
    if unit == "percent":
        return _digits(value * 100) + "%"
    if unit == "usd":
        text = _scaled(abs(value), _COUNT)
        return ("-$" if value < 0 else "$") + text
    return _scaled(value, _COUNT)


def _scaled(value: float, scales: Sequence[tuple[float, str]]) -> str:
    size = abs(value)
    index = max((i for i, (factor, _) in enumerate(scales) if size >= factor), default=0)
    text = _digits(value / scales[index][0])
    # rounding may reach the next scale up: 999.96 ms is "1 s", not "1000 ms"
    if index + 1 < len(scales) and abs(float(text)) * scales[index][0] >= scales[index + 1][0]:
        index += 1
        text = _digits(value / scales[index][0])
    return text + scales[index][1]


def _digits(number: float) -> str:
    size = abs(number)
    places = 0 if size >= 100 or size == 0 else 1 if size >= 1 else 2
    text = f"{number:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values (steps of 1, 2, 2.5 or 5 times a power of ten)
    from at or below ``low`` to at or above ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("ticks need finite bounds")
    low, high = min(low, high), max(low, high)
    if low == high:  # one value: a range around it (from 0 when it is positive)
        low, high = (0.0, 1.0) if low == 0 else (min(0.0, low * 2), max(0.0, high * 2))
    step = _nice_step((high - low) / max(count - 1, 1))
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [_clean(i * step) for i in range(first, last + 1)]


def _nice_step(raw: float) -> float:
    power = 10.0 ** math.floor(math.log10(raw))
    for nice in (1.0, 2.0, 2.5, 5.0):
        if raw <= nice * power * (1 + 1e-9):
            return nice * power
    return 10.0 * power


def _clean(value: float) -> float:
    cleaned = float(f"{value:.12g}")
    return 0.0 if cleaned == 0 else cleaned


def time_ticks(start: float, end: float, count: int = 6) -> tuple[list[float], float]:
    """Round times (whole minutes, quarter hours, hours, days... in UTC) from
    ``start`` to ``end``, about ``count`` of them, and the step between them."""
    span = max(end - start, 0.0)
    step = next((s for s in _STEPS if span / s <= count), None)
    if step is None:
        days = max(1, math.ceil(span / _DAY / count))
        step = next((d for d in (1, 2, 7, 14, 28, 56, 112, 364) if d >= days), days) * _DAY
    first = math.ceil(start / step) * step
    ticks = [float(first + i * step) for i in range(int((end - first) // step) + 1)]
    return (ticks or [float(start)]), float(step)


def time_label(moment: float, step: float) -> str:
    when = datetime.fromtimestamp(moment, UTC)
    if step >= _DAY or (when.hour == 0 and when.minute == 0 and step >= 3600):
        return when.strftime("%d %b")
    return when.strftime("%H:%M:%S" if when.second else "%H:%M")


# -- charts --------------------------------------------------------------------------


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: Unit = "count",
    width: int = 640,
    height: int = 260,
    ident: str | None = None,
) -> str:
    """A time series chart: a line per series, value and time axes, a legend."""
    left, right, top, bottom = 64, 16, 12, 24
    names = [s.name for s in series]
    legend_rows = _legend_rows(names, width - left - right)
    plot_bottom = height - bottom - 20 * len(legend_rows)
    times = [t for s in series for t, _ in s.points]
    values = [v for s in series for _, v in s.points if v is not None and math.isfinite(v)]
    parts = _frame(title, _line_summary(series, unit, times), width, height, ident, title + unit)
    x0, x1, y0, y1 = left, width - right, top, plot_bottom
    if not values:
        parts.append(_rect_outline(x0, y0, x1, y1))
        parts.append(_label((x0 + x1) / 2, (y0 + y1) / 2, "No data", "middle", "qc-text"))
        return "".join([*parts, "</svg>"])
    ticks = nice_ticks(min(0.0, min(values)), max(values))
    low, high = ticks[0], ticks[-1]
    start, end = min(times), max(times)

    def x_of(moment: float) -> float:
        return (x0 + x1) / 2 if end == start else x0 + (moment - start) / (end - start) * (x1 - x0)

    def y_of(value: float) -> float:
        return y1 - (value - low) / (high - low) * (y1 - y0)

    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line class="qc-grid" x1="{x0}" x2="{x1}" y1="{_n(y)}" y2="{_n(y)}"/>')
        parts.append(_label(x0 - 6, y + 4, format_value(tick, unit), "end", "qc-text"))
    moments, step = time_ticks(start, end, max(2, (x1 - x0) // 100))  # (a label per 100)
    for moment in moments:
        x = x_of(moment)
        parts.append(f'<line class="qc-axis" x1="{_n(x)}" x2="{_n(x)}" y1="{y1}" y2="{y1 + 4}"/>')
        parts.append(_label(x, y1 + 16, time_label(moment, step), _anchor(x, x1), "qc-text"))
    parts.append(f'<line class="qc-axis" x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}"/>')
    for index, line in enumerate(series):
        parts.append(_polyline(line.points, index, x_of, y_of, line.name))
    parts.extend(_legend(legend_rows, x0, plot_bottom + bottom + 12))
    return "".join([*parts, "</svg>"])


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    unit: Unit = "count",
    width: int = 640,
    ident: str | None = None,
) -> str:
    """Horizontal bars, largest first as given: a label, a bar and its value each."""
    row, top, bottom = 24, 8, 24
    height = top + row * max(len(bars), 1) + bottom
    label_width = min(width * 0.35, max((len(b.label) for b in bars), default=0) * 7 + 12)
    x0, x1 = label_width + 4, width - 64
    summary = _bar_summary(bars, unit)
    parts = _frame(title, summary, width, height, ident, title + unit)
    if not bars:
        parts.append(_label(width / 2, height / 2, "No data", "middle", "qc-text"))
        return "".join([*parts, "</svg>"])
    ticks = nice_ticks(0.0, max(max(b.value for b in bars), 0.0))
    high = ticks[-1]
    base = top + row * len(bars)
    for tick in ticks:
        x = x0 + tick / high * (x1 - x0)
        parts.append(f'<line class="qc-grid" x1="{_n(x)}" x2="{_n(x)}" y1="{top}" y2="{base}"/>')
        parts.append(_label(x, base + 16, format_value(tick, unit), _anchor(x, x1), "qc-text"))
    for index, bar in enumerate(bars):
        y = top + index * row
        size = max(bar.value, 0.0) / high * (x1 - x0)
        shown = bar.label if len(bar.label) <= 32 else bar.label[:31] + "\u2026"
        parts.append(f"<g><title>{_text(bar.label)}: {format_value(bar.value, unit)}</title>")
        parts.append(_label(x0 - 6, y + row / 2 + 4, shown, "end", "qc-text"))
        parts.append(
            f'<rect class="qc-f1" x="{_n(x0)}" y="{y + 4}" width="{_n(size)}" height="{row - 8}"/>'
        )
        value = format_value(bar.value, unit)
        parts.append(_label(x0 + size + 4, y + row / 2 + 4, value, "start", "qc-text"))
        parts.append("</g>")
    parts.append(f'<line class="qc-axis" x1="{_n(x0)}" x2="{_n(x0)}" y1="{top}" y2="{base}"/>')
    return "".join([*parts, "</svg>"])


def sparkline(
    values: Sequence[float | None],
    *,
    title: str,
    unit: Unit = "count",
    width: int = 120,
    height: int = 24,
    ident: str | None = None,
) -> str:
    """A small line without axes (evenly spaced values; ``None`` is a gap), its last
    value marked."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if known:
        summary = (
            f"{len(values)} values, from {format_value(min(known), unit)} to "
            f"{format_value(max(known), unit)}, last {_last(values, unit)}."
        )
    else:
        summary = "No data."
    parts = _frame(title, summary, width, height, ident, title + unit, small=True)
    if known:
        low, high = min(min(known), 0.0), max(known)
        span = (high - low) or 1.0

        def x_of(index: float) -> float:
            return 1 + index / max(len(values) - 1, 1) * (width - 4)

        def y_of(value: float) -> float:
            return height - 2 - (value - low) / span * (height - 4)

        points = tuple((float(i), v) for i, v in enumerate(values))
        parts.append(_polyline(points, 0, x_of, y_of, None))
        last = max(i for i, v in enumerate(values) if v is not None and math.isfinite(v))
        y = y_of(known[-1])
        parts.append(f'<circle class="qc-f1" cx="{_n(x_of(last))}" cy="{_n(y)}" r="2"/>')
    return "".join([*parts, "</svg>"])


# -- pieces --------------------------------------------------------------------------


def _frame(
    title: str,
    summary: str,
    width: int,
    height: int,
    ident: str | None,
    seed: str,
    *,
    small: bool = False,
) -> list[str]:
    """The ``<svg>`` start: accessible name and description, and the styles."""
    name = ident or "qc-" + hashlib.sha256((seed + summary).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    size = 10 if small else 12
    # a chart fills its container's width; a sparkline, inline in text or a table
    # cell, keeps its own size (and its viewBox lets CSS scale it)
    sized = f'width="{width}" height="{height}"' if small else 'width="100%"'
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="quiver-chart" role="img" '
        f'viewBox="0 0 {width} {height}" {sized} preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{name}-title {name}-desc" font-family="system-ui, sans-serif" '
        f'font-size="{size}">',
        f'<title id="{name}-title">{_text(title)}</title>',
        f'<desc id="{name}-desc">{_text(summary)}</desc>',
        _STYLE,
    ]


def _style() -> str:
    rules = [
        f".quiver-chart .qc-text{{fill:var(--quiver-chart-text,{TEXT})}}",
        f".quiver-chart .qc-axis{{stroke:var(--quiver-chart-axis,{AXIS});stroke-width:1}}",
        f".quiver-chart .qc-grid{{stroke:var(--quiver-chart-grid,{GRID});stroke-width:1}}",
        ".quiver-chart .qc-line{fill:none;stroke-width:2;stroke-linejoin:round}",
    ]
    for index, colour in enumerate(PALETTE, start=1):
        var = f"var(--quiver-chart-{index},{colour})"
        rules.append(f".quiver-chart .qc-s{index}{{stroke:{var}}}")
        rules.append(f".quiver-chart .qc-f{index}{{fill:{var}}}")
    return "<style>" + "".join(rules) + "</style>"


_STYLE = _style()


def _polyline(
    points: Iterable[Point],
    index: int,
    x_of: Scale,
    y_of: Scale,
    name: str | None,
) -> str:
    """The path of a series, broken at missing points; a lone point is a dot."""
    colour = index % len(PALETTE) + 1
    runs: list[list[tuple[float, float]]] = [[]]
    for moment, value in points:
        if value is None or not math.isfinite(value):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x_of(moment), y_of(value)))
    path = " ".join(
        "M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in run) for run in runs if len(run) > 1
    )
    dash = DASHES[index % len(DASHES)]
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f"<g><title>{_text(name)}</title>" if name is not None else "<g>"]
    if path:
        out.append(f'<path class="qc-line qc-s{colour}"{dashed} d="{path}"/>')
    for run in runs:
        if len(run) == 1:
            x, y = run[0]
            out.append(f'<circle class="qc-f{colour}" cx="{_n(x)}" cy="{_n(y)}" r="3"/>')
    out.append("</g>")
    return "".join(out)


def _legend_rows(names: Sequence[str], room: float) -> list[list[tuple[int, str]]]:
    rows: list[list[tuple[int, str]]] = []
    used = room
    for index, name in enumerate(names):
        size = _legend_width(name)
        if not rows or used + size > room:
            rows.append([])
            used = 0.0
        rows[-1].append((index, name))
        used += size
    return rows


def _legend_width(name: str) -> float:
    return 48 + 7 * min(len(name), 40)  # the swatch, the name, a gap


def _legend(rows: list[list[tuple[int, str]]], x: float, y: float) -> list[str]:
    parts = ['<g class="qc-legend">']
    for number, row in enumerate(rows):
        left = x
        top = y + 20 * number
        for index, name in row:
            colour = index % len(PALETTE) + 1
            dash = DASHES[index % len(DASHES)]
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line class="qc-line qc-s{colour}"{dashed} x1="{_n(left)}" '
                f'x2="{_n(left + 24)}" y1="{_n(top - 4)}" y2="{_n(top - 4)}"/>'
            )
            shown = name if len(name) <= 40 else name[:39] + "\u2026"
            parts.append(_label(left + 30, top, shown, "start", "qc-text"))
            left += _legend_width(name)
    parts.append("</g>")
    return parts


def _anchor(x: float, right: float) -> str:
    """How an axis label at ``x`` sits on it: centred, but ending there near the
    right edge ``right`` of the plot, where a centred label would be cut off."""
    return "end" if x > right - 30 else "middle"


def _label(x: float, y: float, text: str, anchor: str, css: str) -> str:
    return (
        f'<text class="{css}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}">{_text(text)}</text>'
    )


def _rect_outline(x0: float, y0: float, x1: float, y1: float) -> str:
    return (
        f'<rect class="qc-grid" x="{x0}" y="{y0}" width="{_n(x1 - x0)}" '
        f'height="{_n(y1 - y0)}" fill="none"/>'
    )


def _line_summary(series: Sequence[Series], unit: Unit, times: list[float]) -> str:
    if not any(v is not None for s in series for _, v in s.points):
        return "No data."
    parts = [f"From {_when(min(times))} to {_when(max(times))} UTC."]
    for line in series:
        known = [v for _, v in line.points if v is not None and math.isfinite(v)]
        missing = len(line.points) - len(known)
        if not known:
            parts.append(f"{line.name}: no data.")
            continue
        text = (
            f"{line.name}: from {format_value(min(known), unit)} to "
            f"{format_value(max(known), unit)}, last {_last([v for _, v in line.points], unit)}"
        )
        parts.append(text + (f", {missing} missing." if missing else "."))
    return " ".join(parts)


def _bar_summary(bars: Sequence[Bar], unit: Unit) -> str:
    if not bars:
        return "No data."
    shown = "; ".join(f"{b.label}: {format_value(b.value, unit)}" for b in bars[:10])
    more = f"; and {len(bars) - 10} more" if len(bars) > 10 else ""
    return shown + more + "."


def _when(moment: float) -> str:
    when = datetime.fromtimestamp(moment, UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S" if when.second else "%Y-%m-%d %H:%M")


def _last(values: Sequence[float | None], unit: Unit) -> str:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return format_value(known[-1], unit) if known else "none"


def _text(text: str) -> str:
    """``text`` safe in an SVG text node or attribute."""
    return escape(_NOT_XML.sub("", text), quote=True)


def _n(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")
