"""How request text and argument strings are compared: case folded, white space collapsed."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def normal_text(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip()
