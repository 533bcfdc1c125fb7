"""The eval report's sections as HTML (:func:`sections`): summary cards, confidence, per
category, per tool, the confusion table, wrong arguments, latency, error types and
failures, with the small tables and cards they are made of."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from .report_charts import (
    ERROR_COLOR,
    RIGHT_COLOR,
    WRONG_COLOR,
    Bar,
    _clip,
    _ms,
    bar_chart,
    latency_chart,
)
from .report_confidence import confidence_content
from .report_rows import Row
from .report_stats import (
    CONFUSION_TOOLS,
    ERROR,
    OTHER,
    ArgumentStat,
    Stat,
    accuracy_by,
    category_keys,
    choice_counts,
    confusion,
    error_types,
    fold_confusion,
    percentile,
    tool_keys,
    wrong_arguments,
)
from .scoring import NO_CALL

CHART_ROWS = 40
ARGUMENT_ROWS = 15
FAILURES = 50


def sections(rows: Sequence[Row], bfcl: bool) -> str:
    """The report's sections, in order (per category only for BFCL)."""
    return "".join(
        [
            _summary(rows, bfcl),
            _confidence_section(rows),
            _categories_section(rows) if bfcl else "",
            _tools_section(rows),
            _confusion_section(rows, bfcl),
            _arguments_section(rows),
            _latency_section(rows),
            _errors_section(rows, bfcl),
            _failures_section(rows, bfcl),
        ]
    )


def _pct(right: int, n: int) -> str:
    return f"{right}/{n} = {right / n:.1%}" if n else "0/0"


def _section(heading: str, content: str, note: str = "") -> str:
    note_html = f"<p class=muted>{note}</p>" if note else ""
    return f"<section><h2>{escape(heading)}</h2>{note_html}{content}</section>"


def _card(label: str, value: str) -> str:
    return f"<div class=card><span class=muted>{escape(label)}</span><b>{escape(value)}</b></div>"


def _summary(rows: Sequence[Row], bfcl: bool) -> str:
    right, errors = sum(r.right for r in rows), sum(r.called is None for r in rows)
    cards = [_card("exact match", _pct(right, len(rows)))]
    if bfcl:
        stats = accuracy_by(rows, category_keys)
        mean = sum(s.accuracy for s in stats) / len(stats) if stats else 0.0
        cards.append(_card("mean of categories", f"{mean:.1%}"))
    cards.append(_card("error lines", str(errors)))
    latencies = [r.latency_ms for r in rows if r.latency_ms is not None]
    if latencies:
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        cards.append(_card("latency p50 / p95", f"{_ms(p50)} / {_ms(p95)} ms"))
    models = ", ".join(sorted({r.model for r in rows if r.model})) or "?"
    cards.append(_card("model", models))
    return f"<div class=cards>{''.join(cards)}</div>"


def _accuracy_bars(stats: Sequence[Stat]) -> list[Bar]:
    return [Bar(s.name, s.accuracy, _pct(s.right, s.n), RIGHT_COLOR, WRONG_COLOR) for s in stats]


def _confidence_section(rows: Sequence[Row]) -> str:
    if all(r.confidence is None for r in rows):
        return ""
    pairs = [(r.confidence if r.confidence is not None else 0.0, r.right) for r in rows]
    charts, note = confidence_content(pairs)
    return _section("Confidence", f"<div class=row>{charts}</div>", escape(note))


def _categories_section(rows: Sequence[Row]) -> str:
    stats = accuracy_by(rows, category_keys)
    chart = bar_chart(_accuracy_bars(stats), "exact match per category")
    table = _table(
        ["category", "examples", "right", "exact match", "error lines"],
        [[s.name, s.n, s.right, f"{s.accuracy:.1%}", s.errors] for s in stats],
    )
    return _section("Per category (BFCL's rules)", chart + table)


def _tools_section(rows: Sequence[Row]) -> str:
    stats = sorted(accuracy_by(rows, tool_keys), key=lambda s: (s.accuracy, -s.n, s.name))
    shown = stats[:CHART_ROWS]
    note = (
        "An example counts under each tool its expected answer calls, "
        f"or under {NO_CALL} when it expects none. {len(stats)} tools, worst first"
    )
    if len(stats) > len(shown):
        rest = stats[len(shown) :]
        note += f"; {len(rest)} more not shown ({sum(s.right for s in rest)}/"
        note += f"{sum(s.n for s in rest)} right)"
    chart = bar_chart(_accuracy_bars(shown), "exact match per tool")
    return _section("Per tool", chart, escape(note) + ".")


def _confusion_section(rows: Sequence[Row], bfcl: bool) -> str:
    names, columns, counts = fold_confusion(confusion(rows))
    peak = max(counts.values(), default=1)
    head = "<tr><th>expected ↓ / called →</th>"
    head += "".join(f'<th class="col">{escape(c)}</th>' for c in columns) + "</tr>"
    body = "".join(
        f"<tr><th>{escape(e)}</th>"
        + "".join(_confusion_cell(e, c, counts[e, c], peak) for c in columns)
        + "</tr>"
        for e in names
    )
    note = (
        "Each expected call against the call made for it: calls of the same tool pair up, "
        f"the rest in order; an expected call left over is {NO_CALL} in its row, a call "
        f"nobody expected is in the {NO_CALL} row, and {ERROR} is an error line."
    )
    if OTHER in names:
        note += f" Tools beyond the {CONFUSION_TOOLS} most frequent are folded into {OTHER}."
    table = f'<table class="confusion">{head}{body}</table>'
    return _section("Expected tool against called tool", table + _choices(rows, bfcl), note)


