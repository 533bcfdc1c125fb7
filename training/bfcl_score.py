"""BFCL's answer rules for pipeline results, mirrored from ``bfcl_eval``'s
``eval_checker/ast_eval/ast_checker.py`` (Python categories) without importing it.

A ground-truth call is ``{function_name: {param: [acceptable values]}}``:

* the function name must match, and every parameter the doc requires must be given;
* no parameter outside the doc and the answer; a parameter the answer lists but the call
  leaves out is fine only when ``""`` is among its values;
* a value must have the doc's type (an int is taken for a ``float``, though not inside an
  array of floats; a value of the type of the answer's values also passes, which is how
  BFCL lets "variables" through) and be one of
  the acceptable values, where strings are compared after :func:`standardize` (case, spaces
  and ``,./-_*^`` ignored), list elements likewise, in order, and dicts key by key;
* ``parallel`` categories: as many calls as answers, matched one to one in any order (each
  answer takes the first call left that fits, as BFCL does); ``multiple`` and simple ones:
  exactly one call;
* irrelevance categories are right when there is no call, ``live_relevance`` when there is.

A request that the pipeline answered with an error line is wrong in every category,
irrelevance included. BFCL counts output it cannot decode as "no call", so right for
irrelevance; but here "no call" is an answer the model gives (``[]``) and an error means it
gave none (the prompt did not fit, the answer was cut off or broke the tool's schema, the
worker hung or crashed). Errors are counted and reported per category.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from .bfcl import IRRELEVANCE_CATEGORIES, RELEVANCE_CATEGORIES, BfclEntry
from .confidence_metrics import confidence_summary
from .confidence_metrics import format_summary as format_confidence

# ast_checker.PYTHON_TYPE_MAPPING: BFCL type names to the Python type a value must have.
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}

Verdict = tuple[bool, str]  # (right, why not)
RIGHT: Verdict = (True, "")


def standardize(text: str) -> str:
    """BFCL's ``standardize_string``: no spaces or ``,./-_*^``, lower case, ``'`` -> ``"``."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _standardize_items(items: Any) -> list[Any]:
    return [standardize(x) if isinstance(x, str) else x for x in items]


def _answer_type(options: list[Any]) -> type | None:
    """The type of the first acceptable value that is not the "may be omitted" marker."""
    return next((type(o) for o in options if o != ""), None)


def _type_ok(value: Any, options: list[Any], expected: type, nested: type | None) -> bool:
    """BFCL's ``type_checker``; ``nested`` is the item type of an array (one level deep)."""
    if type(value) is expected:
        if nested is None:
            return True
        # Some acceptable value (a list, or not a list at all, like "") whose element types
        # the value's elements all have.
        return any(
            not isinstance(option, list)
            or all(_type_ok(item, option, nested, None) for item in value)
            for option in options
        )
    return type(value) is _answer_type(options)


def _is_variable(options: list[Any], expected: type) -> bool:
    """The answer's values are of another type than the doc's (a variable name as a
    string, say): then they are compared as they are, without the string/list/dict rules."""
    answer_type = _answer_type(options)
    return answer_type is not None and answer_type is not expected


def _dict_ok(value: dict[str, Any], options: list[Any]) -> bool:
    """BFCL's ``dict_checker``: some acceptable dict takes every key of the value, with an
    acceptable value, and every key it leaves out may be omitted."""
    if not isinstance(value, dict):
        return False
    for option in options:
        if not isinstance(option, dict):  # "" (the dict may be omitted)
            continue
        keys_ok = all(
            key in option
            and (standardize(v) if isinstance(v, str) else v) in _standardize_items(option[key])
            for key, v in value.items()
        )
        if keys_ok and all(key in value or "" in opts for key, opts in option.items()):
            return True
    return False


def _list_of_dicts_ok(value: list[Any], options: list[Any]) -> bool:
    """BFCL's ``list_dict_checker``: dicts matched in order against an acceptable list."""
    return any(
        isinstance(option, list | str)  # "" is the empty list here
        and len(value) == len(option)
        and all(_dict_ok(v, [o]) for v, o in zip(value, option, strict=True))
        for option in options
    )


def _value_ok(value: Any, schema: dict[str, Any], options: list[Any]) -> bool:
    type_name = schema.get("type")
    expected = PYTHON_TYPES.get(type_name, str)
    nested = None
    if type_name in ("array", "tuple"):
        nested = PYTHON_TYPES.get((schema.get("items") or {}).get("type"))
    if type_name == "float" and type(value) is int:
        value = float(value)
    if not _type_ok(value, options, expected, nested):
        return False
    if not _is_variable(options, expected):
        if expected is dict:
            return _dict_ok(value, options)
        if expected is list and nested is dict:
            return _list_of_dicts_ok(value, options)
        if expected is str:
            return standardize(value) in [standardize(o) for o in options if isinstance(o, str)]
        if expected is list:
            standard = [_standardize_items(o) for o in options if isinstance(o, list | str)]
            return _standardize_items(value) in standard
    return value in options


