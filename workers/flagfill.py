"""Optional boolean arguments the model left out where the request names the flag.

A small model often stops after the required arguments: "shuffle my Focus playlist" gives
no ``"shuffle": true``, "Korean restaurants open right now" no ``"open_now": true``. Where
a called tool has an optional boolean parameter, the call leaves it out, and the request
holds every word of its name that says what it turns on (``include_tracklist`` is named
by "tracklist"; the function words are data, ``flagfill.json``), the flag is set to
``true``. Left alone: a flag whose words are also in a string argument of the call (the
words are that value's), a flag another call of the same tool already sets (the request
named it for that one), and a flag with a negation just before its words ("don't
shuffle"). Only ``true`` is filled in, and only top-level parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from workers.fill import argument_text, fill_left_out
from workers.text import name_words, normal_text, stem

_WORD = re.compile(r"[a-z0-9']+")
_NEGATION_WINDOW = 3  # words before the flag's first word that may negate it


@cache
def _words() -> tuple[frozenset[str], frozenset[str]]:
    table = json.loads(Path(__file__).with_name("flagfill.json").read_text(encoding="utf-8"))
    return frozenset(table["function_words"]), frozenset(table["negations"])


def function_words() -> frozenset[str]:
    """Words of a parameter's name that do not name what it is about ("include", "only")."""
    return _words()[0]


def _flag_words(name: str) -> list[str]:
    return [stem(word) for word in name_words(name) if word not in function_words()]


def _named(name: str, request: list[str], stems: list[str], values: str) -> bool:
    """Whether the request names the flag ``name``, not negated, and no string argument
    holds its words."""
    words = _flag_words(name)
    if not words or any(word not in stems for word in words):
        return False
    if any(re.search(rf"\b{re.escape(word)}", values) for word in words):
        return False
    _, negations = _words()
    first = min(stems.index(word) for word in words)
    return not negations.intersection(request[max(0, first - _NEGATION_WINDOW) : first])


def _is_flag(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "boolean"


def fill_flags(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the optional flags the request names set to ``true``, and
    ``{"call", "path", "value", "rule": "flag"}`` for each one filled."""
    request = _WORD.findall(normal_text(query).replace("\u2019", "'"))
    stems = [stem(word) for word in request]

    def choose(index: int, arguments: dict[str, Any], name: str, schema: Mapping[str, Any]) -> Any:
        call = calls[index]
        if not _is_flag(schema) or any(
            name in (sibling.get("arguments") or {})
            for other, sibling in enumerate(calls)
            if other != index and sibling.get("name") == call.get("name")
        ):
            return None  # not a flag, or one another call of the tool sets
        values = argument_text(arguments)
        return True if _named(name, request, stems, values) else None

    return fill_left_out(calls, tools, "flag", choose)
