"""Values a request writes in a form of its own: phone numbers, long numbers in groups,
durations, calendar dates, times of day, quoted text. :mod:`workers.reformat` puts them in
the form a parameter asks."""

from __future__ import annotations

import datetime
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
_MONTH_NUMBERS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_WORDS = "|".join(sorted(_MONTH_NUMBERS, key=len, reverse=True))
_MONTH = rf"({_MONTH_WORDS})\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_RANGE = r"\s*(?:-|–|—|to|through|thru|until|till)\s*"
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?!\d)")
_SLASH_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])")
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+{_DAY}\b{_YEAR}", re.IGNORECASE)
_DAY_MONTH = re.compile(rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}\b{_YEAR}", re.IGNORECASE)
# the second day of a range within one month: "March 20-24, 2026", "July 1st to the 5th"
_SAME_MONTH_END = re.compile(
    rf"{_RANGE}(?:the\s+)?{_DAY}\b(?!\s*(?::|am\b|pm\b|a\.m|p\.m|(?:{_MONTH_WORDS})\b))(?:,?\s+(\d{{4}}))?",
    re.IGNORECASE,
)


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


_CLOCK_TIME = re.compile(
    r"(?<![\d:.])(\d{1,2})(?::([0-5]\d))?\s*(a\.?m\.?|p\.?m\.?)?(?![\d:])|\b(noon|midnight)\b",
    re.IGNORECASE,
)

_TIME_IN_WORDS = re.compile(
    r"\b(?:half past|quarter (?:past|to)|o'?clock|tonight|this (?:morning|afternoon|evening)"
    r"|in the (?:morning|afternoon|evening)|at night|(?:one|two|three|four|five|six|seven|eight"
    r"|nine|ten|eleven|twelve) (?:am|pm|a\.m|p\.m|tonight|in the))\b",
    re.IGNORECASE,
)


def _calendar_date(year: int | None, month: int, day: int) -> datetime.date | None:
    if year is None:
        return None
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def dates(query: str) -> list[datetime.date | None]:
    """Each calendar date the request writes, in order: "2026-03-20", "2/15/2026" (month
    first where the day is over 12), "November 30, 2026", "the 9th of September 2026",
    "March 20 - March 24, 2026" and "July 1st to the 5th, 2026" (two; the first takes the
    year of the second). ``None`` for one it cannot be sure of: no year ("May 22nd"), or
    "3/4/2026", which may be March or April."""
    found: list[tuple[int, int, int | None, int, int]] = []  # start, end, year, month, day
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= before or start >= after for before, after in taken)

    for match in _ISO_DATE.finditer(query):
        taken.append(match.span())
        found.append((*match.span(), int(match[1]), int(match[2]), int(match[3])))
    for match in _SLASH_DATE.finditer(query):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        taken.append(match.span())
        if first <= 12 and second <= 12 and first != second:
            found.append((*match.span(), None, 0, 0))  # month or day first: not known
        elif first <= 12:
            found.append((*match.span(), year, first, second))
        else:
            found.append((*match.span(), year, second, first))
    named = [(m, 1, 2) for m in _MONTH_DAY.finditer(query)]
    named += [(m, 2, 1) for m in _DAY_MONTH.finditer(query)]
    for match, month_group, day_group in sorted(named, key=lambda item: item[0].start()):
        if not free(*match.span()):
            continue
        taken.append(match.span())
        month = _MONTH_NUMBERS[match[month_group].casefold()]
        day = int(match[day_group])
        year = int(match[3]) if match[3] else None
        end = _SAME_MONTH_END.match(query, match.end()) if year is None else None
        if end is not None and free(*end.span()):
            taken.append(end.span())
            year = int(end[2]) if end[2] else None
            found.append((*match.span(), year, month, day))
            found.append((*end.span(), year, month, int(end[1])))
        else:
            found.append((*match.span(), year, month, day))
    found.sort()
    result: list[datetime.date | None] = []
    for index, (_, end, year, month, day) in enumerate(found):
        following = found[index + 1] if index + 1 < len(found) else None
        if (
            year is None
            and month
            and following is not None
            and re.fullmatch(_RANGE, query[end : following[0]], re.IGNORECASE)
        ):
            year = following[2]  # "March 20 - March 24, 2026"
        result.append(_calendar_date(year, month, day) if month else None)
    return result


def times(query: str) -> list[int | None]:
    """Each time of day the request writes, in minutes after midnight, in order: "14:30",
    "09:05", "6:45 am", "4pm", "noon"; "9:30-11 am" and "4:15 to 5pm" (two; the first takes
    the second's half of the day). ``None`` for "9:30", which may be morning or evening, and
    one more ``None`` where the request also says a time in words it does not read ("half
    past 6", "9 tonight", "eleven"). A bare number ("5 people") is no time; "44:45" and
    "1:05:30" are lengths of time."""
    # start, end, minutes after midnight (None: which half of the day is not known), the
    # half of the day it says ("a", "p"; "24" for a 24-hour clock), the hour and minute
    # as written
    found: list[tuple[int, int, int | None, str | None, int]] = []
    for match in _CLOCK_TIME.finditer(query):
        if match[4]:
            minutes = 12 * 60 if match[4].casefold() == "noon" else 0
            found.append((*match.span(), minutes, None, minutes))
            continue
        hour, minute = int(match[1]), int(match[2] or 0)
        half = match[3][0].casefold() if match[3] else None
        if (match[2] is None and half is None) or hour > 23:
            continue  # a bare number, or not a clock
        written = hour * 60 + minute
        if half is not None:
            if not 1 <= hour <= 12:
                continue
            found.append((*match.span(), _in_half(written, half), half, written))
        elif hour >= 13 or hour == 0 or match[1].startswith("0") or hour == 12:
            found.append((*match.span(), written, "24", written))
        else:
            found.append((*match.span(), None, None, written))
    result: list[int | None] = []
    for index, (_, end, minutes, _half, written) in enumerate(found):
        following = found[index + 1] if index + 1 < len(found) else None
        if (
            minutes is None
            and following is not None
            and following[3] in ("a", "p")
            and re.fullmatch(_RANGE, query[end : following[0]], re.IGNORECASE)
        ):
            minutes = _in_half(written, following[3])
            if following[2] is not None and minutes >= following[2]:
                minutes = None  # "11-1 pm" is not one half of the day
        result.append(minutes)
    if _TIME_IN_WORDS.search(query):
        result.append(None)
    return result


def _in_half(written: int, half: str) -> int:
    """A 12-hour clock's hour and minute (in minutes) in the morning (``"a"``) or the
    afternoon (``"p"``), in minutes after midnight."""
    hour, minute = divmod(written, 60)
    return (hour % 12 + (12 if half == "p" else 0)) * 60 + minute
