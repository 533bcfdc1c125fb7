"""Values a request writes in a form of its own: phone numbers, long numbers in groups,
durations, quoted text. :mod:`workers.reformat` puts them in the form a parameter asks."""

from __future__ import annotations

import re

# A run of digits with the separators phone numbers are written with, and an optional "+".
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d\s().-]{5,}\d)(?![\w])")
# Digits in groups parted by one space or dash ("6035-7722-0198-4410"), or none.
_DIGIT_GROUPS = re.compile(r"(?<![\w.-])\d+(?:[ -]\d+)*(?![\w-])")
_CLOCK_HMS = re.compile(r"(?<![\d:])(\d{1,2}):([0-5]\d):([0-5]\d)(?![\d:])")
_CLOCK_TWO = re.compile(r"(?<![\d:])(\d{1,3}):([0-5]\d)(?![\d:])")
_SPOKEN = re.compile(
    r"(\d+(?:\.\d+)?)\s*-?\s*(hours?|hrs?|minutes?|mins?|seconds?|secs?)\b", re.IGNORECASE
)
_SECONDS_PER = {"h": 3600, "m": 60, "s": 1}
_JOINED = re.compile(r"[\s,]*(?:and\s+)?")  # "1 hr 12 min", "1 hour and 15 minutes"
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”')


def phone_numbers(query: str) -> list[str]:
    """The request's phone numbers in E.164 (``+`` and digits), each once: a number written
    with ``+`` as it is, 11 digits from 1 and 10 North American digits ("(415) 555-0134")
    with ``+1``. Numbers of other countries written without their code are not known."""
    found: list[str] = []
    for match in _PHONE.finditer(query):
        written = match.group(1)
        digits = re.sub(r"\D", "", written)
        if written.startswith("+"):
            number = "+" + digits if 8 <= len(digits) <= 15 else None
        elif len(digits) == 11 and digits[0] == "1":
            number = "+" + digits
        elif len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
            number = "+1" + digits
        else:
            number = None
        if number is not None and number not in found:
            found.append(number)
    return found


def digit_numbers(query: str) -> list[str]:
    """Each number the request writes in digits, its groups joined ("6035 7722 0198 4410"
    -> "6035772201984410"), each once."""
    found: list[str] = []
    for match in _DIGIT_GROUPS.finditer(query):
        digits = re.sub(r"\D", "", match.group(0))
        if digits not in found:
            found.append(digits)
    return found


def durations(query: str) -> list[int | None]:
    """Each length of time the request writes, in seconds: "44:45" (minutes and seconds
    where the first part is 24 or more), "1:05:30", "41 minutes", "1 hr 12 min" (one
    duration). ``None`` for a clock-like "12:30", which may be hours or minutes."""
    found: list[tuple[int, int, float | None]] = []
    for match in _CLOCK_HMS.finditer(query):
        hours, minutes, seconds = (int(part) for part in match.groups())
        found.append((match.start(), match.end(), hours * 3600 + minutes * 60 + seconds))
    for match in _CLOCK_TWO.finditer(query):
        first, second = int(match[1]), int(match[2])
        found.append((match.start(), match.end(), first * 60 + second if first >= 24 else None))
    for match in _SPOKEN.finditer(query):
        seconds = float(match[1]) * _SECONDS_PER[match[2][0].lower()]
        found.append((match.start(), match.end(), seconds))
    found.sort()
    merged: list[tuple[int, int, float | None]] = []
    for start, end, seconds in found:
        if merged and _joins(query, merged[-1], start, seconds):
            first_start, _, before = merged[-1]
            merged[-1] = (first_start, end, (before or 0) + (seconds or 0))
        else:
            merged.append((start, end, seconds))
    return [
        None if seconds is None or not float(seconds).is_integer() else int(seconds)
        for _, _, seconds in merged
    ]


def _joins(
    query: str, previous: tuple[int, int, float | None], start: int, seconds: float | None
) -> bool:
    """Whether a spoken duration goes on the one before it ("1 hr" + "12 min")."""
    return (
        previous[2] is not None
        and seconds is not None
        and _JOINED.fullmatch(query[previous[1] : start]) is not None
    )


def quoted_texts(query: str) -> list[str]:
    """The texts the request puts in double quotes, straight or curly."""
    return [straight or curly for straight, curly in _QUOTED.findall(query)]