def check_call(doc: dict[str, Any] | None, call: dict[str, Any], answer: dict[str, Any]) -> Verdict:
    """One call against one ground-truth call, with the doc of the answer's function
    (BFCL's ``simple_function_checker``)."""
    ((expected_name, expected),) = answer.items()
    if doc is None:
        return False, f"{expected_name} is not among the functions"
    if call.get("name") != doc["name"]:
        return False, f"called {call.get('name')!r}, expected {doc['name']!r}"
    arguments = call.get("arguments") or {}
    properties = doc["parameters"].get("properties") or {}
    for param in doc["parameters"].get("required") or []:
        if param not in arguments:
            return False, f"missing required parameter {param!r}"
    for param, value in arguments.items():
        if param not in properties or param not in expected:
            return False, f"unexpected parameter {param!r}"
        if not _value_ok(value, properties[param], expected[param]):
            return False, f"{param}={value!r} is not one of {expected[param]!r}"
    for param, options in expected.items():
        if param not in arguments and "" not in options:
            return False, f"missing parameter {param!r} (may not be omitted)"
    return RIGHT


def _doc(functions: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, Any] | None:
    name = next(iter(answer))
    return next((f for f in functions if f["name"] == name), None)


def check_entry(
    category: str,
    functions: list[dict[str, Any]],
    ground_truth: list[dict[str, Any]] | None,
    calls: list[dict[str, Any]],
) -> Verdict:
    """The pipeline's calls (``[{name, arguments}]``) for one BFCL entry, as BFCL decides."""
    if category in IRRELEVANCE_CATEGORIES:
        return RIGHT if not calls else (False, "called a function; none is relevant")
    if category in RELEVANCE_CATEGORIES:
        return RIGHT if calls else (False, "no call")
    assert ground_truth is not None, f"{category} needs possible answers"
    if "parallel" in category:
        return _check_parallel(functions, ground_truth, calls)
    if "multiple" in category:  # one call, checked with the doc of the expected function
        count, doc = len(ground_truth), _doc(functions, ground_truth[0])
    else:  # simple: one call, checked with the only doc there is
        count, doc = 1, functions[0]
    if len(calls) != count:
        return False, f"{len(calls)} calls, expected {count}"
    return check_call(doc, calls[0], ground_truth[0])


def _check_parallel(
    functions: list[dict[str, Any]], ground_truth: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> Verdict:
    """Each ground-truth call takes the first unmatched call that fits it (greedy, as
    BFCL's ``parallel_function_checker_no_order``)."""
    if len(calls) != len(ground_truth):
        return False, f"{len(calls)} calls, expected {len(ground_truth)}"
    unmatched = list(range(len(calls)))
    for answer in ground_truth:
        doc = _doc(functions, answer)
        match = next((i for i in unmatched if check_call(doc, calls[i], answer)[0]), None)
        if match is None:
            return False, f"no call matches {json.dumps(answer, ensure_ascii=False)}"
        unmatched.remove(match)
    return RIGHT


# --------------------------------------------------------------------------------------------
# Scoring a results file


def score(entries: list[BfclEntry], results_path: str | Path) -> dict[str, Any]:
    """Accuracy per category, overall (all entries) and the unweighted mean over categories
    (how BFCL averages its subcategories); error lines counted per category."""
    results: dict[str, dict[str, Any]] = {}
    with open(results_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                results[str(r.get("id"))] = r
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "correct": 0, "errors": 0})
    failures = []
    pairs: list[tuple[float, bool]] = []  # (confidence, right); an error line counts as 0
    for e in entries:
        r = results.get(e.id)
        counts = per[e.category]
        counts["n"] += 1
        if r is None or r.get("status") != "ok":
            counts["errors"] += 1
            error = (r or {}).get("error") or {"type": "missing", "message": "no result line"}
            ok, why, got = False, f"error line: {error.get('type')}", {"error": error}
        else:
            got = r.get("calls") or []
            ok, why = check_entry(e.category, e.functions, e.ground_truth, got)
        counts["correct"] += ok
        confidence = (r or {}).get("confidence")
        pairs.append((float(confidence) if confidence is not None else 0.0, ok))
        if not ok:
            failures.append(
                {
                    "id": e.id,
                    "category": e.category,
                    "query": e.query,
                    "expected": e.ground_truth,
                    "got": got,
                    "why": why,
                }
            )
    per_category = {c: {**v, "accuracy": v["correct"] / v["n"]} for c, v in per.items() if v["n"]}
    n = sum(v["n"] for v in per_category.values())
    correct = sum(v["correct"] for v in per_category.values())
    return {
        "n": n,
        "correct": correct,
        "errors": sum(v["errors"] for v in per_category.values()),
        "accuracy": correct / n if n else 0.0,
        "mean_accuracy": (
            sum(v["accuracy"] for v in per_category.values()) / len(per_category)
            if per_category
            else 0.0
        ),
        "per_category": per_category,
        "failures": failures,
        **({"confidence": confidence_summary(pairs)} if any(c for c, _ in pairs) else {}),
    }


def format_report(s: dict[str, Any], title: str = "") -> str:
    lines = [title] if title else []
    width = max([len(c) for c in s["per_category"]] + [len("mean of categories")])
    for c, v in s["per_category"].items():
        lines.append(
            f"  {c:<{width}}  {v['correct']:>4}/{v['n']:<4}  {v['accuracy']:6.1%}"
            f"  ({v['errors']} error lines)"
        )
    lines.append(
        f"  {'overall':<{width}}  {s['correct']:>4}/{s['n']:<4}  {s['accuracy']:6.1%}"
        f"  ({s['errors']} error lines)"
    )
    if len(s["per_category"]) > 1:
        lines.append(f"  {'mean of categories':<{width}}  {'':>9}  {s['mean_accuracy']:6.1%}")
    if "confidence" in s:
        lines.append(format_confidence(s["confidence"]))
    return "\n".join(lines)
