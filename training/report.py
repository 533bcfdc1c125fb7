"""An HTML report of an evaluation: ``python -m pipeline eval ... --report report.html``.

One self-contained file (inline CSS and SVG; no script, nothing fetched) showing:

* exact match overall, per BFCL category (with ``--bfcl``) and per tool;
* a confusion table of expected tool against called tool, with "(no call)" and "(error)";
* the arguments most often wrong, with examples;
* a histogram of ``latency_ms`` (from the pipeline's result lines);
* the error types (``error.type`` of the lines whose ``status`` is not ``ok``).

:func:`labelled_rows` and :func:`bfcl_rows` score each example by the rules ``eval`` prints
(:func:`training.evaluate.calls_equal`, :func:`training.bfcl_score.check_entry`) into a
:class:`Row`; :func:`build` renders rows as HTML; :func:`write_labelled` and
:func:`write_bfcl` do both and write the file.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from .bfcl import IRRELEVANCE_CATEGORIES, RELEVANCE_CATEGORIES, BfclEntry
from .bfcl_score import _value_ok, check_entry
from .report_confidence import confidence_content
from .report_confidence import svg_open as _svg_open
from .scoring import NO_CALL, _canon, _read_jsonl, calls_equal, request_id

Call = dict[str, Any]
ERROR = "(error)"
OTHER = "(other tools)"
ANY_CALL = "(any call)"  # what live_relevance expects
MISSING = "(missing)"
UNEXPECTED = "(not expected)"
CONFUSION_TOOLS = 16  # the most frequent tools get a row and column; the rest are folded
CHART_ROWS = 40
ARGUMENT_ROWS = 15
EXAMPLES = 3
FAILURES = 50


@dataclass(frozen=True)
class WrongArgument:
    """One argument of a call to the right tool that is not as expected (display texts)."""

    tool: str
    param: str
    expected: str
    got: str

    @property
    def key(self) -> str:
        return f"{self.tool}.{self.param}"


@dataclass
class Row:
    """One example: what was expected, what the pipeline answered, and whether it is right.
    ``called`` is ``None`` for an error line (or no line at all)."""

    id: str
    query: str
    category: str  # BFCL category; "" for labelled data
    expected: list[str]  # tool names of the expected calls ([]: no call)
    called: list[str] | None
    right: bool
    why: str
    status: str  # the line's status; "missing" when there is no line
    error_type: str | None
    error_message: str
    latency_ms: float | None
    confidence: float | None  # the line's (None: an error line, or not reported)
    model: str
    expected_text: str
    got_text: str
    compared: list[str] = field(default_factory=list)  # "tool.param" of compared arguments
    wrong: list[WrongArgument] = field(default_factory=list)


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


# --------------------------------------------------------------------------------------------
# Result lines


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """The results file's lines by id (as a string); a later line for an id wins."""
    return {str(r.get("id")): r for r in _read_jsonl(path)}


def _ok_calls(result: dict[str, Any] | None) -> list[Call] | None:
    if result is None or result.get("status") != "ok":
        return None
    calls = result.get("calls")
    return calls if isinstance(calls, list) else []


def _error(result: dict[str, Any] | None) -> tuple[str, str | None, str]:
    """(status, error type, error message) of a result line."""
    if result is None:
        return "missing", "missing", "no result line"
    status = str(result.get("status"))
    if status == "ok":
        return status, None, ""
    error = result.get("error")
    if not isinstance(error, dict):
        return status, status, str(error or "")
    return status, str(error.get("type") or status), str(error.get("message") or "")


def _latency(result: dict[str, Any] | None) -> float | None:
    value = (result or {}).get("latency_ms")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _confidence(result: dict[str, Any] | None) -> float | None:
    value = (result or {}).get("confidence")
    return float(value) if isinstance(value, (int, float)) else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _names(calls: Sequence[Call]) -> list[str]:
    return [str(c.get("name")) if isinstance(c, dict) else "?" for c in calls]


# --------------------------------------------------------------------------------------------
# Pairing expected calls with calls made, and comparing arguments

Diff = Callable[[Call, Call], tuple[list[str], list[WrongArgument]]]


def pair_calls(
    expected: Sequence[Call], got: Sequence[Call], diff: Diff
) -> list[tuple[Call, Call]]:
    """Each expected call takes the unused call of the same tool with the fewest wrong
    arguments; expected calls with no call of their tool are left out."""
    unused = [g for g in got if isinstance(g, dict)]
    pairs = []
    for e in expected:
        same = [g for g in unused if g.get("name") == e.get("name")]
        if same:
            best = min(same, key=lambda g: len(diff(e, g)[1]))
            unused.remove(best)
            pairs.append((e, best))
    return pairs


