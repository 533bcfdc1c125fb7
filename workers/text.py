"""How request text and argument strings are compared: case folded, white space collapsed."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
_NAME_PART = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def normal_text(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip()


def stem(word: str) -> str:
    """A plural's singular, roughly: "highways" and "highway" meet, "pets" and "pet"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def name_words(name: str) -> list[str]:
    """The words of a parameter's name, case folded: ``avoidHighways``, ``avoid_highways``
    and ``avoid-highways`` give ``["avoid", "highways"]``, ``timeoutMS`` ``["timeout", "ms"]``."""
    return [part.casefold() for part in _NAME_PART.findall(name)]
