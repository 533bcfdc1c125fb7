"""Optional integer arguments the model left out where the request gives the number beside
the parameter's name.

"(cups 19), launch the coffee machine" gives no ``"cups": 19``, "top 9" no ``"top": 9``,
"the next five days" no ``"days": 5``. Where a called tool has an optional integer
parameter, the call leaves it out, and a word of its name that says what it counts
(``min_bedrooms`` counts "bedrooms"; the other words are data, ``numberfill.json`` and
``flagfill.json``) stands right beside a number in the request (digits or "one" to
"twelve"), the number is filled in: only where every such place gives the same number
and no argument of the answer has it already (the request's "4" of "table for 4" is the
party's, not also the children's). Top-level parameters only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from workers.fill import fill_left_out
from workers.flagfill import function_words
from workers.text import name_words, normal_text, stem

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+")


@cache
def _table() -> dict[str, Any]:
    return json.loads(Path(__file__).with_name("numberfill.json").read_text(encoding="utf-8"))


def _number(token: str) -> int | float | None:
    if token[0].isdigit():
        return float(token) if "." in token else int(token)
    return _table()["numbers"].get(token)


@cache
def _not_counted() -> frozenset[str]:
    return function_words() | frozenset(_table()["name_words"])


def _counted_words(name: str) -> set[str]:
    """The words of ``name`` that say what it counts."""
    return {stem(word) for word in name_words(name) if word not in _not_counted()}


def _numbers_in(value: Any) -> set[float]:
    if isinstance(value, Mapping):
        return {n for item in value.values() for n in _numbers_in(item)}
    if isinstance(value, list):
        return {n for item in value for n in _numbers_in(item)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {value}
    return set()


def _beside(words: set[str], tokens: list[str]) -> set[int | float]:
    """The numbers right before or after a token that is one of ``words``."""
    found = set()
    for index, token in enumerate(tokens):
        if stem(token) not in words:
            continue
        for near in (index - 1, index + 1):
            if 0 <= near < len(tokens) and (number := _number(tokens[near])) is not None:
                found.add(number)
    return found


def fill_numbers(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the optional integers the request gives beside their names filled in,
    and ``{"call", "path", "value", "rule": "number"}`` for each one filled."""
    tokens = _TOKEN.findall(normal_text(query).replace(",", ""))
    used = {n for call in calls for n in _numbers_in(call.get("arguments"))}

    def choose(
        _index: int, _arguments: dict[str, Any], name: str, schema: Mapping[str, Any]
    ) -> Any:
        if schema.get("type") != "integer":
            return None
        words = _counted_words(name)
        numbers = _beside(words, tokens) if words else set()
        if len(numbers) != 1:
            return None
        number = numbers.pop()
        if not isinstance(number, int) or number in used:
            return None
        used.add(number)
        return number

    return fill_left_out(calls, tools, "number", choose)
