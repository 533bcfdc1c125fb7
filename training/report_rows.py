"""The eval report's rows: each example scored by the rules ``eval`` prints
(:func:`training.evaluate.calls_equal`, :func:`training.bfcl_score.check_entry`) against its
result line, with what was expected, what came back and why it is wrong (:class:`Row`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bfcl import IRRELEVANCE_CATEGORIES, RELEVANCE_CATEGORIES, BfclEntry
from .bfcl_score import check_entry
from .report_diff import Call, WrongArgument, _compare, _json, bfcl_diff, labelled_diff
from .scoring import NO_CALL, _read_jsonl, calls_equal, request_id

ANY_CALL = "(any call)"  # what live_relevance expects


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


def _names(calls: Sequence[Call]) -> list[str]:
    return [str(c.get("name")) if isinstance(c, dict) else "?" for c in calls]


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