def _confusion_cell(expected: str, called: str, n: int, peak: int) -> str:
    if not n:
        return "<td></td>"
    alpha = 0.15 + 0.75 * math.sqrt(n / peak)
    rgb = "46, 160, 67" if expected == called and expected != OTHER else "207, 34, 46"
    if expected == called == OTHER:
        rgb = "120, 120, 120"
    tip = f"expected {expected}, called {called}: {n}"
    return f'<td style="background: rgba({rgb}, {alpha:.2f})" title="{escape(tip)}">{n}</td>'


def _choices(rows: Sequence[Row], bfcl: bool) -> str:
    categories = sorted({r.category for r in rows}) if bfcl else []
    groups = [(c, [r for r in rows if r.category == c]) for c in categories]
    groups.append(("all", list(rows)))
    counted = [(name, choice_counts(group)) for name, group in groups]
    kinds = list(counted[0][1])
    return "<p>Expected calls by outcome:</p>" + _table(
        ["", *kinds], [[name, *c.values()] for name, c in counted]
    )


def _arguments_section(rows: Sequence[Row]) -> str:
    stats = wrong_arguments(rows)
    note = (
        "Arguments of calls to the expected tool, compared with the expected call "
        f"(a missing or unasked-for argument counts as wrong); the {ARGUMENT_ROWS} most "
        "often wrong, with examples."
    )
    if not stats:
        return _section("Arguments most often wrong", "<p>No wrong arguments.</p>", note)
    table = _table(
        ["argument", "wrong", "of compared", "examples"],
        [
            [s.key, s.wrong, s.compared, _RawHtml(_argument_examples(s))]
            for s in stats[:ARGUMENT_ROWS]
        ],
    )
    return _section("Arguments most often wrong", table, note)


def _argument_examples(s: ArgumentStat) -> str:
    items = "".join(
        f"<li><span class=muted>{escape(row.id)}</span> {escape(_clip(row.query, 90))}<br>"
        f"expected <code>{escape(_clip(w.expected, 120))}</code>, "
        f"got <code>{escape(_clip(w.got, 120))}</code></li>"
        for row, w in s.examples
    )
    return f"<ul>{items}</ul>"


def _latency_section(rows: Sequence[Row]) -> str:
    values = [r.latency_ms for r in rows if r.latency_ms is not None]
    if not values:
        return _section("Latency", "<p>The results carry no <code>latency_ms</code>.</p>")
    note = (
        f"<code>latency_ms</code> of {len(values)} result lines (from reading the request to "
        "writing its line, queueing included); lines with an error in red. "
        f"p50 {_ms(percentile(values, 50))}, p95 {_ms(percentile(values, 95))}, "
        f"max {_ms(max(values))}, mean {_ms(statistics.fmean(values))} ms."
    )
    return _section("Latency", latency_chart(rows), note)


def _errors_section(rows: Sequence[Row], bfcl: bool) -> str:
    types = error_types(rows)
    statuses = Counter(r.status for r in rows)
    note = "Status of the result lines: " + ", ".join(
        f"{escape(k)} {v}" for k, v in sorted(statuses.items())
    )
    if not types:
        return _section("Error types", "<p>No error lines.</p>", note)
    peak = len(types[0][1])
    bars = [Bar(t, len(rs) / peak, str(len(rs)), ERROR_COLOR) for t, rs in types]
    header = ["error.type", "lines", *(["by category"] if bfcl else []), "example"]
    table = _table(header, [_error_line(t, rs, bfcl) for t, rs in types])
    return _section("Error types", bar_chart(bars, "error types") + table, note)


def _error_line(error_type: str, rows: list[Row], bfcl: bool) -> list[Any]:
    first = rows[0]
    example = _RawHtml(
        f"<span class=muted>{escape(first.id)}</span> "
        f"<code>{escape(_clip(first.error_message, 200))}</code>"
    )
    by = ", ".join(f"{c} {n}" for c, n in Counter(r.category for r in rows).most_common())
    return [error_type, len(rows), *([by] if bfcl else []), example]


def _failures_section(rows: Sequence[Row], bfcl: bool) -> str:
    failures = [r for r in rows if not r.right]
    if not failures:
        return _section("Failures", "<p>None.</p>")
    header = ["id", *(["category"] if bfcl else []), "query", "why", "expected", "got"]
    table = _table(
        header,
        [
            [
                r.id,
                *([r.category] if bfcl else []),
                _clip(r.query, 200),
                r.why,
                _RawHtml(f"<code>{escape(_clip(r.expected_text, 300))}</code>"),
                _RawHtml(f"<code>{escape(_clip(r.got_text, 300))}</code>"),
            ]
            for r in failures[:FAILURES]
        ],
    )
    summary = f"{len(failures)} failures" + (
        f" (the first {FAILURES})" if len(failures) > FAILURES else ""
    )
    return _section("Failures", f"<details><summary>{summary}</summary>{table}</details>")


class _RawHtml(str):
    """A table cell that is already HTML."""


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>{''.join(_table_row(r) for r in rows)}</table>"


def _table_row(cells: Sequence[Any]) -> str:
    out = []
    for c in cells:
        if isinstance(c, _RawHtml):
            out.append(f"<td>{c}</td>")
        elif isinstance(c, int | float):
            out.append(f"<td class=n>{c}</td>")
        else:
            out.append(f"<td>{escape(str(c))}</td>")
    return f"<tr>{''.join(out)}</tr>"
