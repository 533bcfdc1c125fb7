"""Strings a call takes from the request, put in the form their parameter asks (and the two
numbers of a pair, put in the places the request gives them: ``order``).

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
- ``code``: a parameter that asks an ISO code of a language (639-1), country (3166-1) or
  currency (4217) gets the code of the name the call wrote ("Canada" -> ``CA``), or, where
  the call wrote two or three letters that are no such code ("kc"), of the one language
  (country, currency) the request names ("into Korean" -> ``ko``; the names are data,
  :mod:`workers.codes`);
- ``quote``: a free string (no ``enum``, ``pattern`` or ``format``) that is the start of
  exactly one quoted text of the request, and not the whole of another, becomes the whole
  of it;
- ``case``: a free string the request writes once, as words of its own, in another case
  ("lunch next week" for "Lunch next week", "PLr_88213" for "plr_88213"), becomes the
  request's spelling;
- ``name``: of a first-name and a last-name parameter side by side, one holding a two-word
  name from the request, each gets its word (where it was the whole name, left out, or not
  in the request);
- ``place``: a parameter that asks a city with its country's ISO 3166 code ("City and ISO
  3166 country code, e.g. 'Lyon, FR'") gets the code after the city the call copied: of the
  one country the request names, else of that city's country (``cities.json``,
  :func:`workers.codes.country_of_city`);
- ``region``: a place the call copied without the two capitals the request writes after it
  ("Raleigh" for "Raleigh, NC") gets them, where the tool has no state or country parameter;
- ``host``: a URL where the schema asks a host name alone becomes its host;
- ``order``: two numbers of a pair (``base_a``/``base_b``, ``num1``/``num2``) of a tool that
  declares the second first, given in the declared order where the request writes them in
  the other, change places (a number the request calls "the first" or "the second" goes
  there);
- ``date``: the date parameters an object gives (``format: date``, or described or
  patterned as ``YYYY-MM-DD``, ``MM/DD/YYYY`` or ``DD/MM/YYYY``) get the request's dates in
  that form, where it writes one date for one parameter, or as many dates as there are
  parameters, in order ("March 20 - March 24, 2026" for ``check_in`` and ``check_out``);
  only where the call wrote each of them in digits (not "Saturday");
- ``time``: the time-of-day parameters an object gives (a ``pattern`` that takes "14:30", or
  "2:30 PM" and not "14:30"; described as ``HH:MM`` or 12-hour) get the request's times the
  same way ("9:30-11 am" is two);
- ``datetime``: the local date-and-time parameters a call gives, nested or not
  (``YYYY-MM-DDTHH:MM``, with or without seconds), get the request's one date with its
  times, as many as there are parameters.

Dates, times and date-and-times are placed only where one object (one call) holds every
parameter of that kind in the answer, so that two calls with a time each, where the request
writes one time it reads and one it does not ("9 tonight"), keep the model's.

A value already in the asked form is left alone, as is every value where the request holds
none or several of the kind. The rules were chosen on needle-smol's answers to the
validation splits (docs/evaluation.md).
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from workers.codes import (
    FORM_KINDS,
    alpha_3,
    code_of,
    codes_named,
    country_of_city,
    is_code,
)
from workers.request_values import (
    dates,
    digit_numbers,
    durations,
    phone_numbers,
    quoted_texts,
    times,
)
from workers.text import name_words, normal_text
from workers.value_forms import (
    asks_e164,
    asks_host,
    asks_place_with_code,
    code_form,
    date_form,
    datetime_form,
    duration_form,
    duration_in_form,
    fits_pattern,
    time_form,
    time_in_form,
)

_FIRST_NAME = {"firstname", "givenname", "forename", "first"}
_LAST_NAME = {"lastname", "surname", "familyname", "last"}


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
        self.times = times(query)
        # how many date, time and date-and-time parameters the whole answer gives: the
        # request's dates and times are placed only where one object (or call) has them all
        self.answer_places: Counter[str] = Counter()

    def count_places(self, value: Any, schema: Any, key: str = "") -> None:
        schema = schema if isinstance(schema, Mapping) else {}
        if isinstance(value, Mapping):
            properties = schema.get("properties") or {}
            for name, item in value.items():
                self.count_places(item, properties.get(name), str(name))
        elif _written_in_digits(value):
            for kind, found in (
                ("date", date_form(schema)),
                ("time", time_form(key, schema)),
                ("datetime", datetime_form(schema)),
            ):
                if found is not None:
                    self.answer_places[kind] += 1

    def spelling(self, value: str) -> str | None:
        """How the request writes ``value``, where it writes it once as words of its own and
        only the case differs ("Lunch next week" for "lunch next week")."""
        found = re.findall(rf"(?<!\w){re.escape(value)}(?!\w)", self.query, re.IGNORECASE)
        return found[0] if len(found) == 1 else None

    def holds(self, value: str) -> bool:
        """Whether the request writes ``value`` as words of its own ("Chen" is not in
        "kitchen")."""
        words = re.escape(normal_text(value))
        return re.search(rf"(?<!\w){words}(?!\w)", self.normal) is not None


def _phone(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if not asks_e164(schema) or len(request.phones) != 1:
        return None
    return request.phones[0]


def _digits(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    pattern = schema.get("pattern")
    if not isinstance(pattern, str) or request.holds(value):
        return None
    fitting = [number for number in request.numbers if fits_pattern(pattern, number)]
    return fitting[0] if len(fitting) == 1 else None


def _duration(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    form = duration_form(key, schema)
    if form is None or len(request.durations) != 1 or request.durations[0] is None:
        return None
    return duration_in_form(request.durations[0], form)


def _quote(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if any(word in schema for word in ("enum", "pattern", "format")) or len(value.strip()) < 2:
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


def _code(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    form = code_form(key, schema)
    if form is None:
        return None
    kind = FORM_KINDS[form]
    code = code_of(kind, value)
    if code is None:
        letters = 3 if form in ("currency", "country_3") else 2
        if not re.fullmatch(rf"[A-Za-z]{{{letters}}}", value) or is_code(kind, value):
            return None  # not a code the model tried and missed ("kc" for Korean)
        named = codes_named(kind, request.query)
        if len(named) != 1:
            return None
        code = named.pop()
    if form == "country_3":
        code = alpha_3(code)
    pattern = schema.get("pattern")
    spellings = (code.lower(), code.upper()) if kind == "language" else (code.upper(), code.lower())
    return next((spelling for spelling in spellings if fits_pattern(pattern, spelling)), None)


def _host(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if not asks_host(schema) or "/" not in value:
        return None
    host = urlsplit(value if "://" in value else f"//{value}").hostname
    return host if host and request.holds(host) else None


def _place(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if not asks_place_with_code(key, schema):
        return None
    place, _, country = (part.strip() for part in value.partition(","))
    if country:
        if len(country) == 2 and is_code("country", country):
            return None  # already in the form
        code = code_of("country", country)
    else:
        if not request.holds(place) or code_of("country", place) is not None:
            return None  # not a copy, or a country and no city ("Mexico")
        named = codes_named("country", request.query)
        code = named.pop() if len(named) == 1 else country_of_city(place)
    return None if code is None or not place else f"{place}, {code.upper()}"


def _case(key: str, value: str, schema: Mapping[str, Any], request: _Request) -> str | None:
    if any(word in schema for word in ("enum", "pattern", "format")) or not value.strip():
        return None
    return request.spelling(value)


_RULES: list[tuple[str, Callable[[str, str, Mapping[str, Any], _Request], str | None]]] = [
    ("phone", _phone),
    ("digits", _digits),
    ("duration", _duration),
    ("code", _code),
    ("host", _host),
    ("place", _place),
    ("quote", _quote),
    ("case", _case),
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


_PLACE_KEYS = {"location", "destination", "place", "address", "near", "where", "center", "origin"}
_REGION_KEYS = {"state", "country", "region", "province", "county"}


def _add_region(
    arguments: dict[str, Any], properties: Mapping[str, Any], request: _Request
) -> list[tuple[str, Any, str]]:
    """``(key, before, after)`` for a place the call copied without the state or country
    code the request writes after it ("Austin" for "in Austin, TX"), where the tool has no
    parameter of its own for that."""
    if any(_REGION_KEYS.intersection(name_words(str(key))) for key in properties):
        return []
    changes = []
    for key, value in arguments.items():
        schema = properties.get(key)
        if not isinstance(value, str) or not isinstance(schema, Mapping) or not value.strip():
            continue
        if not _PLACE_KEYS.intersection(name_words(key)) or asks_place_with_code(key, schema):
            continue
        if any(word in schema for word in ("enum", "pattern", "format")):
            continue
        written = rf"(?<!\w){re.escape(value)},\s*([A-Z]{{2}})\b(?![\w,])"
        found = re.findall(written, request.query)
        if len(found) == 1:
            changes.append((key, value, f"{value}, {found[0]}"))
    return changes


_PAIR_KEY = re.compile(r"(.*?)[_-]?(a|b|1|2|first|second|one|two)", re.IGNORECASE)
_ORDINAL_KEY = re.compile(r"(first|second)[_-]?(.*)", re.IGNORECASE)
_PAIRS = (("a", "b"), ("1", "2"), ("first", "second"), ("one", "two"))
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\d])")
_ORDINAL_WORD = {"first": "first", "1st": "first", "second": "second", "2nd": "second"}


def _pair_part(key: str) -> tuple[str, str] | None:
    """``(stem, ordinal)`` of a key that is one of a pair: ``base_a`` -> ``("base", "a")``,
    ``num2`` -> ``("num", "2")``, ``first_base`` -> ``("base", "first")``."""
    if match := _PAIR_KEY.fullmatch(key):
        return match.group(1).casefold(), match.group(2).casefold()
    if match := _ORDINAL_KEY.fullmatch(key):
        return match.group(2).casefold(), match.group(1).casefold()
    return None


def _said_at(query: str, number: float) -> list[int]:
    places = []
    for match in _NUMBER.finditer(query):
        if float(match.group()) == number:
            places.append(match.start())
    return places


def _said_as(query: str, at: int) -> str | None:
    """ "first" or "second" where one of the four words before ``at`` says so."""
    words = re.findall(r"[a-z0-9]+", query[:at].casefold())[-4:]
    return next((_ORDINAL_WORD[word] for word in reversed(words) if word in _ORDINAL_WORD), None)


def _order_pair(
    arguments: dict[str, Any], properties: Mapping[str, Any], request: _Request
) -> list[tuple[str, Any, Any]]:
    """``(key, before, after)`` for two numbers of a pair (``base_a``/``base_b``, ``num1``/
    ``num2``) of a tool that declares the second before the first, which the call gave in
    the declared order and the request in the other: each gets the number the request
    writes in its place, or that it calls the first (second) of the two."""
    declared = list(properties)
    parts: dict[str, dict[str, str]] = {}
    for key, value in arguments.items():
        part = _pair_part(str(key))
        if part and isinstance(value, int | float) and not isinstance(value, bool):
            parts.setdefault(part[0], {})[part[1]] = key
    changes: list[tuple[str, Any, Any]] = []
    for keys in parts.values():
        for first, second in _PAIRS:
            if first not in keys or second not in keys:
                continue
            one, two = keys[first], keys[second]
            if (
                one not in declared
                or two not in declared
                or declared.index(two) > declared.index(one)
            ):
                continue  # declared in order: the model reads such a pair well
            at_one, at_two = (
                _said_at(request.query, arguments[one]),
                _said_at(request.query, arguments[two]),
            )
            if len(at_one) != 1 or len(at_two) != 1 or arguments[one] == arguments[two]:
                continue
            said_one, said_two = (
                _said_as(request.query, at_one[0]),
                _said_as(request.query, at_two[0]),
            )
            if said_one is not None and said_one == said_two:
                continue  # both called the first (second): unsure
            if said_one or said_two:
                swap = said_one == "second" or said_two == "first"
            else:
                swap = at_one[0] > at_two[0]
            if swap:
                changes += [
                    (one, arguments[one], arguments[two]),
                    (two, arguments[two], arguments[one]),
                ]
    return changes


def _in_order(said: Sequence[Any], places: int, kind: str, request: _Request) -> list[Any]:
    """The request's values of a kind, where they can be placed in order on ``places``
    parameters: every one read, as many as the parameters, the answer holding no other such
    parameter, and rising; else none."""
    known = [value for value in said if value is not None]
    if not places or len(known) != len(said) or len(known) != places:
        return []
    if request.answer_places[kind] != places:
        return []  # two calls with a date (a time) each, the request writing one
    if any(later <= earlier for earlier, later in itertools.pairwise(known)):
        return []
    return known


def _place_dates(
    arguments: dict[str, Any], properties: Mapping[str, Any], request: _Request
) -> list[tuple[str, Any, str]]:
    """``(key, before, after)`` for the date parameters given the request's dates."""
    keys = [
        key
        for key, schema in properties.items()
        if isinstance(arguments.get(key), str)
        and isinstance(schema, Mapping)
        and date_form(schema) is not None
    ]
    if not all(_written_in_digits(arguments[key]) for key in keys):
        return []  # "Saturday": a day worked out, and the request's date only its context
    said = _in_order(request.dates, len(keys), "date", request)
    if not said:
        return []
    changes = []
    for key, date in zip(keys, said, strict=True):
        after = date.strftime(date_form(properties[key]) or "")
        if arguments[key] != after and fits_pattern(properties[key].get("pattern"), after):
            changes.append((key, arguments[key], after))
    return changes


