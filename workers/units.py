"""Numbers a call copies from the request in the request's unit where its parameter asks for
another: ``"frequency_hz": 2.4`` for "2.4 GHz", ``"amount_cents": 30`` for "$30k".

A parameter names its unit in its name (``amount_cents``, ``timeout_ms``) or its description
("Frequency in hertz"); the request writes a number with a unit, a multiplier or a currency
sign after or before it. Where the call's value is that number as written (or with its
multiplier applied and no more), and the units differ by a known factor, the value is
converted. The units, their scales and the words a name may use are data
(``units.json``).

Only a number the request writes once, or always in one unit, is converted: a number it
also writes bare, or in two units, is left as the model gave it. A number the request does
not write at all (the model's own sum: ``"amount_cents": 1000`` for "$100") becomes the
request's one quantity of the parameter's kind, converted, where it writes exactly one in
digits and names no other in words ("an hour and 10 minutes").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from workers.text import name_words

_TABLE_PATH = Path(__file__).with_name("units.json")
_DESCRIPTION_UNIT = re.compile(
    r"\b(?:in|as)\s+(?:the\s+)?(?:number\s+of\s+)?([a-z$€£]+)(?![a-z])(?!\s*(?:/|per\b))"
)
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+"


@dataclass(frozen=True)
class Unit:
    dimension: str
    scale: float  # in the dimension's first unit


@dataclass(frozen=True)
class _Table:
    units: dict[str, Unit]
    multipliers: dict[str, float]
    currency_multipliers: dict[str, float]
    name_words: frozenset[str]
    mention: re.Pattern[str]


@cache
def _table() -> _Table:
    data = json.loads(_TABLE_PATH.read_text(encoding="utf-8"))
    units = {
        word: Unit(dimension, float(scale))
        for dimension, words in data["dimensions"].items()
        for word, scale in words.items()
    }
    multipliers = {word: float(value) for word, value in data["multipliers"].items()}
    currency = {word: float(value) for word, value in data["currency_multipliers"].items()}
    words = sorted({*units, *multipliers, *currency}, key=len, reverse=True)
    alternatives = "|".join(re.escape(word) for word in words if word[0].isalpha())
    signs = "".join(re.escape(word) for word in units if not word[0].isalnum())
    mention = re.compile(
        rf"(?P<sign>[{signs}])?\s?(?<![\w.])(?P<number>{_NUMBER})(?![\d])"
        rf"(?:[ -]?(?P<first>(?:{alternatives})(?![a-z0-9]))"
        rf"(?:[ -]?(?P<second>(?:{alternatives})(?![a-z0-9])))?)?",
        re.IGNORECASE,
    )
    return _Table(units, multipliers, currency, frozenset(data["name_words"]), mention)


@dataclass(frozen=True)
class Mention:
    """A number as the request writes it: its digits, the multiplier after it, and its unit
    (None: written bare, or in a unit this table does not know)."""

    number: float
    multiplier: float
    unit: Unit | None


def mentions(query: str) -> list[Mention]:
    """Every number ``query`` writes in digits, in order, with what follows or precedes it:
    "$30k" (money, times 1,000), "2.4 GHz", "a 5-minute timer", "3 years"."""
    table = _table()
    found: list[Mention] = []
    for match in table.mention.finditer(query):
        number = float(match["number"].replace(",", ""))
        words = [word.casefold() for word in (match["first"], match["second"]) if word]
        unit = table.units[match["sign"]] if match["sign"] else None
        multiplier = 1.0
        if words:
            scale = table.currency_multipliers.get(words[0]) if unit is not None else None
            scale = scale or table.multipliers.get(words[0])
            if scale is not None:
                multiplier, words = scale, words[1:]
        if words and unit is None:
            unit = table.units.get(words[0])
        found.append(Mention(number, multiplier, unit))
    return found


def parameter_unit(name: str, schema: Mapping[str, Any]) -> Unit | None:
    """The unit a number parameter asks for, by its name's last unit word or else its
    description's "in <unit>"; None where it names none, or a rate ("min_per_km")."""
    table = _table()
    parts = name_words(name)
    if "per" in parts:
        return None
    for part in reversed(parts):
        if part in table.name_words:
            return table.units[part]
    description = str(schema.get("description") or "").casefold()
    named = {
        table.units[word] for word in _DESCRIPTION_UNIT.findall(description) if word in table.units
    }
    return named.pop() if len(named) == 1 else None


