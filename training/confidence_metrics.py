"""How well confidence tells right answers from wrong ones.

``pairs`` are ``(confidence, right)`` for every example of an evaluation; an example with
no confidence (an error line, an engine without token probabilities) counts as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

COVERAGES = (0.5, 0.8, 1.0)


def auroc(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """The chance that a random right answer is surer than a random wrong one (ties
    count half); None when either kind is missing."""
    ranked = sorted(pairs, key=lambda pair: pair[0])
    right = sum(1 for _, ok in ranked if ok)
    wrong = len(ranked) - right
    if not right or not wrong:
        return None
    rank_sum, index = 0.0, 0
    while index < len(ranked):  # average ranks over ties
        end = index
        while end < len(ranked) and ranked[end][0] == ranked[index][0]:
            end += 1
        average = (index + 1 + end) / 2
        rank_sum += average * sum(1 for _, ok in ranked[index:end] if ok)
        index = end
    return (rank_sum - right * (right + 1) / 2) / (right * wrong)


def precision_at(pairs: Sequence[tuple[float, bool]], coverage: float) -> float | None:
    """The share of right answers among the ``coverage`` surest."""
    count = math.ceil(coverage * len(pairs))
    if not count:
        return None
    surest = sorted(pairs, key=lambda pair: -pair[0])[:count]
    return sum(1 for _, ok in surest if ok) / count


def confidence_summary(pairs: Sequence[tuple[float, bool]]) -> dict[str, float | None]:
    summary: dict[str, float | None] = {"auroc": auroc(pairs)}
    for coverage in COVERAGES:
        summary[f"precision_at_{round(coverage * 100)}"] = precision_at(pairs, coverage)
    return summary


def format_summary(summary: dict[str, float | None]) -> str:
    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    parts = [f"AUROC {show(summary['auroc'])}"]
    parts += [
        f"precision {show(summary[f'precision_at_{round(c * 100)}'])} at {c:.0%} coverage"
        for c in COVERAGES
    ]
    return "confidence: " + ", ".join(parts)
