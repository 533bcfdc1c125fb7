"""The eval report's aggregates over rows: exact match per key (tool, category), the
confusion of expected against called tools, outcomes of the expected calls, the arguments
most often wrong, error types, and the percentile and histogram of latencies."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .report_diff import WrongArgument
from .report_rows import Row
from .scoring import NO_CALL

ERROR = "(error)"
OTHER = "(other tools)"
CONFUSION_TOOLS = 16  # the most frequent tools get a row and column; the rest are folded
EXAMPLES = 3


@dataclass
class Stat:
    name: str
    n: int = 0
    right: int = 0
    errors: int = 0

    @property
    def accuracy(self) -> float:
        return self.right / self.n if self.n else 0.0


@dataclass
class ArgumentStat:
    key: str
    wrong: int
    compared: int
    examples: list[tuple[Row, WrongArgument]]


def accuracy_by(rows: Iterable[Row], keys: Callable[[Row], list[str]]) -> list[Stat]:
    """Exact match per key (a row counts once for each of its keys), by key name."""
    stats: dict[str, Stat] = {}
    for row in rows:
        for key in keys(row):
            s = stats.setdefault(key, Stat(key))
            s.n += 1
            s.right += row.right
            s.errors += row.called is None
    return [stats[k] for k in sorted(stats)]


def tool_keys(row: Row) -> list[str]:
    """The tools an example is counted under (as ``eval`` prints them): those its expected
    answer calls, else ``(no call)``."""
    return sorted(set(row.expected)) or [NO_CALL]


def category_keys(row: Row) -> list[str]:
    return [row.category]


def tool_pairs(row: Row) -> list[tuple[str, str]]:
    """(expected tool, called tool) pairs of one example: calls of the same tool pair up,
    then the rest in order; what is left pairs with ``(no call)``. An error line pairs each
    expected tool with ``(error)``."""
    if row.called is None:
        return [(t, ERROR) for t in row.expected or [NO_CALL]]
    left, missed, pairs = list(row.called), [], []
    for tool in row.expected:
        if tool in left:
            left.remove(tool)
            pairs.append((tool, tool))
        else:
            missed.append(tool)
    pairs += zip(missed, left, strict=False)
    pairs += [(t, NO_CALL) for t in missed[len(left) :]]
    pairs += [(NO_CALL, t) for t in left[len(missed) :]]
    return pairs or [(NO_CALL, NO_CALL)]


def confusion(rows: Iterable[Row]) -> Counter[tuple[str, str]]:
    return Counter(p for row in rows for p in tool_pairs(row))


def fold_confusion(
    counts: Counter[tuple[str, str]], keep: int = CONFUSION_TOOLS
) -> tuple[list[str], list[str], Counter[tuple[str, str]]]:
    """The ``keep`` most frequent tools by name, the rest as ``(other tools)``; then
    ``(no call)`` (and ``(error)`` as a column when there are errors)."""
    special = {NO_CALL, ERROR}
    total: Counter[str] = Counter()
    for (e, c), n in counts.items():
        total[e] += n
        total[c] += n
    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    tools = [t for t, _ in ranked if t not in special]
    kept = set(tools[:keep])

    def fold(name: str) -> str:
        return name if name in kept or name in special else OTHER

    folded: Counter[tuple[str, str]] = Counter()
    for (e, c), n in counts.items():
        folded[fold(e), fold(c)] += n
    names = sorted(kept) + ([OTHER] if len(tools) > keep else [])
    columns = [*names, NO_CALL] + ([ERROR] if any(c == ERROR for _, c in folded) else [])
    return [*names, NO_CALL], columns, folded


def choice_counts(rows: Iterable[Row]) -> dict[str, int]:
    """How the expected tools fared: called, another tool instead, not called, a call
    nobody asked for, an error line."""
    kinds: Counter[str] = Counter()
    for e, c in (p for row in rows for p in tool_pairs(row)):
        if c == ERROR:
            kinds["error line"] += 1
        elif e == c:
            kinds["right tool" if e != NO_CALL else "no call, as expected"] += 1
        elif c == NO_CALL:
            kinds["not called"] += 1
        elif e == NO_CALL:
            kinds["unexpected call"] += 1
        else:
            kinds["another tool"] += 1
    order = ["right tool", "no call, as expected", "another tool", "not called"]
    return {k: kinds[k] for k in [*order, "unexpected call", "error line"]}


def wrong_arguments(rows: Iterable[Row], examples: int = EXAMPLES) -> list[ArgumentStat]:
    """Arguments of calls to the right tool, most often wrong first."""
    compared: Counter[str] = Counter()
    wrong: dict[str, list[tuple[Row, WrongArgument]]] = {}
    for row in rows:
        compared.update(row.compared)
        for w in row.wrong:
            wrong.setdefault(w.key, []).append((row, w))
    stats = [ArgumentStat(k, len(v), compared[k], v[:examples]) for k, v in wrong.items()]
    return sorted(stats, key=lambda s: (-s.wrong, -s.wrong / max(s.compared, 1), s.key))


def error_types(rows: Iterable[Row]) -> list[tuple[str, list[Row]]]:
    """Rows with an error line (or none), by error type, most frequent first."""
    by_type: dict[str, list[Row]] = {}
    for row in rows:
        if row.called is None:
            by_type.setdefault(row.error_type or row.status, []).append(row)
    return sorted(by_type.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100) of non-empty values."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def histogram(values: Sequence[float], bins: int) -> tuple[float, list[int]]:
    """(bin width, counts) of at most ``bins`` bins of a round width (1, 2 or 5 times a
    power of ten) from 0 to past the largest value."""
    top = max(values, default=0.0)
    width = _nice_step(top / bins) if top > 0 else 1.0
    counts = [0] * max(1, min(bins, math.floor(top / width) + 1))
    for v in values:
        counts[min(int(v // width), len(counts) - 1)] += 1
    return width, counts


def _nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``raw``."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
