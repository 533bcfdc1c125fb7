"""Slot types: how a template's ``{slot}`` becomes words in the query and arguments in the
answer.

A tool kind's slots are data (``training/templates/kinds.json``), each a slot type named
here with its parameters, e.g. ``{"type": "pick", "key": "label", "pool": "timer_labels"}``
(a ``pool`` names a list in ``pools.json``).  Each type is a function of those parameters
that returns a :data:`Slot`: ``slot(rng) -> (surface text, arguments)``.  The words they
use (number words, phrases for durations and times of day) are in ``quantities.json``,
the syllables of made-up values in ``made_up.json``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def load_templates(name: str) -> Any:
    """The data file ``training/templates/NAME.json``."""
    with (TEMPLATES_DIR / f"{name}.json").open(encoding="utf-8") as f:
        return json.load(f)


Slot = Callable[[random.Random], tuple[str, dict]]

POOLS: dict[str, Any] = load_templates("pools")
_QUANTITIES: dict[str, Any] = load_templates("quantities")
NUM_WORDS: list[str] = _QUANTITIES["number_words"]  # zero .. twelve
_TEENS: list[str] = _QUANTITIES["teens"]
_TENS: list[str] = _QUANTITIES["tens"]

# --------------------------------------------------------------------------------------------
# Numbers spelled out


def spell_number(n: int) -> str:
    """English words for 0 <= n < 100: 7 -> "seven", 45 -> "forty-five"."""
    if n <= 12:
        return NUM_WORDS[n]
    if n < 20:
        return _TEENS[n - 13]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{NUM_WORDS[ones]}" if ones else "")


# A whole number standing alone: not part of a time (4:45), a date, a decimal, a code, an
# amount of money or a percentage.
_LONE_NUMBER = re.compile(r"(?<![\w:.,\-$€£/])(\d{1,2})(?![\w:.,\-%/])")


def spell_numbers(text: str) -> str:
    return _LONE_NUMBER.sub(lambda m: spell_number(int(m.group(1))), text)


# --------------------------------------------------------------------------------------------
# Made-up values: a pool entry's shape with new words, so copying is the only way to be right.

_MADE_UP: dict[str, list[str]] = load_templates("made_up")
_ONSETS = _MADE_UP["onsets"]
_VOWELS = _MADE_UP["vowels"]
_CODAS = _MADE_UP["codas"]
_KEEP_WORDS = set(_MADE_UP["keep_words"])
# Lower-case words of the pools, to stand in for a pool value's own words.
_POOL_WORDS = sorted(
    {
        w
        for pool in _MADE_UP["word_pools"]
        for v in POOLS[pool]
        for w in re.findall(r"\b[a-z]{3,}\b", v)
    }
    - _KEEP_WORDS
)


def _pseudo_word(rng: random.Random) -> str:
    n = rng.choice([2, 2, 3])
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n)) + rng.choice(_CODAS)


def made_up_like(rng: random.Random, sample: str) -> str:
    """A new value with ``sample``'s shape: capitalised words become invented names, lower-case
    words other words, codes (``BA117``, ``AAPL``) other letters and digits."""
    out = []
    for token in sample.split(" "):
        m = re.fullmatch(r"(\w+)(\W*)", token)
        if not m or token.lower() in _KEEP_WORDS or len(m.group(1)) == 1:
            out.append(token)
            continue
        word, tail = m.groups()
        if any(c.isdigit() for c in word) or (word.isupper() and word.isascii()):
            word = "".join(
                str(rng.randint(0, 9))
                if c.isdigit()
                else chr(rng.randint(65, 90))
                if c.isupper()
                else c
                for c in word
            )
        elif word[0].isupper():
            word = _pseudo_word(rng).capitalize()
        elif rng.random() < 0.7:
            word = rng.choice(_POOL_WORDS)
        else:
            word = _pseudo_word(rng)
        out.append(word + tail)
    return " ".join(out)


# --------------------------------------------------------------------------------------------
# Slot types


class Pick:
    """A value copied verbatim from the query: drawn from ``pool``, or, when the caller asks
    for a fresh value, a made-up one shaped like a pool entry (so a model learns to copy
    values from the query instead of recalling the pool)."""

    def __init__(self, pool: list[str], key: str):
        self.pool = pool
        self.key = key

    def __call__(self, rng: random.Random) -> tuple[str, dict]:
        v = rng.choice(self.pool)
        return v, {self.key: v}

    def fresh(self, rng: random.Random) -> tuple[str, dict]:
        v = made_up_like(rng, rng.choice(self.pool))
        return v, {self.key: v}


def pick(pool: list[str], key: str) -> Slot:
    return Pick(pool, key)


def int_range(key: str, lo: int, hi: int, text: str = "{}") -> Slot:
    """A whole number from ``lo`` to ``hi``, said as ``text`` (``"{}%"``)."""

    def f(rng: random.Random) -> tuple[str, dict]:
        v = rng.randint(lo, hi)
        return text.format(v), {key: v}

    return f


def duration_seconds(key: str) -> Slot:
    """A duration said in minutes, seconds, hours or words; the argument is in seconds."""
    words = _QUANTITIES["durations"]  # [text, seconds]

    def f(rng: random.Random) -> tuple[str, dict]:
        r = rng.random()
        if r < 0.45:
            m = rng.choice([*list(range(1, 31)), 35, 40, 45, 50, 55, 60, 90])
            unit = rng.choice(
                ["minutes", "minutes", "min", "minute"]
                if m == 1
                else ["minutes", "minutes", "minutes", "min", "mins"]
            )
            if m == 1:
                unit = rng.choice(["minute", "min"])
            return f"{m} {unit}", {key: m * 60}
        if r < 0.6:
            s = rng.choice([10, 15, 20, 30, 40, 45, 50, 60, 75, 90, 100, 120])
            return f"{s} {rng.choice(['seconds', 'secs', 'seconds'])}", {key: s}
        if r < 0.72:
            h = rng.randint(1, 4)
            return f"{h} {'hour' if h == 1 else 'hours'}", {key: h * 3600}
        if r < 0.84:
            s, v = rng.choice(words)
            return s, {key: v}
        h = rng.randint(1, 2)
        m = rng.choice([5, 10, 15, 20, 30, 45])
        return (
            f"{h} {'hour' if h == 1 else 'hours'} {rng.choice(['and ', ''])}{m} minutes",
            {key: h * 3600 + m * 60},
        )

    return f


def minutes_value(key: str) -> Slot:
    """A duration said in minutes, hours or words; the argument is in minutes."""
    words = _QUANTITIES["minutes"]  # [text, minutes]

    def f(rng: random.Random) -> tuple[str, dict]:
        r = rng.random()
        if r < 0.6:
            m = rng.choice([15, 20, 30, 45, 60, 90, 10, 25, 40, 50, 120, 5])
            return f"{m} minutes", {key: m}
        if r < 0.8:
            h = rng.randint(1, 3)
            return f"{h} {'hour' if h == 1 else 'hours'}", {key: h * 60}
        s, v = rng.choice(words)
        return s, {key: v}

    return f


def time_of_day(key: str) -> Slot:
    """A time of day as people say it ("7 pm", "quarter to nine in the morning", "noon");
    the argument is 24-hour ``HH:MM``."""
    relative = _QUANTITIES["clock_relative"]  # [words, minute, hour shift]: "quarter to"
    named = _QUANTITIES["clock_named"]  # [word, HH:MM]: "noon"

    def f(rng: random.Random) -> tuple[str, dict]:
        r = rng.random()
        h12 = rng.randint(1, 12)
        pm = rng.random() < 0.5
        h24 = (h12 % 12) + (12 if pm else 0)
        ampm = rng.choice(["pm", "p.m.", "PM"]) if pm else rng.choice(["am", "a.m.", "AM"])
        if r < 0.25:
            sp = rng.choice(["", " "])
            return f"{h12}{sp}{ampm}", {key: f"{h24:02d}:00"}
        if r < 0.5:
            m = rng.choice([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55])
            return f"{h12}:{m:02d} {ampm}", {key: f"{h24:02d}:{m:02d}"}
        if r < 0.62:
            m = rng.choice([0, 15, 30, 45, 10, 20, 40, 50])
            hh = rng.randint(0, 23)
            return f"{hh:02d}:{m:02d}", {key: f"{hh:02d}:{m:02d}"}
        if r < 0.82:
            word, m, dh = rng.choice(relative)
            part = rng.choice(["pm", "in the evening"] if pm else ["am", "in the morning"])
            if pm and h12 in (1, 2, 3, 4, 5) and part == "in the evening":
                part = "pm"
            hh = (h24 + dh) % 24
            return f"{word} {rng.choice([NUM_WORDS[h12], str(h12)])} {part}", {
                key: f"{hh:02d}:{m:02d}"
            }
        if r < 0.9:
            s, v = rng.choice(named)
            return s, {key: v}
        part = rng.choice(["in the evening", "tonight"] if pm else ["in the morning"])
        if pm and h12 < 6:
            part = "in the afternoon"
        if pm and h12 == 12:
            return "noon", {key: "12:00"}
        if not pm and h12 == 12:
            return "midnight", {key: "00:00"}
        return f"{rng.choice([NUM_WORDS[h12], str(h12)])} {part}", {key: f"{h24:02d}:00"}

    return f


def date_value(key: str) -> Slot:
    """A weekday ("next Friday" -> ``Friday``) or a 2026 date (``YYYY-MM-DD``)."""
    weekdays: list[str] = POOLS["weekdays"]
    months: list[str] = POOLS["months"]

    def f(rng: random.Random) -> tuple[str, dict]:
        if rng.random() < 0.7:
            d = rng.choice(weekdays)
            return rng.choice(["on ", "this ", "next ", "on "]) + d, {key: d}
        y, mo, day = 2026, rng.randint(1, 12), rng.randint(1, 28)
        if rng.random() < 0.5:
            return f"on {y}-{mo:02d}-{day:02d}", {key: f"{y}-{mo:02d}-{day:02d}"}
        return f"on {months[mo - 1]} {day}, {y}", {key: f"{y}-{mo:02d}-{day:02d}"}

    return f


def items_list(key: str, pool: list[str]) -> Slot:
    """One to four different pool values, said as a list; the argument is the list."""

    def f(rng: random.Random) -> tuple[str, dict]:
        n = rng.choice([1, 1, 2, 2, 3, 4])
        items = rng.sample(pool, n)
        if n == 1:
            s = items[0]
        else:
            s = ", ".join(items[:-1]) + rng.choice([" and ", ", and ", " & "]) + items[-1]
        return s, {key: items}

    return f


def choice_map(key: str, choices: list[list[Any]]) -> Slot:
    """One of ``choices``, each ``[surface text, argument value]``."""

    def f(rng: random.Random) -> tuple[str, dict]:
        s, v = rng.choice(choices)
        return s, {key: v}

    return f


def days_ahead(key: str) -> Slot:
    """A day said relative to today ("tomorrow", "in a week"); the argument counts days."""
    return choice_map(key, _QUANTITIES["days_ahead"])


def number_value(key: str, lo: float, hi: float, halves: bool = True) -> Slot:
    """A whole number from ``lo`` to ``hi``, with ``halves`` sometimes plus a half."""

    def f(rng: random.Random) -> tuple[str, dict]:
        v: float = rng.randint(int(lo), int(hi))
        if halves and rng.random() < 0.3:
            v = v + 0.5
        s = str(v)
        return s, {key: v}

    return f


def unit_conversion(pool: list[list[str]], amounts: list[float], text: str) -> Slot:
    """An amount and a ``[from, to]`` pair of units; ``text`` places ``{value}``,
    ``{from_unit}`` and ``{to_unit}``, the arguments of the same names."""

    def f(rng: random.Random) -> tuple[str, dict]:
        a, b = rng.choice(pool)
        v = rng.choice(amounts)
        return text.format(value=v, from_unit=a, to_unit=b), {
            "value": v,
            "from_unit": a,
            "to_unit": b,
        }

    return f


def currency_conversion(pool: dict[str, str], amounts: list[float], text: str) -> Slot:
    """An amount and two currencies (``pool``: currency name -> ISO code); ``text`` places
    ``{amount}``, ``{from_currency}`` and ``{to_currency}`` (names; the arguments are codes)."""

    def f(rng: random.Random) -> tuple[str, dict]:
        a, b = rng.sample(list(pool), 2)
        v = rng.choice(amounts)
        return text.format(amount=v, from_currency=a, to_currency=b), {
            "amount": v,
            "from_currency": pool[a],
            "to_currency": pool[b],
        }

    return f


def random_code(key: str, alphabet: str, length: int) -> Slot:
    """``length`` characters of ``alphabet`` (a tracking number), copied as they are."""

    def f(rng: random.Random) -> tuple[str, dict]:
        v = "".join(rng.choice(alphabet) for _ in range(length))
        return v, {key: v}

    return f


SLOT_TYPES: dict[str, Callable[..., Slot]] = {
    f.__name__: f
    for f in (
        pick,
        int_range,
        duration_seconds,
        minutes_value,
        time_of_day,
        date_value,
        items_list,
        choice_map,
        days_ahead,
        number_value,
        unit_conversion,
        currency_conversion,
        random_code,
    )
}


def make_slot(spec: dict[str, Any]) -> Slot:
    """The slot a data file describes: ``{"type": NAME, ...parameters}``; a ``pool``
    parameter names a pool of ``pools.json``."""
    params = dict(spec)
    slot_type = params.pop("type")
    if slot_type not in SLOT_TYPES:
        raise ValueError(f"unknown slot type {slot_type!r} (known: {', '.join(SLOT_TYPES)})")
    if "pool" in params:
        params["pool"] = POOLS[params["pool"]]
    return SLOT_TYPES[slot_type](**params)
