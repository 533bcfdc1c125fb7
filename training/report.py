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

This module assembles the page (:func:`build`) and writes it; the parts are
:mod:`training.report_rows` (rows), :mod:`training.report_diff` (argument comparison),
:mod:`training.report_stats` (aggregates), :mod:`training.report_charts` (SVG charts),
:mod:`training.report_sections` (the sections) and :mod:`training.report_confidence` (the
confidence section).  Their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from .bfcl import BfclEntry
from .report_charts import (
    ERROR_COLOR,
    LATENCY_COLOR,
    RIGHT_COLOR,
    WRONG_COLOR,
    Bar,
    bar_chart,
    latency_chart,
)
from .report_diff import (
    MISSING,
    UNEXPECTED,
    Call,
    Diff,
    WrongArgument,
    bfcl_diff,
    labelled_diff,
    pair_calls,
)
from .report_rows import (
    ANY_CALL,
    Row,
    bfcl_row,
    bfcl_rows,
    labelled_row,
    labelled_rows,
    read_results,
)
from .report_sections import ARGUMENT_ROWS, CHART_ROWS, FAILURES, sections
from .report_stats import (
    CONFUSION_TOOLS,
    ERROR,
    EXAMPLES,
    OTHER,
    ArgumentStat,
    Stat,
    accuracy_by,
    category_keys,
    choice_counts,
    confusion,
    error_types,
    fold_confusion,
    histogram,
    percentile,
    tool_keys,
    tool_pairs,
    wrong_arguments,
)

__all__ = [
    "ANY_CALL",
    "ARGUMENT_ROWS",
    "CHART_ROWS",
    "CONFUSION_TOOLS",
    "CSS",
    "ERROR",
    "ERROR_COLOR",
    "EXAMPLES",
    "FAILURES",
    "LATENCY_COLOR",
    "MISSING",
    "OTHER",
    "RIGHT_COLOR",
    "UNEXPECTED",
    "WRONG_COLOR",
    "ArgumentStat",
    "Bar",
    "Call",
    "Diff",
    "Row",
    "Stat",
    "WrongArgument",
    "accuracy_by",
    "bar_chart",
    "bfcl_diff",
    "bfcl_row",
    "bfcl_rows",
    "build",
    "category_keys",
    "choice_counts",
    "confusion",
    "error_types",
    "fold_confusion",
    "histogram",
    "labelled_diff",
    "labelled_row",
    "labelled_rows",
    "latency_chart",
    "pair_calls",
    "percentile",
    "read_results",
    "tool_keys",
    "tool_pairs",
    "write",
    "write_bfcl",
    "write_labelled",
    "wrong_arguments",
]


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
    body = sections(rows, bfcl)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><div class=muted>{escape(source)} · generated {generated} by "
        "<code>python -m pipeline eval --report</code></div>"
        f"{body}</body></html>\n"
    )


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
