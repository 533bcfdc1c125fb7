"""Languages, countries and currencies by their English names, and their ISO codes.

The table is data (``codes.json``, made by ``training/make_code_table.py`` from pycountry):
ISO 639-1 languages ("Korean" -> ``ko``), ISO 3166-1 countries ("Canada" -> ``CA``, and
its alpha-3 ``CAN``) and ISO 4217 currencies ("Euro" -> ``EUR``), and the signs of one
currency each ("€"); and the country of each large city (``cities.json``, made by
``training/make_city_table.py`` from GeoNames: "Osaka" -> ``JP``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from workers.text import normal_text

CodeKind = Literal["language", "country", "currency"]
# The kind of code each answer of workers.value_forms.code_form asks ("country_3": alpha-3).
FORM_KINDS: dict[str, CodeKind] = {
    "language": "language",
    "country": "country",
    "country_3": "country",
    "currency": "currency",
}
_NOT_NAME = re.compile(r"[^\w.'-]+")  # what no name holds: names keep "u.s.", "people's"
# A currency code as written: beside a number or after "in"/"to" ("120 AUD", "in AUD"), so
# that "ALL", "TOP" or "PHP" elsewhere in a request are words.
_WRITTEN_CODE = re.compile(
    r"(?:(?<=\d)\s?|\b(?:in|into|to)\s)([A-Z]{3})\b|\b([A-Z]{3})\s?(?=\d)", re.IGNORECASE
)


@cache
def _table() -> dict[str, Any]:
    return json.loads(Path(__file__).with_name("codes.json").read_text(encoding="utf-8"))


@cache
def _cities() -> dict[str, str]:
    return json.loads(Path(__file__).with_name("cities.json").read_text(encoding="utf-8"))


def country_of_city(name: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of the country of the city called ``name`` (a city of at
    least 100,000 people, much larger than any other of that name)."""
    return _cities().get(normal_text(name))


def code_of(kind: CodeKind, name: str) -> str | None:
    """The code of the language (country, currency) called ``name``, in any case."""
    return _table()["names"][kind].get(normal_text(name))


@cache
def _codes(kind: CodeKind) -> frozenset[str]:
    codes = _table()["codes"]
    found = {code.upper() for code in codes[kind]}
    if kind == "country":
        found |= set(codes["country_alpha_3"].values())
    return frozenset(found)


def is_code(kind: CodeKind, value: str) -> bool:
    """Whether ``value`` is such a code, in any case (``CAN`` too, for a country)."""
    return value.upper() in _codes(kind)


def alpha_3(country: str) -> str:
    return _table()["codes"]["country_alpha_3"][country]


def names_in(kind: CodeKind, query: str) -> dict[str, str]:
    """The languages (countries, currencies) the request names, each as it names it (folded)
    with its code: by name as words ("euros"), and a currency also by its sign ("€") or by
    its code in capitals beside a number or after "in" or "to" ("in AUD")."""
    request = " " + _NOT_NAME.sub(" ", normal_text(query)) + " "
    found = {
        name: code
        for name, code in _table()["names"][kind].items()
        if f" {name} " in request or f" {name}. " in request
    }
    if kind == "currency":
        found.update(
            {sign: code for sign, code in _table()["symbols"][kind].items() if sign in query}
        )
        for match in _WRITTEN_CODE.finditer(query):
            written = match.group(1) or match.group(2)
            if written.isupper() and written in _codes(kind):
                found[written.casefold()] = written
    return found


def codes_named(kind: CodeKind, query: str) -> set[str]:
    """The codes of the languages (countries, currencies) the request names."""
    return set(names_in(kind, query).values())
