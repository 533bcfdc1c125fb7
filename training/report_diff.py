"""The eval report's argument comparison: each expected call is paired with the call made for
it (:func:`pair_calls`), and their arguments compared, as JSON values for labelled data
(:func:`labelled_diff`) or by BFCL's rules for a BFCL answer (:func:`bfcl_diff`), into
:class:`WrongArgument` items."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .bfcl_score import _value_ok
from .scoring import _canon

Call = dict[str, Any]
MISSING = "(missing)"
UNEXPECTED = "(not expected)"


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


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


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
