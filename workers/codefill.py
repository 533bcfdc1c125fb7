"""Optional ISO-code arguments the model left out where the request names the one thing
they stand for.

"we spent 230 euros at dinner, 4 people, split it" gives a bill split with no
``"currency": "EUR"``; "forecast for Toronto, Canada tomorrow" a city with no ``"country":
"CA"``. Where a called tool has an optional parameter that asks an ISO 639-1, 3166-1 or
4217 code (:func:`workers.value_forms.code_form`: "ISO 4217 currency code", or an ``enum``
of such codes and nothing else), the call leaves it out (or gives ``null``), and the request
names exactly one language (country, currency) by a name, a currency sign ("€", "£") or a
currency code it writes ("shown in AUD"), that code is filled in (:mod:`workers.codes`).
Left alone: a name a string argument of the call holds ("Mexico City" names no country), a
code the answer already gives, the parameter's ``default``. Top-level parameters only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workers.codes import FORM_KINDS, CodeKind, alpha_3, is_code, names_in
from workers.fill import argument_text, fill_left_out, string_values
from workers.text import normal_text
from workers.value_forms import code_form

_KINDS: tuple[CodeKind, ...] = ("currency", "country", "language")


def _enum_kind(schema: Mapping[str, Any]) -> CodeKind | None:
    """The kind of code every value of the parameter's ``enum`` is, if one is."""
    values = schema.get("enum")
    if not values or not all(isinstance(value, str) for value in values):
        return None
    return next((kind for kind in _KINDS if all(is_code(kind, v) for v in values)), None)


def _asked(key: str, schema: Mapping[str, Any]) -> tuple[CodeKind, bool] | None:
    """The kind of code the parameter asks, and whether alpha-3 for a country."""
    form = code_form(key, schema)
    if form is not None:
        return FORM_KINDS[form], form == "country_3"
    kind = _enum_kind(schema)
    return None if kind is None else (kind, False)


def _code(
    key: str, schema: Mapping[str, Any], query: str, arguments: Mapping[str, Any], used: set[str]
) -> str | None:
    asked = _asked(key, schema)
    if asked is None:
        return None
    kind, three_letters = asked
    held = argument_text(arguments)
    codes = {code for name, code in names_in(kind, query).items() if name not in held}
    if len(codes) != 1:
        return None
    code = codes.pop()
    if three_letters:
        code = alpha_3(code)
    enum = schema.get("enum")
    if enum is not None:
        code = next((value for value in enum if value.upper() == code.upper()), "")
        if not code:
            return None
    elif kind == "language":
        code = code.lower()
    if normal_text(code) in used or code == schema.get("default"):
        return None
    return code


def fill_codes(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the optional code arguments the request names filled in, and
    ``{"call", "path", "value", "rule": "code"}`` for each one filled."""
    used = string_values(calls)
    return fill_left_out(
        calls,
        tools,
        "code",
        lambda _call, arguments, name, schema: _code(name, schema, query, arguments, used),
    )
