"""The eval report's SVG charts: horizontal bars (:func:`bar_chart`) and the latency
histogram (:func:`latency_chart`), with the number formats they share with the sections."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from .report_confidence import svg_open as _svg_open
from .report_rows import Row
from .report_stats import histogram, percentile

RIGHT_COLOR, WRONG_COLOR, ERROR_COLOR, LATENCY_COLOR = "#2e9e4f", "#f0b3ae", "#c0392b", "#4a78b5"


@dataclass(frozen=True)
class Bar:
    label: str
    fraction: float  # bar length, 0..1
    text: str  # shown after the bar
    color: str
    rest: str = "#eef0f3"  # the rest of the bar's track


def bar_chart(bars: Sequence[Bar], title: str, label_width: int = 260) -> str:
    """Horizontal bars, one per row, labelled on the left, values on the right."""
    row, bar_width, text_width = 20, 420, 150
    width, height = label_width + bar_width + text_width, row * len(bars) + 8
    parts = [_svg_open(width, height, title)]
    for i, b in enumerate(bars):
        y = 4 + i * row
        length = max(0.0, min(1.0, b.fraction)) * bar_width
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end">'
            f"{escape(_clip(b.label, 38))}</text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{bar_width}" height="{row - 5}" '
            f'fill="{b.rest}"/>'
            f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row - 5}" '
            f'fill="{b.color}"><title>{escape(b.label)}: {escape(b.text)}</title></rect>'
            f'<text x="{label_width + bar_width + 8}" y="{y + 14}">{escape(b.text)}</text>'
        )
    return "".join(parts) + "</svg>"


def latency_chart(rows: Sequence[Row], bins: int = 24) -> str:
    """Histogram of ``latency_ms``, lines with an error stacked in red, p50 and p95 marked."""
    values = [r.latency_ms for r in rows if r.latency_ms is not None]
    width, counts = histogram(values, bins)
    bins = len(counts)
    errors = _error_counts(rows, width, bins)
    left, top, plot_w, plot_h = 50, 20, 720, 220
    peak = max(counts) or 1
    parts = [_svg_open(left + plot_w + 20, top + plot_h + 44, "latency histogram")]
    parts.append(_axes(left, top, plot_w, plot_h, peak, width, bins))
    step = plot_w / bins
    for i, (n, bad) in enumerate(zip(counts, errors, strict=True)):
        parts.append(_histogram_bar(left + i * step, step, top, plot_h, n, bad, peak, width, i))
    for q, dash, anchor in ((50, "4 3", "end"), (95, "2 2", "start")):
        if values:
            x = left + plot_w * percentile(values, q) / (width * bins)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top + plot_h}" '
                f'stroke="#222" stroke-dasharray="{dash}"/>'
                f'<text x="{x:.1f}" y="{top - 8}" class="small" text-anchor="{anchor}">p{q}</text>'
            )
    return "".join(parts) + "</svg>"


def _error_counts(rows: Sequence[Row], width: float, bins: int) -> list[int]:
    """Per histogram bin, the lines with an error."""
    counts = [0] * bins
    for r in rows:
        if r.latency_ms is not None and r.called is None:
            counts[min(int(r.latency_ms // width), bins - 1)] += 1
    return counts


def _histogram_bar(
    x: float, step: float, top: int, plot_h: int, n: int, bad: int, peak: int, width: float, i: int
) -> str:
    if not n:
        return ""
    h, hb = plot_h * n / peak, plot_h * bad / peak
    tip = f"{_ms(i * width)}–{_ms((i + 1) * width)}: {n} lines ({bad} errors)"
    out = (
        f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{step - 2:.1f}" '
        f'height="{h:.1f}" fill="{LATENCY_COLOR}"><title>{escape(tip)}</title></rect>'
    )
    if bad:
        out += (
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - hb:.1f}" width="{step - 2:.1f}" '
            f'height="{hb:.1f}" fill="{ERROR_COLOR}"><title>{escape(tip)}</title></rect>'
        )
    return out


def _axes(left: int, top: int, plot_w: int, plot_h: int, peak: int, width: float, bins: int) -> str:
    """Axes with a tick every few bins (at most 7 ticks)."""
    bottom = top + plot_h
    parts = [
        f'<line x1="{left}" x2="{left + plot_w}" y1="{bottom}" y2="{bottom}" stroke="#555"/>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#555"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{bottom}" text-anchor="end">0</text>',
        f'<text x="{left + plot_w / 2}" y="{bottom + 36}" text-anchor="middle">'
        "latency per request (ms)</text>",
    ]
    every = math.ceil(bins / 6)
    for k in range(0, bins + 1, every):
        x = left + plot_w * k / bins
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#555"/>'
            f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">{_ms(width * k)}</text>'
        )
    return "".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _ms(value: float) -> str:
    """Milliseconds for people: whole ones from 10 ms, 2 digits below (``s`` from 10 s)."""
    if value >= 10000:
        return f"{value / 1000:.3g} s"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"