def _compare(
    expected: Sequence[Call], got: Sequence[Call], diff: Diff
) -> tuple[list[str], list[WrongArgument]]:
    compared: list[str] = []
    wrong: list[WrongArgument] = []
    for e, g in pair_calls(expected, got, diff):
        c, w = diff(e, g)
        compared += c
        wrong += w
    return compared, wrong


def labelled_diff(expected: Call, got: Call) -> tuple[list[str], list[WrongArgument]]:
    """Arguments of two calls to one tool compared as JSON values (as ``calls_equal`` does):
    every argument in either is compared; absent ones show as ``(missing)``."""
    tool = str(expected.get("name"))
    want, have = _canon(_arguments(expected)), _canon(_arguments(got))
    params = list(want) + [p for p in have if p not in want]
    wrong = [
        WrongArgument(tool, p, _shown(want, p), _shown(have, p))
        for p in params
        if _shown(want, p) != _shown(have, p)
    ]
    return [f"{tool}.{p}" for p in params], wrong


def _arguments(call: Call) -> dict[str, Any]:
    arguments = call.get("arguments")
    return arguments if isinstance(arguments, dict) else {}


def _shown(arguments: dict[str, Any], param: str) -> str:
    return _json(arguments[param]) if param in arguments else MISSING


def bfcl_diff(functions: list[dict[str, Any]]) -> Diff:
    """Arguments of a call against one BFCL answer ``{name, arguments: {param: [options]}}``
    by BFCL's rules for values (``""`` among the options: may be omitted)."""

    def diff(answer: Call, call: Call) -> tuple[list[str], list[WrongArgument]]:
        tool, options = str(answer["name"]), answer["arguments"]
        doc = next((f for f in functions if f.get("name") == tool), {})
        properties = (doc.get("parameters") or {}).get("properties") or {}
        required = (doc.get("parameters") or {}).get("required") or []
        args = _arguments(call)
        params = list(dict.fromkeys([*options, *required, *args]))
        wrong = [
            WrongArgument(tool, p, _options_text(options, p), _shown(args, p))
            for p in params
            if not _bfcl_argument_ok(p, args, options, properties, required)
        ]
        return [f"{tool}.{p}" for p in params], wrong

    return diff


def _bfcl_argument_ok(
    param: str,
    args: dict[str, Any],
    options: dict[str, list[Any]],
    properties: dict[str, Any],
    required: list[str],
) -> bool:
    if param not in args:
        return param not in required and "" in options.get(param, [])
    if param not in options or param not in properties:
        return False
    return _value_ok(args[param], properties[param], options[param])


def _options_text(options: dict[str, list[Any]], param: str) -> str:
    if param not in options:
        return UNEXPECTED
    values = " | ".join(_json(o) for o in options[param] if o != "")
    if "" in options[param]:
        return f"{values} (or omitted)" if values else "(omitted)"
    return values


# --------------------------------------------------------------------------------------------
# Rows


def labelled_rows(labelled_path: str | Path, results_path: str | Path) -> list[Row]:
    """One row per labelled example (``{query, tools, answers}``), matched to its result line
    by id (the example's own id, else its line number, as ``eval`` writes the requests)."""
    results = read_results(results_path)
    rows = []
    for i, ex in enumerate(_read_jsonl(labelled_path), start=1):
        rid = str(request_id(ex, i))
        rows.append(labelled_row(rid, ex, results.get(rid)))
    return rows


def labelled_row(rid: str, example: dict[str, Any], result: dict[str, Any] | None) -> Row:
    expected: list[Call] = example["answers"]
    got = _ok_calls(result)
    right = got is not None and calls_equal(expected, got)
    compared, wrong = _compare(expected, got or [], labelled_diff)
    row = _row(rid, example["query"], "", _names(expected), got, result)
    row.right, row.compared, row.wrong = right, compared, wrong
    row.why = "" if right else _labelled_why(row)
    row.expected_text = _json(expected)
    return row


def _labelled_why(row: Row) -> str:
    if row.called is None:
        return f"error line: {row.error_type}"
    if sorted(row.called) != sorted(row.expected):
        return f"called {_list(row.called)}, expected {_list(row.expected)}"
    if row.wrong:
        return "wrong arguments: " + ", ".join(dict.fromkeys(w.key for w in row.wrong))
    return "calls differ"


