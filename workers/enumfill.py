"""Optional ``enum`` arguments the model left out where the request names one of the values.

A small model often stops after the required arguments: "are the preliminary thyroid test
results back" gives no ``"status": "preliminary"``, "my credit is excellent" no
``"credit_band": "excellent"``. Where a called tool has an optional string parameter with
an ``enum``, the call leaves it out, and the request names exactly one of its values as
words ("time-of-use" for ``time_of_use``, after case folding), the value is filled in,
unless that value is already an argument of the answer, is the parameter's ``default``, or
is what its description says it defaults to. Top-level parameters only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from workers.fill import fill_left_out, string_values
from workers.text import normal_text

_NOT_WORD = re.compile(r"[^\w\s-]")


def _spellings(value: str) -> set[str]:
    text = normal_text(value)
    return {text, text.replace("_", " "), text.replace("_", "-"), text.replace("-", " ")}


def _named_default(value: str, description: str) -> bool:
    """Whether ``description`` says the parameter defaults to ``value`` ("Defaults to
    water.", "default: water")."""
    pattern = r"default\w*\W+(?:to\W+|is\W+)?\W*" + re.escape(normal_text(value)) + r"\b"
    return re.search(pattern, normal_text(description)) is not None


def _named_value(schema: Mapping[str, Any], request: str, used: set[str]) -> str | None:
    """The one ``enum`` value the request names, if it names exactly one and it may be
    filled in."""
    if schema.get("type") not in (None, "string"):
        return None
    values = [value for value in schema.get("enum") or [] if isinstance(value, str)]
    named = [
        value
        for value in values
        if normal_text(value) not in used
        and any(f" {spelling} " in request for spelling in _spellings(value))
    ]
    if len(named) != 1:
        return None
    value = named[0]
    if value == schema.get("default") or _named_default(value, str(schema.get("description"))):
        return None
    return value


def fill_enums(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the optional enum arguments the request names filled in, and
    ``{"call", "path", "value", "rule": "enum"}`` for each one filled."""
    request = f" {_NOT_WORD.sub(' ', normal_text(query))} "
    used = string_values(calls)
    return fill_left_out(
        calls,
        tools,
        "enum",
        lambda _call, _arguments, _name, schema: _named_value(schema, request, used),
    )
