"""Inline SVG charts for report.html: horizontal bars, line charts over k, histograms.

Plain strings, no external files or scripts: every chart is an `<svg class="chart">` that a
browser draws offline. Values that are None or not finite are drawn as missing ("-").
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

BAR_COLOR = "#4c78a8"
_BAR_H = 18
_FONT = 'font-family="sans-serif"'


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def nice_max(top: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is >= top (an axis end that reads well)."""
    if not finite(top) or top <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(top))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= top * (1 - 1e-12))


def svg_bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    fmt: str = "{:.4g}",
    *,
    colors: Sequence[str] | None = None,
    width: int = 640,
    label_width: int = 190,
    top: float | None = None,
) -> str:
    """A horizontal bar chart; bars scaled to `top` (default: the largest |value|)."""
    if top is None:
        top = max((abs(v) for v in values if finite(v)), default=0.0)
    top = top or 1.0
    h = 28 + _BAR_H * len(labels)
    span = width - label_width - 64
    parts = [
        f'<svg class="chart" width="{width}" height="{h}" role="img" aria-label="{esc(title)}" '
        f'{_FONT}><text x="0" y="16" font-size="13" font-weight="bold">{esc(title)}</text>'
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 24 + i * _BAR_H
        w = abs(v) / top * span if finite(v) else 0.0
        color = colors[i] if colors else BAR_COLOR
        text = fmt.format(v) if finite(v) else "-"
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{esc(_clip(str(label), label_width))}'
            f"<title>{esc(label)}</title></text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{w:.1f}" height="{_BAR_H - 5}" '
            f'fill="{color}"/><text x="{label_width + w + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{esc(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(label: str, label_width: int) -> str:
    """Cut a label to what fits in label_width pixels at 12px (about 6.5 px a character)."""
    n = max(4, int(label_width / 6.5))
    return label if len(label) <= n else label[: n - 1] + "…"


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a label, one value per x, its color and dash."""

    label: str
    values: Sequence[float | None]
    color: str
    dashed: bool = False
    bold: bool = False


def svg_lines(
    title: str,
    xs: Sequence[int],
    series: Sequence[Series],
    *,
    x_label: str = "k",
    width: int = 540,
    height: int = 280,
) -> str:
    """A line chart: x positions evenly spaced (one per x value), y from 0 to a round maximum.

    Each point carries a <title> (hover text) with its series, x and value.
    """
    left, right, top_pad, bottom = 52, 16, 28, 36
    pw, ph = width - left - right, height - top_pad - bottom
    ymax = nice_max(max((v for s in series for v in s.values if finite(v)), default=0.0))

    def px(i: int) -> float:
        return left + (pw / 2 if len(xs) == 1 else i * pw / (len(xs) - 1))

    def py(v: float) -> float:
        return top_pad + ph - v / ymax * ph

    parts = [
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}" {_FONT}>'
        f'<text x="0" y="16" font-size="13" font-weight="bold">{esc(title)}</text>'
    ]
    for j in range(5):  # horizontal grid lines and y tick labels
        v = ymax * j / 4
        y = py(v)
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.3g}</text>'
        )
    for i, x in enumerate(xs):
        parts.append(
            f'<text x="{px(i):.1f}" y="{top_pad + ph + 16}" font-size="11" '
            f'text-anchor="middle">{esc(x_label)}={esc(x)}</text>'
        )
    for s in series:
        points = [
            (px(i), py(v), v, x)
            for i, (x, v) in enumerate(zip(xs, s.values, strict=True))
            if finite(v)
        ]
        drawn = [(a, b) for a, b, _, _ in points]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        stroke = 3 if s.bold else 1.8
        if len(drawn) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in drawn)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{s.color}" '
                f'stroke-width="{stroke}"{dash}/>'
            )
        for a, b, v, x in points:
            parts.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{3.5 if s.bold else 2.8}" '
                f'fill="{s.color}"><title>{esc(s.label)} {esc(x_label)}={esc(x)}: '
                f"{v:.4f}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def log_histogram(values: pl.Series, title: str) -> str:
    """Counts in power-of-two bins [0], [1], [2,3], [4,7], ...: degree-like data."""
    bins = (
        pl.DataFrame({"v": values})
        .with_columns(b=pl.when(pl.col("v") <= 0).then(-1).otherwise(pl.col("v").log(2).floor()))
        .group_by("b")
        .len()
        .sort("b")
    )
    labels = ["0" if b < 0 else f"{2 ** int(b)}-{2 ** (int(b) + 1) - 1}" for b in bins["b"]]
    return svg_bars(title, labels, [float(x) for x in bins["len"]], "{:,.0f}")


def linear_histogram_of(frame: pl.LazyFrame, column: str, title: str, n_bins: int = 10) -> str:
    """Counts of one column of a lazy frame (e.g. a table scan) in n_bins equal-width bins
    between its minimum and maximum: two streaming aggregations (range, then counts per
    bin), so the column is never materialised."""
    values = pl.col(column).drop_nulls()
    lo, hi = (
        frame.select(values.min().alias("lo"), values.max().alias("hi"))
        .collect(engine="streaming")
        .row(0)
    )
    if lo is None:
        return svg_bars(title, [], [])
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / n_bins or 1.0
    counts = (
        frame.select(values.alias("v"))
        .select(((pl.col("v") - lo) / width).floor().clip(0, n_bins - 1).cast(pl.Int64).alias("b"))
        .group_by("b")
        .len()
        .collect(engine="streaming")
    )
    full = dict(zip(counts["b"].to_list(), counts["len"].to_list(), strict=True))
    labels = [f"{lo + i * width:.3g}" for i in range(n_bins)]
    return svg_bars(title, labels, [float(full.get(i, 0)) for i in range(n_bins)], "{:,.0f}")
