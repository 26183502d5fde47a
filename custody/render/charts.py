"""Charts for report.html: the geometry of simple bar charts, drawn as inline SVG by the
templates (templates/charts.html.j2), so that every label is escaped by Jinja2.

Two shapes cover what an inspector reads: horizontal bars (one row per rule, force, suite
or step of the funnel; a bar may be stacked, e.g. breach / cannot assess / compliant) and
columns (one per month, quarter or band of hours). Each chart scales to the width of its
container (a `viewBox`, no fixed width), so it fits a 400 px phone and an A4 page alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# Geometry of a column chart in SVG user units; the chart is scaled to its container.
_WIDTH = 480
_PAD = 6


@dataclass(frozen=True)
class Segment:
    x: float
    """Left edge, in percent of the bar's full length."""
    width: float
    css_class: str
    title: str


@dataclass(frozen=True)
class BarRow:
    label: str
    segments: tuple[Segment, ...]
    value_text: str


@dataclass(frozen=True)
class HorizontalBars:
    """One labelled bar per row. The label and value are HTML text beside a small SVG bar
    (so they stay readable at any width: on a narrow screen the label goes above the bar);
    each bar's SVG is 100 units long."""

    title: str
    rows: tuple[BarRow, ...]
    legend: tuple[tuple[str, str], ...] = ()
    """(css class, label) pairs shown under the title."""
    kind: str = "hbar"


@dataclass(frozen=True)
class Column:
    label: str
    x: float
    y: float
    width: float
    height: float
    value_text: str
    css_class: str


@dataclass(frozen=True)
class Columns:
    """Vertical columns over a baseline; labels are shown below every `label_every`th column."""

    title: str
    width: int
    height: int
    baseline: float
    columns: tuple[Column, ...]
    y_axis: tuple[tuple[float, str], ...] = field(default_factory=tuple)
    """(y, label) gridlines."""
    label_every: int = 1
    kind: str = "columns"


def horizontal_bars(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[float, str, str]], str]],
    *,
    scale_max: float | None = None,
    legend: Sequence[tuple[str, str]] = (),
) -> HorizontalBars:
    """`rows`: (label, [(value, css class, tooltip), ...] stacked left to right, text shown
    after the bar). Bars are scaled to `scale_max` (default: the largest row total)."""
    totals = [sum(value for value, _, _ in segments) for _, segments, _ in rows]
    top = scale_max if scale_max is not None else max(totals, default=0.0)
    drawn = []
    for label, segments, text in rows:
        x = 0.0
        pieces = []
        for value, css_class, tooltip in segments:
            width = min(100.0 * value / top, 100.0 - x) if top > 0 else 0.0
            if width > 0:
                pieces.append(Segment(round(x, 3), round(width, 3), css_class, tooltip))
            x += width
        drawn.append(BarRow(label, tuple(pieces), text))
    return HorizontalBars(title, tuple(drawn), tuple(legend))


def columns(
    title: str,
    values: Sequence[tuple[str, float, str]],
    *,
    scale_max: float | None = None,
    css_class: str = "bar",
    percent_axis: bool = False,
) -> Columns:
    """`values`: (label, value, text shown on the column). With `percent_axis`, values are
    shares (0-1) and the axis reads 0%-100% of the largest."""
    height = 220
    top_margin, bottom_margin, left = 18, 42, 56
    plot_height = height - top_margin - bottom_margin
    top = scale_max if scale_max is not None else max((v for _, v, _ in values), default=0.0)
    n = max(len(values), 1)
    slot = (_WIDTH - left - _PAD) / n
    width = max(slot * 0.7, 1.0)
    baseline = float(height - bottom_margin)
    drawn = []
    for index, (label, value, text) in enumerate(values):
        h = plot_height * value / top if top > 0 else 0.0
        x = left + index * slot + (slot - width) / 2
        drawn.append(Column(label, round(x, 2), round(baseline - h, 2), round(width, 2), round(h, 2), text, css_class))
    axis = []
    if top > 0:
        for fraction in (0.0, 0.5, 1.0):
            value = top * fraction
            label = f"{value:.0%}" if percent_axis else f"{value:,.0f}"
            axis.append((round(baseline - plot_height * fraction, 2), label))
    # A label needs about 7 units a character and a gap: show every k-th so that none overlap.
    room = 7 * max((len(label) for label, _, _ in values), default=1) + 10
    label_every = 1 if slot >= room else int(-(-room // slot))
    return Columns(title, _WIDTH, height, baseline, tuple(drawn), tuple(axis), label_every)