def _written_in_digits(value: Any) -> bool:
    return isinstance(value, str) and re.search(r"\d", value) is not None


def _place_times(
    arguments: dict[str, Any], properties: Mapping[str, Any], request: _Request
) -> list[tuple[str, Any, str]]:
    """``(key, before, after)`` for the time-of-day parameters given the request's times:
    one for one, or as many as there are, rising ("9:30-11 am")."""
    forms = {
        key: form
        for key, schema in properties.items()
        if isinstance(schema, Mapping)
        and _written_in_digits(arguments.get(key))
        and (form := time_form(key, schema)) is not None
    }
    said = _in_order(request.times, len(forms), "time", request)
    if not said:
        return []
    changes = []
    for (key, form), minutes in zip(forms.items(), said, strict=True):
        after = time_in_form(minutes, form)
        if arguments[key] != after and fits_pattern(properties[key].get("pattern"), after):
            changes.append((key, arguments[key], after))
    return changes


def _datetime_places(value: Any, schema: Any, path: list[str]) -> list[tuple[list[str], str]]:
    """Each local date-and-time parameter a call gives, in the schema's order: its path and
    ``strftime`` form."""
    schema = schema if isinstance(schema, Mapping) else {}
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        return [
            place
            for key in properties
            if key in value
            for place in _datetime_places(value[key], properties[key], [*path, key])
        ]
    form = datetime_form(schema)
    return [(path, form)] if form is not None and _written_in_digits(value) else []


