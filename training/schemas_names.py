"""Names in generated tool definitions: words in the identifier styles API authors use
(snake, camel, Pascal, kebab), what two names differing only in style share, and the
"a"/"an" fix-up of generated text.  Plain text work; the vocabulary is not needed here."""

from __future__ import annotations

import random
import re

STYLES = ["snake", "snake", "snake", "snake", "snake", "camel", "camel", "pascal", "kebab"]


def styled(words: list[str], style: str) -> str:
    words = [w for w in words if w]
    if style == "camel":
        return words[0].lower() + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "kebab":
        return "-".join(words)
    return "_".join(words)


def split_words(name: str) -> list[str]:
    """``get_weather`` / ``getWeather`` / ``weather.get`` -> lower-case words."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w.lower() for w in re.split(r"[_.\-\s]+", name) if w]


def name_key(name: str) -> str:
    """What two names share when they differ only in style: ``getWeather``, ``get-weather``
    and ``Get.Weather`` are all ``get_weather``."""
    return "_".join(split_words(name))


def _identifier(rng: random.Random, words: list[str], style: str, taken: set[str]) -> str:
    name = styled(words, style)
    while name in taken or not D_TOOL_NAME.match(name):
        name = styled([*words, str(rng.randint(2, 99))], style)
    taken.add(name)
    return name


D_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


def _article(text: str) -> str:
    text = re.sub(r"\ba ([aeiouAEIOU])", r"an \1", text)
    return re.sub(r"\ban ([^aeiouAEIOU\W])", r"a \1", text)
