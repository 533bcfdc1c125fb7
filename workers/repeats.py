"""Values a call repeats more often than the request says them.

A call that gives the same value to two of its arguments, where the request says that value
once (``"value": -678.76, "mean": -678.76`` for "the z-score for 721 where the mean is
-678.76"), has read the request wrong: on needle-smol's validation splits every such answer
was wrong (docs/evaluation.md). Such a line goes to the review queue like one with an
ungrounded string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from workers.text import normal_text

_NUMBER_IN_TEXT = re.compile(r"-?\d+(?:[.,]\d+)*")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _times_said_number(number: float, query: str) -> int:
    """How often ``query`` writes ``number`` in digits ("-5" counts for 5 too: a hyphen may
    be a dash, or the sign said in words)."""
    count = 0
    for found in _NUMBER_IN_TEXT.findall(query):
        value = _number(found.replace(",", ""))
        count += value is not None and (value == number or -value == number)
    return count


def _key(value: Any) -> tuple[str, Any] | None:
    """What makes two argument values the same (None: not a value this looks at)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str) and normal_text(value):
        return ("string", normal_text(value))
    return None


def _times_said(key: tuple[str, Any], query: str) -> int:
    kind, value = key
    if kind == "number":
        return _times_said_number(value, query)
    return normal_text(query).count(value)


def repeated_values(calls: Sequence[Mapping[str, Any]], query: str) -> list[dict[str, Any]]:
    """``{"call": index, "path": "key/key"}`` for each argument whose value (a number, or a
    string after case folding and collapsing white space) an earlier argument of the same
    object already has, more often than ``query`` says it."""
    found: list[dict[str, Any]] = []

    def walk(arguments: Mapping[str, Any], path: list[str], call: int) -> None:
        uses: dict[tuple[str, Any], int] = {}
        for name, value in arguments.items():
            if isinstance(value, Mapping):
                walk(value, [*path, str(name)], call)
                continue
            key = _key(value)
            if key is None:
                continue
            uses[key] = uses.get(key, 0) + 1
            if uses[key] > 1 and _times_said(key, query) < uses[key]:
                found.append({"call": call, "path": "/".join([*path, str(name)])})

    for index, call in enumerate(calls):
        arguments = call.get("arguments")
        if isinstance(arguments, Mapping):
            walk(arguments, [], index)
    return found
