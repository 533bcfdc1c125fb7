"""Strings a call takes from the request, put in the form their parameter asks.

A small model copies well what it can copy token for token and badly what it must rewrite:
for "(415) 555-0134" and an E.164 parameter it gives the number as written, or "515-0134";
for "44:45" and ``HH:MM:SS`` it gives "04:45:00"; a quoted message loses its last sentence;
"Priya Raman" goes whole into ``first_name``. Where the request holds exactly one value of
the kind a parameter asks (:mod:`workers.request_values`), the call gets it in that form.
Each change is one of these rules:

- ``phone``: a parameter described as E.164 (or whose ``pattern`` takes "+14155550134" and
  not the digits alone) gets the request's one phone number as ``+`` and digits;
- ``digits``: a string the request does not hold, whose ``pattern`` the request's one long
  number fits once its spaces and dashes are taken out ("6035-7722-0198-4410" for
  ``^[0-9]{16}$``), becomes that number;
- ``duration``: a parameter that asks a length of time as ``HH:MM:SS`` (not a time of day)
  or an ISO 8601 duration gets the request's one length of time in that form ("44:45" ->
  "00:44:45", "45 minutes" -> "PT45M");
- ``quote``: a free string (no ``enum``, ``pattern`` or ``format``) that is the start of
  exactly one quoted text of the request, and not the whole of another, becomes the whole
  of it;
- ``name``: of a first-name and a last-name parameter side by side, one holding a two-word
  name from the request, each gets its word (where it was the whole name, left out, or not
  in the request);
- ``date``: the date parameters an object gives (``format: date``, or described or
  patterned as ``YYYY-MM-DD``, ``MM/DD/YYYY`` or ``DD/MM/YYYY``) get the request's dates in
  that form, where it writes one date for one parameter, or as many dates as there are
  parameters, in order ("March 20 - March 24, 2026" for ``check_in`` and ``check_out``);
  only where the call wrote each of them in digits (not "Saturday").

A value already in the asked form is left alone, as is every value where the request holds
none or several of the kind. The rules were chosen on needle-smol's answers to the
validation splits (docs/evaluation.md).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workers.request_values import (
    dates,
    digit_numbers,
    durations,
    phone_numbers,
    quoted_texts,
)
from workers.text import normal_text

_FIRST_NAME = {"firstname", "givenname", "forename", "first"}
_LAST_NAME = {"lastname", "surname", "familyname", "last"}
_PHONE_EXAMPLE = ("+14155550134", "14155550134")
_LENGTH_OF_TIME = re.compile(r"duration|elapsed|length|how long|time taken")


def _fits(pattern: Any, value: str) -> bool:
    if not isinstance(pattern, str):
        return True
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def _asks_e164(schema: Mapping[str, Any]) -> bool:
    description = str(schema.get("description") or "").casefold()
    if "e.164" in description or "e164" in description:
        return True
    pattern = schema.get("pattern")
    with_plus, digits = _PHONE_EXAMPLE
    return isinstance(pattern, str) and _fits(pattern, with_plus) and not _fits(pattern, digits)


def _duration_form(name: str, schema: Mapping[str, Any]) -> str | None:
    """``"hms"`` for a length of time as ``HH:MM:SS`` (not a time of day: the name or
    description says duration, elapsed or length), ``"iso"`` for an ISO 8601 duration, or
    None."""
    description = str(schema.get("description") or "").casefold()
    pattern = schema.get("pattern")
    hms = "hh:mm:ss" in description or (isinstance(pattern, str) and _fits(pattern, "01:02:03"))
    if hms and _LENGTH_OF_TIME.search(f"{name.casefold()} {description}"):
        return "hms"
    if re.search(r"iso[ -]?8601 duration", description) or (
        isinstance(pattern, str) and _fits(pattern, "PT1H2M3S")
    ):
        return "iso"
    return None


def _date_form(schema: Mapping[str, Any]) -> str | None:
    """The ``strftime`` form of a date parameter, or None for any other."""
    description = str(schema.get("description") or "")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and _fits(pattern, "2026-03-20"):
        return "%Y-%m-%d"
    if "MM/DD/YYYY" in description:
        return "%m/%d/%Y"
    if "DD/MM/YYYY" in description:
        return "%d/%m/%Y"
    if pattern is None and (
        schema.get("format") == "date" or re.search(r"YYYY-MM-DD(?!T)", description)
    ):
        return "%Y-%m-%d"
    return None


def _in_form(seconds: int, form: str) -> str:
    hours, minutes, rest = seconds // 3600, seconds % 3600 // 60, seconds % 60
    if form == "hms":
        return f"{hours:02d}:{minutes:02d}:{rest:02d}"
    parts = [(hours, "H"), (minutes, "M"), (rest, "S")]
    return "PT" + ("".join(f"{n}{unit}" for n, unit in parts if n) or "0S")


class _Request:
    """What the request holds of each kind, found once per answer."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.normal = normal_text(query)
        self.phones = phone_numbers(query)
        self.numbers = digit_numbers(query)
        self.durations = durations(query)
        self.quotes = quoted_texts(query)
        self.dates = dates(query)

    def holds(self, value: str) -> bool:
        """Whether the request writes ``value`` as words of its own ("Chen" is not in
        "kitchen")."""
        words = re.escape(normal_text(value))
        return re.search(rf"(?<!\w){words}(?!\w)", self.normal) is not None


