"""The eval report's confidence section: can the answers' confidence be trusted?

Two charts of ``(confidence, right)`` over every example (an example without a confidence,
an error line, counts as 0): precision against coverage (the surest answers first: how
right are the labels one keeps when keeping that share of them), and a reliability diagram
(answers in tenths of confidence: how often right against how sure; on the diagonal when
calibrated).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .confidence_metrics import confidence_summary
from .confidence_metrics import format_summary as format_confidence

LINE_COLOR = "#4a78b5"  # the report's latency colour
BAR_COLOR = "#2e9e4f"  # the report's right colour
AXIS_COLOR = "#8c959f"
COUNT_COLOR = "#d0d7de"
BINS = 10


def svg_open(width: float, height: float, title: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">'
        f"<title>{escape(title)}</title>"
    )


def _frame(left: int, top: int, w: int, h: int, x_label: str, y_label: str) -> str:
    parts = [
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="{AXIS_COLOR}"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="{AXIS_COLOR}"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        x, y = left + tick * w, top + h - tick * h
        parts.append(
            f'<text x="{x:.1f}" y="{top + h + 14}" text-anchor="middle" class="small">'
            f"{tick:g}</text>"
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="small">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{left + w / 2}" y="{top + h + 30}" text-anchor="middle">{x_label}</text>'
    )
    parts.append(
        f'<text x="12" y="{top + h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + h / 2})">{y_label}</text>'
    )
    return "".join(parts)


def precision_coverage_chart(pairs: Sequence[tuple[float, bool]]) -> str:
    left, top, w, h = 48, 12, 360, 180
    ranked = sorted(pairs, key=lambda pair: -pair[0])
    points, right = [], 0
    for k, (_, ok) in enumerate(ranked, start=1):
        right += ok
        points.append(f"{left + k / len(ranked) * w:.1f},{top + h - right / k * h:.1f}")
    parts = [svg_open(left + w + 20, top + h + 40, "precision against coverage")]
    parts.append(_frame(left, top, w, h, "coverage (surest first)", "precision"))
    area = f"{left},{top + h} {' '.join(points)} {left + w},{top + h}"
    parts.append(f'<polygon points="{area}" fill="{LINE_COLOR}" fill-opacity="0.45"/>')
    parts.append(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE_COLOR}" '
        'stroke-width="2"/>'
    )
    return "".join(parts) + "</svg>"


def reliability_chart(pairs: Sequence[tuple[float, bool]]) -> str:
    left, top, w, h = 48, 12, 360, 180
    bins: list[list[bool]] = [[] for _ in range(BINS)]
    for confidence, ok in pairs:
        bins[min(int(confidence * BINS), BINS - 1)].append(ok)
    parts = [svg_open(left + w + 20, top + h + 40, "reliability diagram")]
    parts.append(_frame(left, top, w, h, "confidence", "share right"))
    slot = w / BINS
    most = max(len(answers) for answers in bins)
    for index, answers in enumerate(bins):
        if not answers:
            continue
        count_h = len(answers) / most * h  # behind: how many answers are this sure
        parts.append(
            f'<rect x="{left + index * slot + 2:.1f}" y="{top + h - count_h:.1f}" '
            f'width="{slot - 4:.1f}" height="{count_h:.1f}" fill="{COUNT_COLOR}"/>'
        )
    for index, answers in enumerate(bins):
        if not answers:
            continue
        share = sum(answers) / len(answers)
        x, bar_h = left + index * slot + 2, max(share * h, 1.0)
        tip = f"confidence {index / BINS:.1f}-{(index + 1) / BINS:.1f}: {sum(answers)}/"
        tip += f"{len(answers)} right"
        parts.append(
            f'<rect x="{x:.1f}" y="{top + h - bar_h:.1f}" width="{slot - 4:.1f}" '
            f'height="{bar_h:.1f}" fill="{BAR_COLOR}"><title>{escape(tip)}</title></rect>'
        )
        parts.append(
            f'<text x="{x + (slot - 4) / 2:.1f}" y="{top + h - bar_h - 3:.1f}" '
            f'text-anchor="middle" class="small">{len(answers)}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top}" stroke="{AXIS_COLOR}" '
        'stroke-dasharray="4 3"/>'
    )
    return "".join(parts) + "</svg>"


def confidence_content(pairs: Sequence[tuple[float, bool]]) -> tuple[str, str]:
    """(charts, note) of the section."""
    note = format_confidence(confidence_summary(pairs)).replace("confidence: ", "")
    note = (
        f"Confidence of {len(pairs)} answers (an error line counts as 0): {note}. "
        "Left, precision of the surest answers at each coverage; right, how often the "
        "answers in each tenth of confidence were right (green; the number is how many, "
        "and the grey bar behind their share of the most crowded tenth), against the "
        "diagonal of a calibrated model."
    )
    return precision_coverage_chart(pairs) + reliability_chart(pairs), note
