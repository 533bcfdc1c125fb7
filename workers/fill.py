"""The loop the fill repairs share (:mod:`workers.enumfill`, :mod:`workers.flagfill`,
:mod:`workers.numberfill`, :mod:`workers.codefill`): each top-level parameter a call leaves
out is offered to a rule, which gives the value to fill in or None. A ``null`` counts as
left out: the worker puts it back for the nullable arguments of a strict tool the model left
out (:mod:`workers.nullable`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workers.text import normal_text

# (the call's index, its arguments so far, the parameter's name, its schema) -> value or None
Choose = Callable[[int, dict[str, Any], str, Mapping[str, Any]], Any]


def fill_left_out(
    calls: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    rule: str,
    choose: Choose,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with what ``choose`` gives filled in, and ``{"call", "path", "value",
    "rule"}`` for each value filled."""
    parameters = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    result: list[dict[str, Any]] = []
    filled: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        arguments = dict(call.get("arguments") or {})
        properties = parameters.get(call.get("name"), {}).get("properties") or {}
        for name, schema in properties.items():
            if arguments.get(name) is not None or not isinstance(schema, Mapping):
                continue
            value = choose(index, arguments, str(name), schema)
            if value is not None:
                arguments[name] = value
                filled.append({"call": index, "path": str(name), "value": value, "rule": rule})
        result.append({**call, "arguments": arguments})
    return result, filled


def string_values(calls: Sequence[Mapping[str, Any]]) -> set[str]:
    """The top-level string arguments of an answer, case-folded: a value filled in must not
    be one of them already."""
    return {
        normal_text(value)
        for call in calls
        for value in (call.get("arguments") or {}).values()
        if isinstance(value, str)
    }


def argument_text(arguments: Mapping[str, Any]) -> str:
    """A call's top-level string arguments, case-folded, as one text: what a filled value's
    words must not already be part of ("Mexico City" names no country)."""
    return " ".join(normal_text(value) for value in arguments.values() if isinstance(value, str))