def _phone(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if not _asks_e164(schema) or len(request.phones) != 1:
        return None
    return request.phones[0]


def _digits(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    pattern = schema.get("pattern")
    if not isinstance(pattern, str) or request.holds(value):
        return None
    fitting = [number for number in request.numbers if _fits(pattern, number)]
    return fitting[0] if len(fitting) == 1 else None


def _duration(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    form = _duration_form(key, schema)
    if form is None or len(request.durations) != 1 or request.durations[0] is None:
        return None
    return _in_form(request.durations[0], form)


def _quote(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if any(key in schema for key in ("enum", "pattern", "format")) or len(value.strip()) < 2:
        return None
    start = normal_text(value)
    if any(normal_text(text) == start for text in request.quotes):
        return None  # the whole of another quoted text
    longer = [
        text
        for text in request.quotes
        if normal_text(text).startswith(start) and normal_text(text) != start
    ]
    return longer[0] if len(set(longer)) == 1 else None


_RULES: list[tuple[str, Callable[[str, str, Mapping[str, Any], _Request], str | None]]] = [
    ("phone", _phone),
    ("digits", _digits),
    ("duration", _duration),
    ("quote", _quote),
]


def _name_key(key: str, names: set[str]) -> bool:
    return re.sub(r"[^a-z]", "", key.casefold()) in names


def _split_name(
    arguments: dict[str, Any], properties: Mapping[str, Any], request: _Request
) -> list[tuple[str, Any, str]]:
    """``(key, before, after)`` for the first and last name split from a whole name."""
    first = next((key for key in properties if _name_key(key, _FIRST_NAME)), None)
    last = next((key for key in properties if _name_key(key, _LAST_NAME)), None)
    if first is None or last is None:
        return []
    for whole in (arguments.get(first), arguments.get(last)):
        if not isinstance(whole, str) or len(whole.split()) != 2 or not request.holds(whole):
            continue
        changes = []
        for key, word in zip((first, last), whole.split(), strict=True):
            before = arguments.get(key)
            replace = before is None or before == whole or not request.holds(str(before))
            if replace and before != word:
                changes.append((key, before, word))
        return changes
    return []


def _place_dates(
    arguments: dict[str, Any], properties: Mapping[str, Any], request: _Request
) -> list[tuple[str, Any, str]]:
    """``(key, before, after)`` for the date parameters given the request's dates."""
    keys = [
        key
        for key, schema in properties.items()
        if isinstance(arguments.get(key), str)
        and isinstance(schema, Mapping)
        and _date_form(schema) is not None
    ]
    said = [date for date in request.dates if date is not None]
    if not keys or len(said) != len(request.dates) or len(keys) != len(said):
        return []
    if not all(re.search(r"\d", arguments[key]) for key in keys):
        return []  # "Saturday": a day worked out, and the request's date only its context
    if any(later <= earlier for earlier, later in itertools.pairwise(said)):
        return []
    changes = []
    for key, date in zip(keys, said, strict=True):
        after = date.strftime(_date_form(properties[key]) or "")
        if arguments[key] != after and _fits(properties[key].get("pattern"), after):
            changes.append((key, arguments[key], after))
    return changes


def reformat_strings(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the strings they take from the request in their parameters' form, and
    ``{"call", "path", "from", "to", "rule"}`` for each value changed (``"from": null``: a
    last name the call left out)."""
    request = _Request(query)
    parameters = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    changed: list[dict[str, Any]] = []

    def walk(value: Any, schema: Any, path: list[str], call: int) -> Any:
        schema = schema if isinstance(schema, Mapping) else {}
        if isinstance(value, list):
            items = schema.get("items")
            return [walk(item, items, [*path, str(k)], call) for k, item in enumerate(value)]
        if isinstance(value, Mapping):
            properties = schema.get("properties") or {}
            out = {
                key: walk(item, properties.get(key), [*path, str(key)], call)
                for key, item in value.items()
            }
            for rule, place in (("name", _split_name), ("date", _place_dates)):
                for key, before, after in place(out, properties, request):
                    out[key] = after
                    where = "/".join([*path, key])
                    changed.append(
                        {"call": call, "path": where, "from": before, "to": after, "rule": rule}
                    )
            return out
        if not isinstance(value, str) or schema.get("type") not in (None, "string"):
            return value
        for rule, reformat in _RULES:
            after = reformat(path[-1] if path else "", value, schema, request)
            if after is not None and after != value and _fits(schema.get("pattern"), after):
                where = "/".join(path)
                changed.append(
                    {"call": call, "path": where, "from": value, "to": after, "rule": rule}
                )
                return after
        return value

    result = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments")
        if isinstance(arguments, Mapping):
            parameters_schema = parameters.get(call.get("name"), {})
            call = {**call, "arguments": walk(arguments, parameters_schema, [], index)}
        result.append(dict(call))
    return result, changed