def _converted(value: float, unit: Unit, said: list[Mention], integer: bool) -> float | None:
    """The value in ``unit`` that the request's mentions of ``value`` mean, where they all
    agree and it differs from ``value``; None otherwise."""
    targets = set()
    for mention in said:
        source = mention.unit
        if source is None:
            if mention.multiplier == 1.0:
                return None  # the request also writes it bare: leave it
            source = unit  # "2k" for a parameter in kWh: 2,000 of its own unit
        elif source.dimension != unit.dimension:
            return None
        factor = mention.multiplier * source.scale / unit.scale
        targets.add(round(mention.number * factor, 9))
    if len(targets) != 1:
        return None
    target = targets.pop()
    if math.isclose(target, value) or (integer and not float(target).is_integer()):
        return None
    return target


def _numbers_said(query: str) -> dict[float, list[Mention]]:
    """Each number the request writes, by the values a call may have copied for it: the
    number as written, and with its multiplier applied."""
    said: dict[float, list[Mention]] = {}
    for mention in mentions(query):
        said.setdefault(mention.number, []).append(mention)
        if mention.multiplier != 1.0:
            said.setdefault(round(mention.number * mention.multiplier, 9), []).append(mention)
    return said


def _in_words(query: str, dimension: str) -> bool:
    """Whether the request names a unit of ``dimension`` with no number in digits before it
    ("an hour and 10 minutes"): then its quantities in digits are not the whole of it."""
    table = _table()
    written = [match.span() for match in table.mention.finditer(query)]
    for word, unit in table.units.items():
        if unit.dimension != dimension or len(word) < 2 or not word.isalpha():
            continue
        for match in re.finditer(rf"(?<![a-z]){re.escape(word)}(?![a-z])", query, re.IGNORECASE):
            if not any(start <= match.start() < end for start, end in written):
                return True
    return False


def _of_dimension(query: str, said: dict[float, list[Mention]], unit: Unit) -> list[Mention]:
    """The request's mention in ``unit``'s dimension, where it writes exactly one such
    quantity, in digits, and names no other in words (else none)."""
    found = {
        id(mention): mention
        for mentions_of in said.values()
        for mention in mentions_of
        if mention.unit is not None and mention.unit.dimension == unit.dimension
    }
    if len(found) != 1 or _in_words(query, unit.dimension):
        return []
    return list(found.values())


def convert_units(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with each number copied in the request's unit converted to its parameter's,
    and ``{"call", "path", "from", "to"}`` for each value converted."""
    said = _numbers_said(query)
    parameters = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    converted: list[dict[str, Any]] = []

    def walk(
        arguments: Mapping[str, Any], schema: Mapping[str, Any], path: list[str], call: int
    ) -> dict[str, Any]:
        properties = (schema.get("properties") or {}) if isinstance(schema, Mapping) else {}
        out: dict[str, Any] = {}
        for name, value in arguments.items():
            item_schema = properties.get(name) or {}
            if isinstance(value, Mapping):
                out[name] = walk(value, item_schema, [*path, str(name)], call)
                continue
            out[name] = value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            unit = parameter_unit(str(name), item_schema)
            if unit is None:
                continue
            integer = item_schema.get("type") == "integer"
            if float(value) in said:
                target = _converted(float(value), unit, said[float(value)], integer)
            else:  # a number the request does not write: its one quantity of that kind
                target = _converted(float(value), unit, _of_dimension(query, said, unit), integer)
            if target is None:
                continue
            new: int | float = int(target) if float(target).is_integer() else target
            out[name] = new
            converted.append(
                {"call": call, "path": "/".join([*path, str(name)]), "from": value, "to": new}
            )
        return out

    result = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments")
        if isinstance(arguments, Mapping):
            call = {
                **call,
                "arguments": walk(arguments, parameters.get(call.get("name"), {}), [], index),
            }
        result.append(dict(call))
    return result, converted
