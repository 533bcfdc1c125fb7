"""Languages, countries and currencies by their English names, and their ISO codes.

The table is data (``codes.json``, made by ``training/make_code_table.py`` from pycountry):
ISO 639-1 languages ("Korean" -> ``ko``), ISO 3166-1 countries ("Canada" -> ``CA``, and
its alpha-3 ``CAN``) and ISO 4217 currencies ("Euro" -> ``EUR``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from workers.text import normal_text

CodeKind = Literal["language", "country", "currency"]
_NOT_NAME = re.compile(r"[^\w.'-]+")  # what no name holds: names keep "u.s.", "people's"


@cache
def _table() -> dict[str, Any]:
    return json.loads(Path(__file__).with_name("codes.json").read_text(encoding="utf-8"))


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


def codes_named(kind: CodeKind, query: str) -> set[str]:
    """The codes of the languages (countries, currencies) the request names as words."""
    request = " " + _NOT_NAME.sub(" ", normal_text(query)) + " "
    return {
        code
        for name, code in _table()["names"][kind].items()
        if f" {name} " in request or f" {name}. " in request
    }