def _place_datetimes(
    arguments: dict[str, Any], schema: Mapping[str, Any], request: _Request
) -> list[tuple[list[str], Any, str]]:
    """``(path, before, after)`` for a call's date-and-time parameters, where the request
    writes one date and as many times as there are parameters, rising ("Oct 2 2026,
    9:30-11 am" for a start and an end)."""
    places = _datetime_places(arguments, schema, [])
    if len(request.dates) != 1 or request.dates[0] is None:
        return []
    said = _in_order(request.times, len(places), "datetime", request)
    if not said:
        return []
    day = request.dates[0]
    changes = []
    for (path, form), minutes in zip(places, said, strict=True):
        moment = datetime.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
        node: Any = arguments
        for key in path[:-1]:
            node = node[key]
        before = node[path[-1]]
        after = moment.strftime(form)
        if before != after:
            changes.append((path, before, after))
    return changes


def reformat_strings(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the strings they take from the request in their parameters' form, and
    ``{"call", "path", "from", "to", "rule"}`` for each value changed (``"from": null``: a
    last name the call left out)."""
    request = _Request(query)
    parameters = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    for call in calls:
        request.count_places(call.get("arguments"), parameters.get(call.get("name"), {}))
    changed: list[dict[str, Any]] = []

    def record(call: int, path: list[str], before: Any, after: Any, rule: str) -> None:
        where = "/".join(path)
        changed.append({"call": call, "path": where, "from": before, "to": after, "rule": rule})

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
            rules = (
                ("name", _split_name),
                ("order", _order_pair),
                ("region", _add_region),
                ("date", _place_dates),
                ("time", _place_times),
            )
            for rule, place in rules:
                for key, before, after in place(out, properties, request):
                    out[key] = after
                    record(call, [*path, key], before, after, rule)
            return out
        if not isinstance(value, str) or schema.get("type") not in (None, "string"):
            return value
        for rule, reformat in _RULES:
            after = reformat(path[-1] if path else "", value, schema, request)
            if after is not None and after != value and fits_pattern(schema.get("pattern"), after):
                record(call, path, value, after, rule)
                return after
        return value

    result = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments")
        if isinstance(arguments, Mapping):
            parameters_schema = parameters.get(call.get("name"), {})
            arguments = walk(arguments, parameters_schema, [], index)
            for path, before, after in _place_datetimes(arguments, parameters_schema, request):
                node = arguments
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = after
                record(index, path, before, after, "datetime")
            call = {**call, "arguments": arguments}
        result.append(dict(call))
    return result, changed