def _list(names: list[str]) -> str:
    return ", ".join(names) if names else NO_CALL


def bfcl_rows(entries: Iterable[BfclEntry], results_path: str | Path) -> list[Row]:
    """One row per BFCL entry, right or wrong by BFCL's rules (an error line is wrong)."""
    results = read_results(results_path)
    return [bfcl_row(e, results.get(e.id)) for e in entries]


def bfcl_row(entry: BfclEntry, result: dict[str, Any] | None) -> Row:
    got = _ok_calls(result)
    answers = [
        {"name": name, "arguments": options}
        for answer in entry.ground_truth or []
        for name, options in answer.items()
    ]
    row = _row(entry.id, entry.query, entry.category, _bfcl_expected(entry, answers), got, result)
    if got is not None:
        row.right, row.why = check_entry(entry.category, entry.functions, entry.ground_truth, got)
        row.compared, row.wrong = _compare(answers, got, bfcl_diff(entry.functions))
    else:
        row.why = f"error line: {row.error_type}"
    truth = entry.ground_truth
    row.expected_text = _json(truth) if truth is not None else _list(row.expected)
    return row


def _bfcl_expected(entry: BfclEntry, answers: list[Call]) -> list[str]:
    if entry.category in IRRELEVANCE_CATEGORIES:
        return []
    if entry.category in RELEVANCE_CATEGORIES:
        return [ANY_CALL]
    return _names(answers)


def _row(
    rid: str,
    query: str,
    category: str,
    expected: list[str],
    got: list[Call] | None,
    result: dict[str, Any] | None,
) -> Row:
    status, error_type, message = _error(result)
    return Row(
        id=rid,
        query=query,
        category=category,
        expected=expected,
        called=None if got is None else _names(got),
        right=False,
        why="",
        status=status,
        error_type=error_type,
        error_message=message,
        latency_ms=_latency(result),
        confidence=_confidence(result),
        model=str((result or {}).get("model") or ""),
        expected_text="",
        got_text=_json(got) if got is not None else f"{status}: {error_type}: {message}",
    )


# --------------------------------------------------------------------------------------------
# Aggregates


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


# --------------------------------------------------------------------------------------------
# SVG charts


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


def _pct(right: int, n: int) -> str:
    return f"{right}/{n} = {right / n:.1%}" if n else "0/0"


# --------------------------------------------------------------------------------------------
# HTML

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430;
  margin: 24px auto; max-width: 1120px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
  border-bottom: 1px solid #d8dde5; padding-bottom: 4px; }
.muted { color: #667085; } .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0; }
.card { border: 1px solid #d8dde5; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; margin: 6px 0; } td, th { border: 1px solid #d8dde5;
  padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f6f9; font-weight: 600; } td.n { text-align: right;
  font-variant-numeric: tabular-nums; }
table.confusion td { text-align: center; min-width: 26px; }
table.confusion th.col { writing-mode: vertical-rl; transform: rotate(180deg);
  white-space: nowrap; font-weight: 500; }
code, .mono { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
svg.chart { display: block; margin: 6px 0; font-size: 12px; }
svg.chart text { fill: #1d2430; } svg.chart .small { font-size: 10px; }
div.row { display: flex; flex-wrap: wrap; gap: 16px; }
details summary { cursor: pointer; } td ul { margin: 0; padding-left: 16px; }
"""


def build(rows: Sequence[Row], title: str, source: str, bfcl: bool = False) -> str:
    """The report as one HTML document."""
    body = "".join(
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
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><div class=muted>{escape(source)} · generated {generated} by "
        "<code>python -m pipeline eval --report</code></div>"
        f"{body}</body></html>\n"
    )


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


# --------------------------------------------------------------------------------------------
# Writing


def write(rows: Sequence[Row], out: str | Path, title: str, source: str, bfcl: bool) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build(rows, title, source, bfcl), encoding="utf-8")
    return path


def write_labelled(
    labelled_path: str | Path, results_path: str | Path, out: str | Path, source: str
) -> Path:
    """The report of a labelled run (``eval DATA.jsonl``)."""
    rows = labelled_rows(labelled_path, results_path)
    return write(rows, out, f"Exact match on {Path(source).name}", source, bfcl=False)


def write_bfcl(
    entries: Sequence[BfclEntry], results_path: str | Path, out: str | Path, source: str
) -> Path:
    """The report of a BFCL run (``eval --bfcl CATEGORIES``)."""
    rows = bfcl_rows(entries, results_path)
    return write(rows, out, "BFCL v4, BFCL's AST rules", source, bfcl=True)
