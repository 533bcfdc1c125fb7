"""The form a parameter asks a value in, read from its schema: an E.164 phone, a length of
time (``HH:MM:SS``, ISO 8601), a date (``YYYY-MM-DD``, ``MM/DD/YYYY``, ``DD/MM/YYYY``), a time
of day (``HH:MM``, "2:30 PM"), a local date and time; and a value written in that form.
A ``pattern`` is read by trying an example of each form against it."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from workers.text import name_words

_PHONE_EXAMPLE = ("+14155550134", "14155550134")
_LENGTH_OF_TIME = re.compile(r"duration|elapsed|length|how long|time taken")


def fits_pattern(pattern: Any, value: str) -> bool:
    """Whether ``value`` fits a schema's ``pattern`` (no pattern: any value; a pattern
    Python cannot read: none)."""
    if not isinstance(pattern, str):
        return True
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def asks_e164(schema: Mapping[str, Any]) -> bool:
    description = str(schema.get("description") or "").casefold()
    if "e.164" in description or "e164" in description:
        return True
    pattern = schema.get("pattern")
    with_plus, digits = _PHONE_EXAMPLE
    return (
        isinstance(pattern, str)
        and fits_pattern(pattern, with_plus)
        and not fits_pattern(pattern, digits)
    )


_HOST_ONLY = re.compile(
    r"\b(?:no|without)\s+(?:the\s+)?(?:protocol|scheme)|\bhost\s?name only\b|\bbare host"
)


def asks_host(schema: Mapping[str, Any]) -> bool:
    """Whether a parameter asks a host name alone: ``format: hostname``, or described so
    ("Domain name, no protocol", "Host name only, without scheme or path")."""
    description = str(schema.get("description") or "").casefold()
    return schema.get("format") == "hostname" or _HOST_ONLY.search(description) is not None


def duration_form(name: str, schema: Mapping[str, Any]) -> str | None:
    """``"hms"`` for a length of time as ``HH:MM:SS`` (not a time of day: the name or
    description says duration, elapsed or length), ``"iso"`` for an ISO 8601 duration, or
    None."""
    description = str(schema.get("description") or "").casefold()
    pattern = schema.get("pattern")
    hms = "hh:mm:ss" in description or (
        isinstance(pattern, str) and fits_pattern(pattern, "01:02:03")
    )
    if hms and _LENGTH_OF_TIME.search(f"{name.casefold()} {description}"):
        return "hms"
    if re.search(r"iso[ -]?8601 duration", description) or (
        isinstance(pattern, str) and fits_pattern(pattern, "PT1H2M3S")
    ):
        return "iso"
    return None


def date_form(schema: Mapping[str, Any]) -> str | None:
    """The ``strftime`` form of a date parameter, or None for any other."""
    description = str(schema.get("description") or "")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and fits_pattern(pattern, "2026-03-20"):
        return "%Y-%m-%d"
    if "MM/DD/YYYY" in description:
        return "%m/%d/%Y"
    if "DD/MM/YYYY" in description:
        return "%d/%m/%Y"
    if pattern is None and (
        schema.get("format") == "date" or re.search(r"YYYY-MM-DD(?!T)", description)
    ):
        return "%Y-%m-%d"
    return None


def time_form(key: str, schema: Mapping[str, Any]) -> str | None:
    """``"24h"`` for a time of day as ``HH:MM``, ``"12h"`` for "2:30 PM", or None."""
    description = str(schema.get("description") or "")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        if fits_pattern(pattern, "2:30 PM") and not fits_pattern(pattern, "14:30"):
            return "12h"
        if fits_pattern(pattern, "14:30") and fits_pattern(pattern, "09:05"):
            return "24h"
        return None
    if _LENGTH_OF_TIME.search(f"{key.casefold()} {description.casefold()}"):
        return None
    if re.search(r"(?<![T:])HH:MM(?!:SS)", description):
        return "24h"
    if "12-hour" in description:
        return "12h"
    return None


def time_in_form(minutes: int, form: str) -> str:
    hour, minute = divmod(minutes, 60)
    if form == "24h":
        return f"{hour:02d}:{minute:02d}"
    return f"{(hour - 1) % 12 + 1}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"


def datetime_form(schema: Mapping[str, Any]) -> str | None:
    """The ``strftime`` form of a local date and time parameter, or None."""
    description = str(schema.get("description") or "")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        for form in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"):
            if fits_pattern(pattern, datetime.datetime(2026, 3, 20, 14, 30).strftime(form)):
                return form
        return None
    if "YYYY-MM-DDTHH:MM:SS" in description:
        return "%Y-%m-%dT%H:%M:%S"
    if "YYYY-MM-DDTHH:MM" in description:
        return "%Y-%m-%dT%H:%M"
    return None


def duration_in_form(seconds: int, form: str) -> str:
    hours, minutes, rest = seconds // 3600, seconds % 3600 // 60, seconds % 60
    if form == "hms":
        return f"{hours:02d}:{minutes:02d}:{rest:02d}"
    parts = [(hours, "H"), (minutes, "M"), (rest, "S")]
    return "PT" + ("".join(f"{n}{unit}" for n, unit in parts if n) or "0S")


_CODE_WORDS = {
    "language": ("iso 639", "language code"),
    "country": ("iso 3166", "country code"),
    "currency": ("iso 4217", "currency code"),
}
_KEY_WORDS = {"language": {"language", "lang"}, "country": {"country"}, "currency": {"currency"}}
_CODE_EXAMPLE = {"language": "ko", "country": "CA", "currency": "USD"}
_PLACE = re.compile(r"\b(?:city|address|location|place)\b")


def asks_place_with_code(key: str, schema: Mapping[str, Any]) -> bool:
    """Whether a parameter asks a place with its country's ISO 3166 code in it ("City and
    ISO 3166 country code, e.g. 'Lyon, FR'"), the parameter :func:`code_form` leaves out."""
    description = str(schema.get("description") or "").casefold()
    place = _PLACE.search(f"{description} {' '.join(name_words(key))}") is not None
    return place and any(phrase in description for phrase in _CODE_WORDS["country"])


def code_form(key: str, schema: Mapping[str, Any]) -> str | None:
    """``"language"`` for an ISO 639-1 code, ``"country"`` (alpha-2) or ``"country_3"``
    for an ISO 3166-1 code, ``"currency"`` for an ISO 4217 code: said in the description
    ("ISO 4217 code", "Target language, ISO 639-1 code"), or a key that names the kind
    ("targetLang") with a ``pattern`` the code fits. None for any other parameter, one with
    an ``enum``, or a place with a code in it ("City and ISO 3166 country code, e.g. 'Lyon,
    FR'")."""
    if "enum" in schema:
        return None
    description = str(schema.get("description") or "").casefold()
    words = name_words(key)
    if _PLACE.search(f"{description} {' '.join(words)}"):
        return None
    pattern = schema.get("pattern")
    for kind, phrases in _CODE_WORDS.items():
        example = _CODE_EXAMPLE[kind]
        by_key = (
            isinstance(pattern, str)
            and bool(_KEY_WORDS[kind].intersection(words))
            and (fits_pattern(pattern, example) or fits_pattern(pattern, example.lower()))
        )
        if not by_key and not any(phrase in description for phrase in phrases):
            continue
        three_letters = (
            isinstance(pattern, str)
            and fits_pattern(pattern, "CAN")
            and not fits_pattern(pattern, "CA")
        )
        if kind == "country" and ("alpha-3" in description or three_letters):
            return "country_3"
        return kind
    return None
