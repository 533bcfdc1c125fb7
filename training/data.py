"""Deterministic synthetic tool-calling data (Needle fine-tuning format).

Each line is ``{"query": str, "tools": [{name, description, parameters}], "answers":
[{"name", "arguments"}]}``.  Answers are written with ``name`` before ``arguments`` and the
argument keys ordered like llama.cpp's JSON-schema grammar orders them: required properties
in ``properties`` order, then the optional ones in ``properties`` order.

Splits:

* ``train`` / ``valid`` -- training templates over the training tool kinds;
* ``test_phrasing`` -- held-out templates over the training tool kinds;
* ``test_tools`` -- tool kinds never seen in training;
* ``test_blind`` -- phrasings written later by someone who saw neither the training nor the
  held-out templates (:mod:`training.blind`), minus any near copy of either.

``python -m training.data OUTDIR`` writes ``OUTDIR/{train,valid,test_phrasing,test_tools,
test_blind}.jsonl``.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .blind import BLIND
from .phrasings import CHITCHAT_EXTRA, EXTRA, VOCABULARY

# --------------------------------------------------------------------------------------------
# Prompt format shared with the inference side.


def tool_for_prompt(tool: dict) -> dict:
    return {
        "name": tool["name"],
        "description": tool.get("description", ""),
        "parameters": tool.get("parameters", {"type": "object", "properties": {}}),
    }


def format_prompt(tools: list[dict], query: str) -> str:
    """``<tools>[...]</tools><query>...</query>``; the model continues with the answer."""
    tj = json.dumps([tool_for_prompt(t) for t in tools], separators=(",", ":"), ensure_ascii=False)
    return f"<tools>{tj}</tools><query>{query}</query>"


def order_arguments(arguments: dict, parameters: dict) -> dict:
    """Required properties in schema order, then optional ones in schema order."""
    props = list((parameters or {}).get("properties", {}))
    required = set((parameters or {}).get("required", []))
    ordered = [k for k in props if k in required] + [k for k in props if k not in required]
    out = {k: arguments[k] for k in ordered if k in arguments}
    for k in arguments:  # keys not in the schema (should not happen) keep their order at the end
        if k not in out:
            out[k] = arguments[k]
    return out


def format_answer(answers: list[dict], tools: list[dict] | None = None) -> str:
    by_name = {t["name"]: t for t in tools or []}
    calls = []
    for a in answers:
        params = by_name.get(a["name"], {}).get("parameters", {})
        calls.append({"name": a["name"], "arguments": order_arguments(a["arguments"], params)})
    return json.dumps(calls, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Value pools

CITIES = [
    "Paris",
    "London",
    "Berlin",
    "Tokyo",
    "New York",
    "Madrid",
    "Rome",
    "Lisbon",
    "Oslo",
    "Chicago",
    "Toronto",
    "Sydney",
    "Dublin",
    "Vienna",
    "Prague",
    "Boston",
    "Seattle",
    "Amsterdam",
    "Zürich",
    "München",
    "Kraków",
    "São Paulo",
    "Montréal",
    "Barcelona",
    "Athens",
    "Cairo",
    "Mumbai",
    "Seoul",
    "Denver",
    "Austin",
    "Nairobi",
    "Lima",
    "Helsinki",
    "Edinburgh",
    "Bristol",
    "Lyon",
    "Marseille",
    "Osaka",
    "Warsaw",
    "Budapest",
    "Miami",
]
CONTACTS = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Isabel",
    "Jack",
    "Kofi",
    "Lena",
    "Mia",
    "Noah",
    "Olivia",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sam",
    "Tom",
    "Uma",
    "Victor",
    "Wei",
    "Yusuf",
    "Zoë",
    "mom",
    "dad",
    "grandma",
    "my sister",
    "my brother",
    "Sarah",
    "Liam",
    "José",
    "Ana",
    "Max",
    "Nina",
    "Omar",
    "Priya",
    "Lucas",
]
ROOMS = [
    "kitchen",
    "living room",
    "bedroom",
    "bathroom",
    "office",
    "hallway",
    "garage",
    "dining room",
    "kids room",
    "guest room",
    "basement",
    "porch",
    "study",
    "nursery",
]
MESSAGES = [
    "I'm running late",
    "see you at 7",
    "dinner is ready",
    "call me when you can",
    "happy birthday!",
    "I'll be home soon",
    "don't forget the keys",
    "on my way",
    "can you pick up milk",
    "the meeting moved to Friday",
    "thanks for today",
    "let's meet at the station",
    "I left the door open",
    "good luck with the exam",
    "I'm at the café",
    "running 10 minutes behind",
    "the package arrived",
    "love you",
    "can we talk later",
    "movie starts at 8",
    "bring an umbrella",
    "the kids are asleep",
    "I booked the tickets",
    "parking is full, circling around",
]
TIMER_LABELS = [
    "pasta",
    "eggs",
    "laundry",
    "tea",
    "pizza",
    "nap",
    "workout",
    "rice",
    "cookies",
    "bread",
    "homework",
    "meditation",
    "parking",
    "the oven",
    "steak",
]
ALARM_LABELS = [
    "work",
    "gym",
    "flight",
    "school run",
    "medication",
    "meeting",
    "yoga",
    "dentist",
    "wake up",
    "pick up kids",
    "train",
]
EVENT_TITLES = [
    "team meeting",
    "dentist appointment",
    "lunch with Anna",
    "yoga class",
    "project review",
    "doctor visit",
    "book club",
    "parent teacher meeting",
    "haircut",
    "coffee with Ben",
    "budget planning",
    "piano lesson",
    "job interview",
    "birthday party",
    "car service",
    "standup",
    "flight to Berlin",
    "date night",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
MUSIC = [
    "jazz",
    "Taylor Swift",
    "classical music",
    "lo-fi beats",
    "Bohemian Rhapsody",
    "the Beatles",
    "Daft Punk",
    "my workout playlist",
    "relaxing piano",
    "Miles Davis",
    "Beyoncé",
    "hip hop",
    "Radiohead",
    "indie rock",
    "Mozart",
    "Adele",
    "country music",
    "Hotel California",
    "Billie Eilish",
    "my chill playlist",
    "reggae",
    "Coldplay",
    "bossa nova",
    "Stromae",
    "Sigur Rós",
    "heavy metal",
    "Kind of Blue",
    "ABBA",
]
PLACES = [
    "the airport",
    "the train station",
    "Central Park",
    "the nearest gas station",
    "the office",
    "Main Street 12",
    "the hospital",
    "grandma's house",
    "the mall",
    "the beach",
    "the stadium",
    "the library",
    "the Louvre",
    "Baker Street 221b",
    "the nearest pharmacy",
    "the zoo",
    "Oak Avenue 5",
    "the university",
    "the museum",
    "Rue de Rivoli 8",
    "the harbour",
    "the city center",
    "Hauptstraße 3",
    "the gym",
]
ITEMS = [
    "milk",
    "eggs",
    "bread",
    "butter",
    "apples",
    "bananas",
    "coffee",
    "rice",
    "pasta",
    "tomatoes",
    "cheese",
    "chicken",
    "onions",
    "garlic",
    "olive oil",
    "yogurt",
    "cereal",
    "toilet paper",
    "dish soap",
    "orange juice",
    "carrots",
    "spinach",
    "flour",
    "sugar",
    "tea",
    "crème fraîche",
    "jalapeños",
    "honey",
    "salmon",
    "batteries",
]
FOODS = [
    "a margherita pizza",
    "two burritos",
    "pad thai",
    "a cheeseburger",
    "sushi rolls",
    "chicken tikka masala",
    "a caesar salad",
    "ramen",
    "fish and chips",
    "falafel wrap",
    "three tacos",
    "a poke bowl",
    "spring rolls",
    "a veggie burger",
    "lasagna",
]
RESTAURANTS = [
    "Luigi's",
    "Sushi Zen",
    "Taco Loco",
    "Burger Barn",
    "Thai Orchid",
    "Curry House",
    "Pizza Planet",
    "Green Bowl",
    "Le Petit Bistro",
    "Dragon Palace",
    "Noodle Bar",
    "Café Mélange",
    "The Grill",
]
LANGUAGES = [
    "Spanish",
    "French",
    "German",
    "Italian",
    "Japanese",
    "Portuguese",
    "Chinese",
    "Korean",
    "Dutch",
    "Russian",
    "Arabic",
    "Greek",
    "Turkish",
    "Swedish",
    "Polish",
]
PHRASES = [
    "where is the bathroom",
    "good morning",
    "thank you very much",
    "how much is this",
    "I would like a coffee",
    "see you tomorrow",
    "where is the train station",
    "the bill please",
    "I am allergic to nuts",
    "nice to meet you",
    "happy new year",
    "can you help me",
    "I don't understand",
    "what time is it",
    "one ticket please",
]
SEARCHES = [
    "best hiking trails nearby",
    "how tall is the Eiffel Tower",
    "python list comprehension",
    "who won the world cup in 2018",
    "easy vegan recipes",
    "symptoms of the flu",
    "cheap flights to Rome",
    "how to fix a leaky faucet",
    "population of Canada",
    "history of the Roman empire",
    "what is quantum computing",
    "best sci-fi books",
    "opening hours of the city museum",
    "how to tie a tie",
    "meaning of serendipity",
]
DOORS = ["front door", "back door", "garage door", "side door", "patio door", "main entrance"]
NOTES = [
    "buy a gift for Emma",
    "the wifi password is sunflower42",
    "call the plumber",
    "ideas for the trip: museum, beach, hiking",
    "parked on level 3",
    "return library books",
    "book ideas: The Hobbit, Dune",
    "pay the electricity bill",
    "renew passport",
    "the locker code is 4821",
    "try the new ramen place",
    "water the plants on Sunday",
]
NOTE_TITLES = ["groceries", "work", "ideas", "travel", "home", "to do", "recipes", "passwords"]
REMINDERS = [
    "take out the trash",
    "call the bank",
    "pick up the dry cleaning",
    "take my medicine",
    "water the plants",
    "pay rent",
    "submit the report",
    "buy flowers",
    "feed the cat",
    "charge my phone",
    "check the oven",
    "book a dentist appointment",
    "renew the car insurance",
    "call grandma",
]
PODCASTS = [
    "The Daily",
    "Radiolab",
    "Serial",
    "Hardcore History",
    "This American Life",
    "Planet Money",
    "Huberman Lab",
    "Freakonomics Radio",
    "The Tim Ferriss Show",
    "Science Friday",
    "99% Invisible",
    "Stuff You Should Know",
]
NEWS_TOPICS = [
    "sports",
    "technology",
    "politics",
    "business",
    "science",
    "health",
    "entertainment",
    "the economy",
    "football",
    "climate",
    "space exploration",
]
STOCKS = ["AAPL", "TSLA", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "NFLX", "IBM", "INTC"]
CURRENCIES = {
    "dollars": "USD",
    "euros": "EUR",
    "pounds": "GBP",
    "yen": "JPY",
    "Swiss francs": "CHF",
    "Canadian dollars": "CAD",
    "Australian dollars": "AUD",
    "rupees": "INR",
    "pesos": "MXN",
    "kroner": "NOK",
}
UNITS = [
    ("miles", "kilometers"),
    ("kilometers", "miles"),
    ("pounds", "kilograms"),
    ("kilograms", "pounds"),
    ("feet", "meters"),
    ("meters", "feet"),
    ("inches", "centimeters"),
    ("cups", "milliliters"),
    ("ounces", "grams"),
    ("gallons", "liters"),
    ("liters", "gallons"),
    ("fahrenheit", "celsius"),
    ("celsius", "fahrenheit"),
]
CUISINES = [
    "Italian",
    "Thai",
    "Mexican",
    "Indian",
    "Japanese",
    "Chinese",
    "vegan",
    "Greek",
    "Korean",
    "French",
    "Lebanese",
    "Ethiopian",
    "Vietnamese",
    "seafood",
]
WORDS = [
    "serendipity",
    "ephemeral",
    "ubiquitous",
    "quixotic",
    "melancholy",
    "paradigm",
    "gregarious",
    "laconic",
    "resilience",
    "nostalgia",
    "petrichor",
    "schadenfreude",
]
ACTIVITIES = [
    "running",
    "cycling",
    "swimming",
    "yoga",
    "walking",
    "rowing",
    "hiking",
    "weight training",
    "pilates",
    "tennis",
]
DISHES = [
    "lasagna",
    "banana bread",
    "chicken curry",
    "pancakes",
    "guacamole",
    "risotto",
    "tomato soup",
    "chocolate cake",
    "fried rice",
    "shakshuka",
    "paella",
    "pho",
]
FLIGHTS = ["BA117", "LH400", "AF1234", "UA90", "DL45", "KL1002", "EK3", "QF12", "IB3170"]
CARRIERS = ["UPS", "FedEx", "DHL", "USPS"]
DEVICES = ["phone", "watch", "headphones", "tablet", "laptop"]

NUM_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]

_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_TEENS = ["thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]


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


Slot = Callable[[random.Random], tuple[str, dict]]

# --------------------------------------------------------------------------------------------
# Made-up values: a pool entry's shape with new words, so copying is the only way to be right.

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "ch",
    "cr",
    "dr",
    "fl",
    "gr",
    "kl",
    "pr",
    "sh",
    "st",
    "tr",
    "th",
]
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "io", "ou"]
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "t", "nd", "rk"]
_KEEP_WORDS = {"the", "my", "of", "and", "de", "a", "an", "to", "for", "with", "at", "in", "on"}


def _pseudo_word(rng: random.Random) -> str:
    n = rng.choice([2, 2, 3])
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n)) + rng.choice(_CODAS)


def _pool_words() -> list[str]:
    pools = [ROOMS, MESSAGES, TIMER_LABELS, ALARM_LABELS, EVENT_TITLES, MUSIC, PLACES, ITEMS]
    pools += [FOODS, PHRASES, SEARCHES, NOTES, REMINDERS, NEWS_TOPICS, ACTIVITIES, DISHES, WORDS]
    words = {w for pool in pools for v in pool for w in re.findall(r"\b[a-z]{3,}\b", v)}
    return sorted(words - _KEEP_WORDS)


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


_POOL_WORDS = _pool_words()


def text_only(pool: list[str]) -> Slot:
    def f(rng: random.Random) -> tuple[str, dict]:
        return rng.choice(pool), {}

    return f


def int_range(key: str, lo: int, hi: int, fmt: str = "{}") -> Slot:
    def f(rng: random.Random) -> tuple[str, dict]:
        v = rng.randint(lo, hi)
        return fmt.format(v), {key: v}

    return f


def duration_seconds(key: str) -> Slot:
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
            words = [
                ("half an hour", 1800),
                ("an hour", 3600),
                ("a minute", 60),
                ("an hour and a half", 5400),
                ("a quarter of an hour", 900),
                ("two minutes", 120),
                ("five minutes", 300),
                ("ten minutes", 600),
                ("three minutes", 180),
                ("twenty minutes", 1200),
                ("thirty seconds", 30),
            ]
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
    def f(rng: random.Random) -> tuple[str, dict]:
        r = rng.random()
        if r < 0.6:
            m = rng.choice([15, 20, 30, 45, 60, 90, 10, 25, 40, 50, 120, 5])
            return f"{m} minutes", {key: m}
        if r < 0.8:
            h = rng.randint(1, 3)
            return f"{h} {'hour' if h == 1 else 'hours'}", {key: h * 60}
        s, v = rng.choice(
            [
                ("half an hour", 30),
                ("an hour", 60),
                ("an hour and a half", 90),
                ("two hours", 120),
                ("a quarter of an hour", 15),
            ]
        )
        return s, {key: v}

    return f


def time_of_day(key: str) -> Slot:
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
            word, m, dh = rng.choice(
                [("half past", 30, 0), ("quarter past", 15, 0), ("quarter to", 45, -1)]
            )
            part = rng.choice(["pm", "in the evening"] if pm else ["am", "in the morning"])
            if pm and h12 in (1, 2, 3, 4, 5) and part == "in the evening":
                part = "pm"
            hh = (h24 + dh) % 24
            return f"{word} {rng.choice([NUM_WORDS[h12], str(h12)])} {part}", {
                key: f"{hh:02d}:{m:02d}"
            }
        if r < 0.9:
            s, v = rng.choice([("noon", "12:00"), ("midnight", "00:00"), ("midday", "12:00")])
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
    def f(rng: random.Random) -> tuple[str, dict]:
        if rng.random() < 0.7:
            d = rng.choice(WEEKDAYS)
            return rng.choice(["on ", "this ", "next ", "on "]) + d, {key: d}
        y, mo, day = 2026, rng.randint(1, 12), rng.randint(1, 28)
        if rng.random() < 0.5:
            return f"on {y}-{mo:02d}-{day:02d}", {key: f"{y}-{mo:02d}-{day:02d}"}
        return f"on {MONTHS[mo - 1]} {day}, {y}", {key: f"{y}-{mo:02d}-{day:02d}"}

    return f


def items_list(key: str, pool: list[str]) -> Slot:
    def f(rng: random.Random) -> tuple[str, dict]:
        n = rng.choice([1, 1, 2, 2, 3, 4])
        items = rng.sample(pool, n)
        if n == 1:
            s = items[0]
        else:
            s = ", ".join(items[:-1]) + rng.choice([" and ", ", and ", " & "]) + items[-1]
        return s, {key: items}

    return f


def choice_map(key: str, mapping: list[tuple[str, Any]]) -> Slot:
    def f(rng: random.Random) -> tuple[str, dict]:
        s, v = rng.choice(mapping)
        return s, {key: v}

    return f


def days_ahead(key: str) -> Slot:
    return choice_map(
        key,
        [
            ("today", 0),
            ("tomorrow", 1),
            ("in 2 days", 2),
            ("in two days", 2),
            ("in 3 days", 3),
            ("in three days", 3),
            ("in 4 days", 4),
            ("in 5 days", 5),
            ("in a week", 7),
            ("in 6 days", 6),
            ("the day after tomorrow", 2),
            ("later today", 0),
        ],
    )


def number_value(key: str, lo: float, hi: float, halves: bool = True) -> Slot:
    def f(rng: random.Random) -> tuple[str, dict]:
        v: float = rng.randint(int(lo), int(hi))
        if halves and rng.random() < 0.3:
            v = v + 0.5
        s = str(v)
        return s, {key: v}

    return f


# --------------------------------------------------------------------------------------------
# Tool kinds.  Each kind: schema + slots + templates.  A template is (text, fixed_args) where
# text contains {slot} placeholders; every slot contributes a surface string and arguments.
# The last ``held`` templates of each kind are reserved for the test_phrasing split.


def S(desc: str | None = None, **kw) -> dict:
    d = {"type": "string"}
    if desc:
        d["description"] = desc
    d.update(kw)
    return d


def I(desc: str | None = None, **kw) -> dict:  # noqa: E743
    d: dict = {"type": "integer"}
    if desc:
        d["description"] = desc
    d.update(kw)
    return d


def N(desc: str | None = None, **kw) -> dict:
    d: dict = {"type": "number"}
    if desc:
        d["description"] = desc
    d.update(kw)
    return d


def B(desc: str | None = None) -> dict:
    d: dict = {"type": "boolean"}
    if desc:
        d["description"] = desc
    return d


def E(values: list[str], desc: str | None = None) -> dict:
    d: dict = {"type": "string", "enum": values}
    if desc:
        d["description"] = desc
    return d


def obj(props: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": props, "required": required}


def as_template(t: str | tuple[str, dict]) -> tuple[str, dict]:
    """A template as (text, fixed arguments); a bare string fixes none."""
    return (t, {}) if isinstance(t, str) else t


class Kind:
    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict,
        slots: dict[str, Slot],
        templates: list[tuple[str, dict] | str],
        held: int = 1,
        group: str | None = None,
    ):
        self.name = name
        self.tool = {"name": name, "description": description, "parameters": parameters}
        self.slots = slots
        self.templates = [as_template(t) for t in templates]
        self.held = held
        self.group = group or name

    def train_templates(self) -> list[tuple[str, dict]]:
        return self.templates[: len(self.templates) - self.held]

    def test_templates(self) -> list[tuple[str, dict]]:
        return self.templates[len(self.templates) - self.held :]

    def render(
        self, rng: random.Random, template: tuple[str, dict], fresh: float = 0.0
    ) -> tuple[str, dict]:
        """Query and arguments.  With ``fresh`` (training-time variety), copied values are
        made up with probability ``fresh`` and numbers that only stand for a value ("5
        minutes" -> 300) are sometimes spelled out ("five minutes")."""
        text, fixed = template
        args: dict = dict(fixed)

        def sub(m: re.Match) -> str:
            slot = self.slots[m.group(1)]
            if fresh and isinstance(slot, Pick) and rng.random() < fresh:
                surface, a = slot.fresh(rng)
            else:
                surface, a = slot(rng)
                if (
                    fresh
                    and not any(isinstance(v, str) and re.search(r"\d", v) for v in a.values())
                    and rng.random() < fresh * 0.8
                ):  # spelling out a number copied into a string would change the answer
                    surface = spell_numbers(surface)
            args.update(a)
            return surface

        query = re.sub(r"\{(\w+)\}", sub, text)
        return query, order_arguments(args, self.tool["parameters"])


def _load_shipped_tools() -> dict[str, dict]:
    path = Path(__file__).resolve().parent.parent / "inputs" / "tools.json"
    try:
        return {t["name"]: t for t in json.loads(path.read_text())}
    except (OSError, ValueError):
        return {}


SHIPPED = _load_shipped_tools()


def shipped(name: str, description: str, parameters: dict) -> tuple[str, dict]:
    t = SHIPPED.get(name)
    if t is not None:
        return t["description"], t["parameters"]
    return description, parameters


def build_kinds() -> list[Kind]:
    K: list[Kind] = []

    d, p = shipped(
        "set_timer",
        "Start a countdown timer.",
        obj(
            {
                "duration_seconds": I("Timer length in seconds", minimum=1),
                "label": S("What the timer is for"),
            },
            ["duration_seconds"],
        ),
    )
    K.append(
        Kind(
            "set_timer",
            d,
            p,
            {"dur": duration_seconds("duration_seconds"), "label": pick(TIMER_LABELS, "label")},
            [
                "set a timer for {dur}",
                "start a {dur} timer",
                "timer {dur}",
                "set a {label} timer for {dur}",
                "can you time {dur} for the {label}",
                "countdown {dur} please",
                "remind me in {dur} with a timer",
                "put a timer on for {dur} for the {label}",
                "I need a timer for {dur}",
                "start a timer called {label} for {dur}",
                "{dur} timer for {label}",
                "count down from {dur}",
            ],
            held=3,
            group="timer",
        )
    )

    d, p = shipped(
        "set_alarm",
        "Set an alarm for a time of day.",
        obj({"time": S("Time of day, 24h HH:MM"), "label": S(), "repeat_daily": B()}, ["time"]),
    )
    K.append(
        Kind(
            "set_alarm",
            d,
            p,
            {"t": time_of_day("time"), "label": pick(ALARM_LABELS, "label")},
            [
                "set an alarm for {t}",
                "wake me up at {t}",
                "alarm at {t}",
                ("set an alarm for {t} every day", {"repeat_daily": True}),
                "set a {label} alarm at {t}",
                ("wake me up at {t} every morning for {label}", {"repeat_daily": True}),
                ("set a one-time alarm for {t}", {"repeat_daily": False}),
                "I need to be up at {t}",
                "create an alarm for {t} labeled {label}",
                ("set a daily alarm at {t}", {"repeat_daily": True}),
                "get me up at {t} for {label}",
            ],
            held=3,
            group="alarm",
        )
    )

    d, p = shipped(
        "control_lights",
        "Turn lights on or off, or dim them, in a room.",
        obj(
            {
                "room": S(),
                "action": E(["on", "off", "dim"]),
                "brightness_percent": I(minimum=0, maximum=100),
            },
            ["room", "action"],
        ),
    )
    K.append(
        Kind(
            "control_lights",
            d,
            p,
            {"room": pick(ROOMS, "room"), "pct": int_range("brightness_percent", 5, 95, "{}%")},
            [
                ("turn on the {room} lights", {"action": "on"}),
                ("switch off the lights in the {room}", {"action": "off"}),
                ("dim the {room} lights to {pct}", {"action": "dim"}),
                ("lights off in the {room}", {"action": "off"}),
                ("turn the {room} light on", {"action": "on"}),
                ("dim the lights in the {room}", {"action": "dim"}),
                ("set the {room} lights to {pct}", {"action": "dim"}),
                ("kill the lights in the {room}", {"action": "off"}),
                ("it's too dark in the {room}, lights on", {"action": "on"}),
                ("{room} lights down to {pct}", {"action": "dim"}),
                ("can you shut off the {room} lamp", {"action": "off"}),
                ("make the {room} lights dimmer, {pct}", {"action": "dim"}),
            ],
            held=3,
            group="lights",
        )
    )

    d, p = shipped(
        "get_weather",
        "Get the weather forecast for a place.",
        obj({"location": S(), "days_ahead": I(minimum=0, maximum=7)}, ["location"]),
    )
    K.append(
        Kind(
            "get_weather",
            d,
            p,
            {"city": pick(CITIES, "location"), "when": days_ahead("days_ahead")},
            [
                "what's the weather in {city}",
                "weather in {city} {when}",
                "will it rain in {city} {when}",
                "how hot is it in {city}",
                "forecast for {city} {when}",
                "do I need a jacket in {city} {when}",
                "what's the weather like in {city} {when}",
                "is it going to snow in {city}",
                "tell me the forecast for {city}",
                "how's the weather {when} in {city}",
                "{city} weather",
            ],
            held=3,
            group="weather",
        )
    )

    d, p = shipped(
        "send_message",
        "Send a text message to a contact.",
        obj({"recipient": S(), "text": S()}, ["recipient", "text"]),
    )
    K.append(
        Kind(
            "send_message",
            d,
            p,
            {"to": pick(CONTACTS, "recipient"), "msg": pick(MESSAGES, "text")},
            [
                "text {to} {msg}",
                "send a message to {to} saying {msg}",
                "tell {to} that {msg}",
                "message {to}: {msg}",
                "send {to} a text: {msg}",
                "shoot {to} a text saying {msg}",
                "let {to} know {msg}",
                "sms {to} {msg}",
                "write to {to}: {msg}",
                "text message for {to}: {msg}",
                "can you send {to} the message {msg}",
            ],
            held=3,
            group="message",
        )
    )

    d, p = shipped(
        "create_calendar_event",
        "Add an event to the calendar.",
        obj(
            {
                "title": S(),
                "date": S("YYYY-MM-DD or a weekday"),
                "time": S("HH:MM"),
                "duration_minutes": I(minimum=1),
            },
            ["title", "date"],
        ),
    )
    K.append(
        Kind(
            "create_calendar_event",
            d,
            p,
            {
                "title": pick(EVENT_TITLES, "title"),
                "date": date_value("date"),
                "t": time_of_day("time"),
                "dur": minutes_value("duration_minutes"),
            },
            [
                "add {title} to my calendar {date}",
                "schedule {title} {date} at {t}",
                "put {title} in the calendar {date} at {t} for {dur}",
                "create an event {title} {date}",
                "book {title} {date} at {t}",
                "new calendar event: {title}, {date}, {t}",
                "I have {title} {date} at {t}, add it",
                "block {dur} for {title} {date} at {t}",
                "calendar: {title} {date}",
                "add an event called {title} {date} at {t} lasting {dur}",
                "please schedule {title} {date}",
            ],
            held=3,
            group="calendar",
        )
    )

    d, p = shipped(
        "play_music",
        "Play music by artist, song, genre or playlist.",
        obj({"query": S(), "shuffle": B()}, ["query"]),
    )
    K.append(
        Kind(
            "play_music",
            d,
            p,
            {"q": pick(MUSIC, "query")},
            [
                "play {q}",
                "put on some {q}",
                ("shuffle {q}", {"shuffle": True}),
                "I want to listen to {q}",
                ("play {q} on shuffle", {"shuffle": True}),
                ("play {q} in order, no shuffle", {"shuffle": False}),
                "start playing {q}",
                "can you play {q}",
                "some {q} please",
                ("play {q} shuffled", {"shuffle": True}),
                "music: {q}",
            ],
            held=3,
            group="music",
        )
    )

    d, p = shipped(
        "navigate_to",
        "Start turn-by-turn navigation to a destination.",
        obj(
            {"destination": S(), "mode": E(["driving", "walking", "cycling", "transit"])},
            ["destination"],
        ),
    )
    K.append(
        Kind(
            "navigate_to",
            d,
            p,
            {
                "dest": pick(PLACES, "destination"),
                "mode": choice_map(
                    "mode",
                    [
                        ("driving", "driving"),
                        ("by car", "driving"),
                        ("walking", "walking"),
                        ("on foot", "walking"),
                        ("by bike", "cycling"),
                        ("cycling", "cycling"),
                        ("by bus", "transit"),
                        ("by public transport", "transit"),
                        ("by train", "transit"),
                    ],
                ),
            },
            [
                "navigate to {dest}",
                "take me to {dest}",
                "directions to {dest} {mode}",
                "how do I get to {dest} {mode}",
                "start navigation to {dest}",
                "get me to {dest} {mode}",
                "route to {dest}",
                "guide me to {dest} {mode}",
                "let's go to {dest}",
                "show me the way to {dest} {mode}",
                "I need to get to {dest}",
            ],
            held=3,
            group="navigation",
        )
    )

    d, p = shipped(
        "set_thermostat",
        "Set the target temperature of the thermostat.",
        obj({"temperature_celsius": N(), "room": S()}, ["temperature_celsius"]),
    )
    K.append(
        Kind(
            "set_thermostat",
            d,
            p,
            {"temp": number_value("temperature_celsius", 15, 27), "room": pick(ROOMS, "room")},
            [
                "set the thermostat to {temp} degrees",
                "make it {temp} degrees in the {room}",
                "heat the {room} to {temp}°C",
                "thermostat {temp}",
                "change the temperature to {temp} celsius",
                "set the {room} to {temp} degrees",
                "I want it at {temp} degrees",
                "warm the house up to {temp} degrees",
                "cool the {room} down to {temp} degrees",
                "temperature {temp} in the {room} please",
                "adjust heating to {temp}°C",
            ],
            held=3,
            group="thermostat",
        )
    )

    d, p = shipped(
        "add_to_shopping_list",
        "Add items to the shopping list.",
        obj({"items": {"type": "array", "items": {"type": "string"}, "minItems": 1}}, ["items"]),
    )
    K.append(
        Kind(
            "add_to_shopping_list",
            d,
            p,
            {"items": items_list("items", ITEMS)},
            [
                "add {items} to my shopping list",
                "put {items} on the shopping list",
                "we need {items}",
                "shopping list: {items}",
                "remember to buy {items}",
                "add {items} to the grocery list",
                "we're out of {items}",
                "I have to pick up {items}, add them to the list",
                "can you note {items} on my shopping list",
                "buy list add {items}",
            ],
            held=3,
            group="shopping",
        )
    )

    # ---- further everyday kinds ------------------------------------------------------------
    K.append(
        Kind(
            "send_email",
            "Send an email.",
            obj(
                {"to": S("Recipient name or address"), "subject": S(), "body": S()},
                ["to", "subject"],
            ),
            {
                "to": pick(CONTACTS, "to"),
                "subj": pick(
                    [
                        "the quarterly report",
                        "weekend plans",
                        "invoice 4411",
                        "meeting notes",
                        "the trip",
                        "holiday photos",
                        "the contract",
                        "tomorrow's agenda",
                        "my resignation",
                        "the party",
                    ],
                    "subject",
                ),
                "body": pick(MESSAGES, "body"),
            },
            [
                "email {to} about {subj}",
                "send an email to {to} with subject {subj}",
                "write an email to {to} about {subj} saying {body}",
                "email {to} re {subj}: {body}",
                "compose a mail to {to}, subject {subj}",
                "drop {to} an email about {subj}",
            ],
            held=2,
            group="email",
        )
    )

    K.append(
        Kind(
            "make_call",
            "Place a phone call to a contact.",
            obj({"contact": S(), "speakerphone": B()}, ["contact"]),
            {"c": pick(CONTACTS, "contact")},
            [
                "call {c}",
                "phone {c}",
                ("call {c} on speaker", {"speakerphone": True}),
                "give {c} a ring",
                "dial {c}",
                ("ring {c} on speakerphone", {"speakerphone": True}),
            ],
            held=2,
            group="call",
        )
    )

    K.append(
        Kind(
            "create_reminder",
            "Create a reminder.",
            obj({"text": S(), "time": S("HH:MM"), "date": S("YYYY-MM-DD or a weekday")}, ["text"]),
            {"r": pick(REMINDERS, "text"), "t": time_of_day("time"), "date": date_value("date")},
            [
                "remind me to {r}",
                "remind me to {r} at {t}",
                "set a reminder to {r} {date}",
                "reminder: {r} at {t} {date}",
                "don't let me forget to {r}",
                "remind me {date} at {t} to {r}",
                "create a reminder to {r} at {t}",
                "ping me at {t} to {r}",
            ],
            held=2,
            group="reminder",
        )
    )

    K.append(
        Kind(
            "create_note",
            "Save a note.",
            obj({"content": S(), "title": S()}, ["content"]),
            {"n": pick(NOTES, "content"), "title": pick(NOTE_TITLES, "title")},
            [
                "note that {n}",
                "take a note: {n}",
                "save a note in {title}: {n}",
                "write down {n}",
                "make a note titled {title} saying {n}",
                "jot down {n}",
            ],
            held=2,
            group="note",
        )
    )

    K.append(
        Kind(
            "play_podcast",
            "Play a podcast show.",
            obj({"show": S(), "latest_episode": B()}, ["show"]),
            {"s": pick(PODCASTS, "show")},
            [
                "play the podcast {s}",
                ("play the latest episode of {s}", {"latest_episode": True}),
                "put on {s}",
                "resume {s} podcast",
                ("newest {s} episode please", {"latest_episode": True}),
                "I want to hear the {s} podcast",
            ],
            held=2,
            group="podcast",
        )
    )

    K.append(
        Kind(
            "request_ride",
            "Book a taxi or ride-share to a destination.",
            obj(
                {"destination": S(), "ride_type": E(["standard", "xl", "premium"])}, ["destination"]
            ),
            {
                "dest": pick(PLACES, "destination"),
                "rt": choice_map(
                    "ride_type",
                    [
                        ("an XL", "xl"),
                        ("a big", "xl"),
                        ("a premium", "premium"),
                        ("a luxury", "premium"),
                        ("a standard", "standard"),
                        ("a regular", "standard"),
                    ],
                ),
            },
            [
                "get me a ride to {dest}",
                "book {rt} car to {dest}",
                "call a taxi to {dest}",
                "order {rt} ride to {dest}",
                "I need a cab to {dest}",
                "request {rt} uber to {dest}",
            ],
            held=2,
            group="ride",
        )
    )

    K.append(
        Kind(
            "order_food",
            "Order food for delivery from a restaurant.",
            obj(
                {"restaurant": S(), "items": {"type": "array", "items": {"type": "string"}}},
                ["restaurant", "items"],
            ),
            {"rest": pick(RESTAURANTS, "restaurant"), "food": items_list("items", FOODS)},
            [
                "order {food} from {rest}",
                "get me {food} from {rest}",
                "I'd like {food} delivered from {rest}",
                "from {rest} order {food}",
                "can you order {food} at {rest}",
                "food delivery from {rest}: {food}",
            ],
            held=2,
            group="food",
        )
    )

    K.append(
        Kind(
            "translate_text",
            "Translate text into another language.",
            obj(
                {"text": S(), "target_language": S(), "source_language": S()},
                ["text", "target_language"],
            ),
            {
                "txt": pick(PHRASES, "text"),
                "lang": pick(LANGUAGES, "target_language"),
                "src": pick(["English", "Spanish", "French", "German"], "source_language"),
            },
            [
                "translate {txt} into {lang}",
                "how do you say {txt} in {lang}",
                "what is {txt} in {lang}",
                "translate {txt} from {src} to {lang}",
                "say {txt} in {lang}",
                "{lang} translation of {txt}",
            ],
            held=2,
            group="translate",
        )
    )

    def unit_slot(rng: random.Random) -> tuple[str, dict]:
        a, b = rng.choice(UNITS)
        v: float = rng.choice([1, 2, 3, 5, 10, 12, 20, 25, 50, 100, 1.5, 2.5, 42, 7, 8, 15, 30, 72])
        return f"{v} {a} to {b}", {"value": v, "from_unit": a, "to_unit": b}

    def unit_slot_in(rng: random.Random) -> tuple[str, dict]:
        a, b = rng.choice(UNITS)
        v: float = rng.choice([1, 2, 3, 5, 10, 12, 20, 25, 50, 100, 1.5, 2.5, 42, 7, 8, 15, 30, 72])
        return f"{b} are in {v} {a}", {"value": v, "from_unit": a, "to_unit": b}

    K.append(
        Kind(
            "convert_units",
            "Convert a quantity between units.",
            obj(
                {"value": N(), "from_unit": S(), "to_unit": S()}, ["value", "from_unit", "to_unit"]
            ),
            {"conv": unit_slot, "convin": unit_slot_in},
            [
                "convert {conv}",
                "what's {conv}",
                "how many {convin}",
                "{conv} please",
                "unit conversion: {conv}",
                "change {conv}",
            ],
            held=2,
            group="convert",
        )
    )

    K.append(
        Kind(
            "web_search",
            "Search the web.",
            obj({"query": S()}, ["query"]),
            {"q": pick(SEARCHES, "query")},
            [
                "search for {q}",
                "google {q}",
                "look up {q}",
                "search the web for {q}",
                "find me info on {q}",
                "web search {q}",
            ],
            held=2,
            group="search",
        )
    )

    K.append(
        Kind(
            "control_lock",
            "Lock or unlock a smart door lock.",
            obj({"door": S(), "action": E(["lock", "unlock"])}, ["door", "action"]),
            {"door": pick(DOORS, "door")},
            [
                ("lock the {door}", {"action": "lock"}),
                ("unlock the {door}", {"action": "unlock"}),
                ("make sure the {door} is locked", {"action": "lock"}),
                ("open the lock on the {door}", {"action": "unlock"}),
                ("secure the {door}", {"action": "lock"}),
                ("let me in, unlock the {door}", {"action": "unlock"}),
            ],
            held=2,
            group="lock",
        )
    )

    K.append(
        Kind(
            "get_news",
            "Get the latest news headlines.",
            obj({"topic": S(), "count": I(minimum=1, maximum=20)}, []),
            {"topic": pick(NEWS_TOPICS, "topic"), "n": int_range("count", 2, 10)},
            [
                "what's the news",
                "latest {topic} news",
                "give me {n} headlines about {topic}",
                "any news on {topic}",
                "read me the top {n} headlines",
                "what's happening in {topic} today",
            ],
            held=2,
            group="news",
        )
    )

    K.append(
        Kind(
            "get_stock_price",
            "Get the current price of a stock by ticker symbol.",
            obj({"symbol": S("Ticker symbol")}, ["symbol"]),
            {"sym": pick(STOCKS, "symbol")},
            [
                "what's {sym} trading at",
                "stock price of {sym}",
                "how is {sym} doing",
                "check {sym} stock",
                "quote for {sym}",
                "current price of {sym} shares",
            ],
            held=2,
            group="stocks",
        )
    )

    def money(rng: random.Random) -> tuple[str, dict]:
        a, b = rng.sample(list(CURRENCIES), 2)
        v = rng.choice([5, 10, 20, 50, 100, 250, 1000, 12.5, 75, 300, 40])
        return f"{v} {a} to {b}", {
            "amount": v,
            "from_currency": CURRENCIES[a],
            "to_currency": CURRENCIES[b],
        }

    def money_in(rng: random.Random) -> tuple[str, dict]:
        a, b = rng.sample(list(CURRENCIES), 2)
        v = rng.choice([5, 10, 20, 50, 100, 250, 1000, 12.5, 75, 300, 40])
        return f"{v} {a} in {b}", {
            "amount": v,
            "from_currency": CURRENCIES[a],
            "to_currency": CURRENCIES[b],
        }

    K.append(
        Kind(
            "convert_currency",
            "Convert money between currencies (ISO codes).",
            obj(
                {
                    "amount": N(),
                    "from_currency": S("ISO 4217 code"),
                    "to_currency": S("ISO 4217 code"),
                },
                ["amount", "from_currency", "to_currency"],
            ),
            {"m": money, "mi": money_in},
            [
                "convert {m}",
                "how much is {mi}",
                "exchange {m}",
                "what are {mi}",
                "currency conversion {m}",
            ],
            held=1,
            group="currency",
        )
    )

    K.append(
        Kind(
            "pause_media",
            "Pause whatever is playing.",
            obj({}, []),
            {},
            [
                "pause",
                "pause the music",
                "stop playing",
                "hold the music for a second",
                "pause playback",
                "hit pause",
            ],
            held=2,
            group="media",
        )
    )

    K.append(
        Kind(
            "skip_track",
            "Skip to the next or previous track.",
            obj({"direction": E(["next", "previous"])}, ["direction"]),
            {},
            [
                ("next song", {"direction": "next"}),
                ("skip this track", {"direction": "next"}),
                ("go back to the previous song", {"direction": "previous"}),
                ("play the last track again", {"direction": "previous"}),
                ("skip", {"direction": "next"}),
                ("previous track please", {"direction": "previous"}),
            ],
            held=2,
            group="media",
        )
    )

    K.append(
        Kind(
            "check_calendar",
            "List calendar events for a date.",
            obj({"date": S("YYYY-MM-DD or a weekday")}, ["date"]),
            {"date": date_value("date")},
            [
                "what's on my calendar {date}",
                "am I free {date}",
                "show my schedule {date}",
                "do I have meetings {date}",
                "what do I have going on {date}",
                "check my agenda {date}",
            ],
            held=2,
            group="calendar_read",
        )
    )

    K.append(
        Kind(
            "delete_alarm",
            "Delete an alarm set for a time of day.",
            obj({"time": S("HH:MM")}, ["time"]),
            {"t": time_of_day("time")},
            [
                "delete my {t} alarm",
                "cancel the alarm for {t}",
                "remove the alarm at {t}",
                "turn off the {t} alarm",
                "I don't need the {t} alarm anymore",
                "get rid of the alarm set for {t}",
            ],
            held=2,
            group="alarm",
        )
    )

    K.append(
        Kind(
            "cancel_timer",
            "Cancel a running timer.",
            obj({"label": S()}, []),
            {"label": pick(TIMER_LABELS, "label")},
            [
                "cancel the timer",
                "stop the {label} timer",
                "cancel my {label} timer",
                "kill the timer",
                "never mind the {label} timer",
                "turn off the timer",
            ],
            held=2,
            group="timer",
        )
    )

    K.append(
        Kind(
            "find_restaurant",
            "Find restaurants by cuisine and area.",
            obj({"cuisine": S(), "location": S()}, ["cuisine"]),
            {"cu": pick(CUISINES, "cuisine"), "city": pick(CITIES, "location")},
            [
                "find a {cu} restaurant",
                "{cu} food near me",
                "where can I get {cu} food in {city}",
                "recommend a {cu} place in {city}",
                "any good {cu} restaurants in {city}",
                "I'm craving {cu}, find a restaurant",
            ],
            held=2,
            group="restaurant",
        )
    )

    K.append(
        Kind(
            "check_traffic",
            "Check traffic conditions on the way to a destination.",
            obj({"destination": S()}, ["destination"]),
            {"dest": pick(PLACES, "destination")},
            [
                "how's traffic to {dest}",
                "is there traffic on the way to {dest}",
                "check the traffic to {dest}",
                "how long is the drive to {dest} with traffic",
                "any jams on the way to {dest}",
                "traffic report for {dest}",
            ],
            held=2,
            group="traffic",
        )
    )

    K.append(
        Kind(
            "set_fan_speed",
            "Set a ceiling fan's speed.",
            obj({"room": S(), "speed": E(["off", "low", "medium", "high"])}, ["room", "speed"]),
            {
                "room": pick(ROOMS, "room"),
                "sp": choice_map(
                    "speed",
                    [("low", "low"), ("medium", "medium"), ("high", "high"), ("max", "high")],
                ),
            },
            [
                "set the {room} fan to {sp}",
                "turn the fan in the {room} to {sp}",
                ("switch off the {room} fan", {"speed": "off"}),
                "{room} fan on {sp}",
                ("fan off in the {room}", {"speed": "off"}),
                "put the {room} fan on {sp} speed",
            ],
            held=2,
            group="fan",
        )
    )

    K.append(
        Kind(
            "control_garage",
            "Open or close the garage door.",
            obj({"action": E(["open", "close"])}, ["action"]),
            {},
            [
                ("open the garage", {"action": "open"}),
                ("close the garage door", {"action": "close"}),
                ("garage door up", {"action": "open"}),
                ("shut the garage", {"action": "close"}),
                ("let the car in, open the garage door", {"action": "open"}),
                ("is the garage open? close it", {"action": "close"}),
            ],
            held=2,
            group="garage",
        )
    )

    K.append(
        Kind(
            "log_workout",
            "Log a workout.",
            obj(
                {"activity": S(), "duration_minutes": I(minimum=1), "distance_km": N()},
                ["activity", "duration_minutes"],
            ),
            {
                "act": pick(ACTIVITIES, "activity"),
                "dur": minutes_value("duration_minutes"),
                "km": number_value("distance_km", 1, 21),
            },
            [
                "log {dur} of {act}",
                "I did {act} for {dur}",
                "record a {act} workout, {dur}, {km} km",
                "log {act}: {dur}",
                "add a workout: {act} {dur} {km} kilometers",
                "just finished {dur} of {act}",
            ],
            held=2,
            group="workout",
        )
    )

    K.append(
        Kind(
            "log_water",
            "Log water intake.",
            obj({"amount_ml": I(minimum=1)}, ["amount_ml"]),
            {
                "ml": choice_map(
                    "amount_ml",
                    [
                        ("250 ml", 250),
                        ("500 ml", 500),
                        ("a liter", 1000),
                        ("half a liter", 500),
                        ("300ml", 300),
                        ("a glass", 250),
                        ("2 liters", 2000),
                        ("750 ml", 750),
                        ("330 ml", 330),
                        ("one liter", 1000),
                        ("100 ml", 100),
                    ],
                )
            },
            [
                "log {ml} of water",
                "I drank {ml} of water",
                "add {ml} to my water intake",
                "track {ml} water",
                "water log {ml}",
                "just had {ml} of water",
            ],
            held=2,
            group="water",
        )
    )

    K.append(
        Kind(
            "set_do_not_disturb",
            "Turn do-not-disturb mode on or off.",
            obj({"enabled": B(), "until": S("HH:MM")}, ["enabled"]),
            {"t": time_of_day("until")},
            [
                ("turn on do not disturb", {"enabled": True}),
                ("do not disturb until {t}", {"enabled": True}),
                ("turn off do not disturb", {"enabled": False}),
                ("silence notifications until {t}", {"enabled": True}),
                ("disable do not disturb mode", {"enabled": False}),
                ("enable DND until {t}", {"enabled": True}),
            ],
            held=2,
            group="dnd",
        )
    )

    K.append(
        Kind(
            "take_photo",
            "Take a photo with the camera.",
            obj({"camera": E(["front", "back"]), "timer_seconds": I(minimum=1)}, ["camera"]),
            {"sec": int_range("timer_seconds", 2, 10)},
            [
                ("take a selfie", {"camera": "front"}),
                ("take a picture", {"camera": "back"}),
                ("selfie with a {sec} second timer", {"camera": "front"}),
                ("snap a photo with the back camera in {sec} seconds", {"camera": "back"}),
                ("take a photo with the front camera", {"camera": "front"}),
                ("photo in {sec} seconds", {"camera": "back"}),
            ],
            held=2,
            group="camera",
        )
    )

    K.append(
        Kind(
            "read_messages",
            "Read unread messages, optionally from one contact.",
            obj({"contact": S()}, []),
            {"c": pick(CONTACTS, "contact")},
            [
                "read my messages",
                "any new texts from {c}",
                "read me what {c} sent",
                "do I have unread messages",
                "check messages from {c}",
                "what did {c} text me",
            ],
            held=2,
            group="message_read",
        )
    )

    K.append(
        Kind(
            "define_word",
            "Look up the definition of a word.",
            obj({"word": S()}, ["word"]),
            {"w": pick(WORDS, "word")},
            [
                "define {w}",
                "what does {w} mean",
                "meaning of {w}",
                "dictionary {w}",
                "look up the word {w}",
                "what's the definition of {w}",
            ],
            held=2,
            group="dictionary",
        )
    )

    K.append(
        Kind(
            "split_bill",
            "Split a bill between people.",
            obj({"total": N(), "people": I(minimum=1), "tip_percent": N()}, ["total", "people"]),
            {
                "tot": number_value("total", 20, 300, halves=False),
                "n": int_range("people", 2, 8),
                "tip": int_range("tip_percent", 10, 25),
            },
            [
                "split {tot} between {n} people",
                "split a {tot} bill {n} ways",
                "divide {tot} by {n} with a {tip} percent tip",
                "we are {n}, the bill is {tot}, how much each",
                "split {tot} {n} ways plus {tip}% tip",
                "how much does each of {n} pay for {tot}",
            ],
            held=2,
            group="bill",
        )
    )

    K.append(
        Kind(
            "book_restaurant",
            "Reserve a table at a restaurant.",
            obj(
                {
                    "restaurant": S(),
                    "party_size": I(minimum=1),
                    "time": S("HH:MM"),
                    "date": S("YYYY-MM-DD or a weekday"),
                },
                ["restaurant", "party_size", "time"],
            ),
            {
                "rest": pick(RESTAURANTS, "restaurant"),
                "n": int_range("party_size", 2, 8),
                "t": time_of_day("time"),
                "date": date_value("date"),
            },
            [
                "book a table for {n} at {rest} at {t}",
                "reserve {rest} for {n} people at {t} {date}",
                "table for {n} at {rest}, {t}",
                "get us a table at {rest} {date} at {t} for {n}",
                "make a reservation at {rest} for {n} at {t}",
                "can you book {rest} at {t} for {n} people",
            ],
            held=2,
            group="restaurant_book",
        )
    )

    # ---- kinds held out of training entirely (test_tools) --------------------------------
    K.append(
        Kind(
            "set_volume",
            "Set the speaker volume.",
            obj({"level": I("Volume 0-100", minimum=0, maximum=100)}, ["level"]),
            {"lv": int_range("level", 0, 100)},
            [
                "set the volume to {lv}",
                "volume {lv}",
                "turn the volume to {lv} percent",
                "change volume to {lv}%",
                "make it volume {lv}",
            ],
            held=0,
            group="volume",
        )
    )

    K.append(
        Kind(
            "check_flight_status",
            "Check the status of a flight.",
            obj({"flight_number": S()}, ["flight_number"]),
            {"f": pick(FLIGHTS, "flight_number")},
            [
                "is flight {f} on time",
                "status of {f}",
                "check flight {f}",
                "has {f} landed",
                "when does {f} arrive",
            ],
            held=0,
            group="flight",
        )
    )

    K.append(
        Kind(
            "start_vacuum",
            "Start the robot vacuum.",
            obj({"room": S()}, []),
            {"room": pick(ROOMS, "room")},
            [
                "vacuum the {room}",
                "start the robot vacuum",
                "clean the {room} with the vacuum",
                "run the vacuum in the {room}",
                "start vacuuming",
            ],
            held=0,
            group="vacuum",
        )
    )

    K.append(
        Kind(
            "track_package",
            "Track a parcel delivery.",
            obj({"tracking_number": S(), "carrier": S()}, ["tracking_number"]),
            {
                "tn": lambda rng: (lambda v: (v, {"tracking_number": v}))(
                    "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(10))
                ),
                "car": pick(CARRIERS, "carrier"),
            },
            [
                "track package {tn}",
                "where is my {car} parcel {tn}",
                "status of shipment {tn}",
                "track {tn} with {car}",
                "when will {tn} arrive",
            ],
            held=0,
            group="package",
        )
    )

    K.append(
        Kind(
            "find_recipe",
            "Find a recipe for a dish.",
            obj({"dish": S(), "max_minutes": I(minimum=1)}, ["dish"]),
            {"dish": pick(DISHES, "dish"), "mx": minutes_value("max_minutes")},
            [
                "find a recipe for {dish}",
                "how do I make {dish}",
                "recipe for {dish} under {mx}",
                "show me how to cook {dish}",
                "quick {dish} recipe, at most {mx}",
            ],
            held=0,
            group="recipe",
        )
    )

    K.append(
        Kind(
            "get_time_in",
            "Get the current local time in a city.",
            obj({"location": S()}, ["location"]),
            {"city": pick(CITIES, "location")},
            [
                "what time is it in {city}",
                "current time in {city}",
                "local time {city}",
                "time in {city} right now",
                "what's the time over in {city}",
            ],
            held=0,
            group="clock",
        )
    )
    return K


_SIMILARITY_STOPWORDS = {
    "the", "a", "an", "my", "please", "me", "for", "can", "could", "would", "you", "just",
    "i", "to", "it", "up", "some",
}  # fmt: skip


def _content_words(template: str) -> list[str]:
    words = re.findall(r"\{\w+\}|[a-z0-9']+", template.lower())
    return [w for w in words if w not in _SIMILARITY_STOPWORDS]


def too_close(template: str, held_out: list[str], threshold: float = 0.8) -> bool:
    """Whether ``template`` is a near copy of a held-out template: the sequences of their
    content words (politeness and articles dropped) are at least ``threshold`` alike."""
    a = _content_words(template)
    return any(
        difflib.SequenceMatcher(None, a, _content_words(h)).ratio() >= threshold for h in held_out
    )


def add_phrasings(kinds: list[Kind], extra: dict[str, list[str | tuple[str, dict]]]) -> int:
    """Insert ``extra`` templates among each kind's training templates (before its held-out
    ones), skipping near copies of a held-out template.  Returns how many were skipped."""
    skipped = 0
    by_name = {k.name: k for k in kinds}
    for name, templates in extra.items():
        k = by_name[name]
        held = k.test_templates()
        held_texts = [t for t, _ in held]
        known = {t for t, _ in k.templates}
        keep = []
        for t in templates:
            text, fixed = as_template(t)
            if text in known or too_close(text, held_texts):
                skipped += 1
                continue
            keep.append((text, fixed))
        k.templates = k.train_templates() + keep + held
    return skipped


KINDS = build_kinds()
SKIPPED_PHRASINGS = add_phrasings(KINDS, EXTRA) + add_phrasings(KINDS, VOCABULARY)
HELDOUT_KINDS = [
    "set_volume",
    "check_flight_status",
    "start_vacuum",
    "track_package",
    "find_recipe",
    "get_time_in",
]
KIND_BY_NAME = {k.name: k for k in KINDS}
TRAIN_KINDS = [k for k in KINDS if k.name not in HELDOUT_KINDS]
TEST_KINDS = [k for k in KINDS if k.name in HELDOUT_KINDS]


def blind_kinds(kinds: list[Kind], blind: dict[str, list[str | tuple[str, dict]]]) -> list[Kind]:
    """Copies of ``kinds`` whose held-out templates are the ``blind`` ones, keeping only
    those that are not near copies of any of the kind's own templates (trained or held out);
    kinds left with none are dropped."""
    out = []
    for k in kinds:
        own = [t for t, _ in k.templates]
        written = [as_template(t) for t in blind.get(k.name, [])]
        kept = [t for t in written if not too_close(t[0], own)]
        if kept:
            b = copy.copy(k)
            b.templates = k.train_templates() + kept
            b.held = len(kept)
            out.append(b)
    return out


BLIND_KINDS = blind_kinds(TRAIN_KINDS, BLIND)

# Tools a "no match" example must not offer because they could plausibly serve the request.
RELATED = {
    "web_search": "*",
}

PREFIXES = [
    "",
    "",
    "",
    "",
    "",
    "",
    "please ",
    "hey, ",
    "hi! ",
    "quick one: ",
    "ok so ",
    "hey assistant, ",
]
SUFFIXES = ["", "", "", "", "", " please", " thanks", ", thank you", "!", " asap", ".", "?"]


# Wider variety used only on training data (``augment``): test phrasings stay unseen.
MORE_PREFIXES = [
    "ok, ",
    "so ",
    "um, ",
    "right, ",
    "hello, ",
    "assistant, ",
    "hey there, ",
    "alright, ",
    "one more thing: ",
    "also ",
    "now ",
    "real quick, ",
    "excuse me, ",
    "yo ",
    "hmm ",
    "sorry, ",
]
MORE_SUFFIXES = [
    " for me",
    " now",
    " right now",
    " if you can",
    " when you get a chance",
    " cheers",
    " pls",
    " thx",
    " ty",
    " thanks a lot",
    " please and thank you",
    "!!",
    " ok?",
    " would you",
    ", ta",
]
# (pattern, replacements) applied to a template's own words, never to slot values, and only
# where the meaning (and so the answer) cannot change.
SYNONYMS: list[tuple[str, list[str]]] = [
    (r"\bcan you\b", ["could you", "would you", "can u", "will you"]),
    (r"\bI need\b", ["I want", "I'd like", "I would like"]),
    (r"\bI want\b", ["I'd like", "I need"]),
    (r"\bwhat's\b", ["what is", "whats"]),
    (r"\btell me\b", ["let me know", "give me"]),
    (r"\bshow me\b", ["give me", "pull up", "display"]),
    # Everyday synonyms shared by many tools, so a verb learnt with one tool carries over.
    (r"\bturn on\b", ["switch on", "enable", "activate", "put on"]),
    (r"\bturn off\b", ["switch off", "shut off", "disable", "deactivate", "kill"]),
    (r"\bswitch on\b", ["turn on", "enable", "activate"]),
    (r"\bswitch off\b", ["turn off", "disable", "deactivate", "shut off"]),
    (r"\benable\b", ["turn on", "switch on", "activate"]),
    (r"\bdisable\b", ["turn off", "switch off", "deactivate"]),
    (r"\block (the|my)\b", [r"secure \1", r"bolt \1", r"lock up \1"]),
    (r"\bunlock (the|my)\b", [r"unbolt \1", r"unlatch \1"]),
    (r"\bphoto\b", ["picture", "pic", "snapshot", "shot"]),
    (r"\bpicture\b", ["photo", "pic"]),
    (r"\bprevious\b", ["last", "prior"]),
    (r"\bsong\b", ["track", "tune"]),
    (r"\btrack\b", ["song"]),
    (r"\bcab\b", ["taxi", "ride"]),
    (r"\bbuy\b", ["get", "pick up"]),
    (r"\bstart\b", ["begin", "kick off"]),
    (r"\bfind\b", ["look for", "search for"]),
    (r"\bdelete\b", ["remove", "erase"]),
    (r"\bcancel\b", ["stop", "call off"]),
    (r"\bremind me\b", ["don't let me forget"]),
    (r"\bsend\b", ["shoot", "fire off"]),
    (r"\bplease\b", ["pls", "kindly"]),
    (r"\bmy\b", ["the"]),
]
FILLERS = ["just", "quickly", "actually", "um", "like", "maybe", "now", "also", "real quick"]


def _vary_words(rng: random.Random, text: str) -> str:
    for pattern, alternatives in SYNONYMS:
        if rng.random() < 0.5:
            text = re.sub(pattern, lambda m, alt=alternatives: m.expand(rng.choice(alt)), text)
    if rng.random() < 0.12:  # telegraphic: no articles
        text = re.sub(r"\b(the|a|an) ", "", text)
    if rng.random() < 0.05:  # one typo: two neighbouring letters swapped
        words = [m for m in re.finditer(r"[a-z]{5,}", text)]
        if words:
            m = rng.choice(words)
            i = rng.randrange(m.start(), m.end() - 1)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def vary_template(
    rng: random.Random, template: tuple[str, dict], avoid: list[str] | None = None
) -> tuple[str, dict]:
    """Training-time paraphrase of a template: synonyms, dropped articles, a filler word, a
    typo; slot placeholders and the fixed arguments stay as they are.  A paraphrase that
    comes near one of ``avoid`` (the kind's held-out templates) is not used."""
    for _ in range(3):
        varied = _vary_template(rng, template)
        if not avoid or not too_close(varied[0], avoid):
            return varied
    return template


def _vary_template(rng: random.Random, template: tuple[str, dict]) -> tuple[str, dict]:
    text, fixed = template
    parts = re.split(r"(\{\w+\})", text)
    parts = [p if i % 2 else _vary_words(rng, p) for i, p in enumerate(parts)]
    text = "".join(parts)
    if rng.random() < 0.12:
        gaps = [m.start() for m in re.finditer(r" ", text)]
        if gaps:
            i = rng.choice(gaps)
            text = text[:i] + " " + rng.choice(FILLERS) + text[i:]
    return text, fixed


def _decorate(rng: random.Random, query: str, augment: bool = False) -> str:
    if augment and rng.random() < 0.3:
        p = rng.choice(MORE_PREFIXES)
        s = rng.choice(MORE_SUFFIXES)
    else:
        p = rng.choice(PREFIXES)
        s = rng.choice(SUFFIXES)
    q = p + query + s
    if rng.random() < 0.35:
        q = q[0].upper() + q[1:]
    return q


def _distractors(
    rng: random.Random, pool: list[Kind], exclude: set[str], n: int, allow_generic: bool = True
) -> list[Kind]:
    cands = [k for k in pool if k.name not in exclude and (allow_generic or k.name not in RELATED)]
    return rng.sample(cands, min(n, len(cands)))


CHITCHAT = [
    "tell me a joke",
    "what is the capital of France",
    "how are you today",
    "who are you",
    "what's the meaning of life",
    "thanks, that's all for now",
    "never mind",
    "what's the square root of 144",
    "sing me a song",
    "do you like pizza",
    "good night",
    "what year did the Berlin wall fall",
    "how old is the universe",
    "you're awesome",
    "what's your favourite colour",
    "can you keep a secret",
    "what is 7 times 8",
    "explain gravity to me",
    "hello there",
    "who painted the Mona Lisa",
    "ok cool",
    "I'm bored",
    "what should I have for dinner",
    "is a tomato a fruit",
    "how far away is the moon",
    "flip a coin",
    "what rhymes with orange",
    "cancel that",
    "what does DNA stand for",
    "how many legs does a spider have",
    "that's wrong",
    "recommend me a good book",
    "why is the sky blue",
    "bye",
]
N_CHITCHAT_TRAIN = 24
# Training-only small talk (training/phrasings.py), minus near copies of the held-out lines.
_KNOWN_CHITCHAT = {c.lower() for c in CHITCHAT}
CHITCHAT_TRAIN = CHITCHAT[:N_CHITCHAT_TRAIN] + [
    c
    for c in dict.fromkeys(CHITCHAT_EXTRA)
    if c.lower() not in _KNOWN_CHITCHAT and not too_close(c.lower(), CHITCHAT[N_CHITCHAT_TRAIN:])
]
SHIPPED_ORDER = list(SHIPPED)


def _n_distractors(rng: random.Random) -> int:
    if rng.random() < 0.25:
        return rng.randint(6, 10)
    return rng.randint(2, 5)


def _tool_list(
    rng: random.Random, targets: list[Kind], distract_pool: list[Kind], n: int
) -> list[dict]:
    """Targets plus distractors in random order; sometimes exactly the shipped tool list."""
    names = {k.name for k in targets}
    if (
        SHIPPED_ORDER
        and names <= set(SHIPPED_ORDER)
        and rng.random() < 0.2
        and all(KIND_BY_NAME[s] in distract_pool or s in names for s in SHIPPED_ORDER)
    ):
        return [KIND_BY_NAME[s].tool for s in SHIPPED_ORDER]
    ds = _distractors(rng, distract_pool, names, n)
    tools = [*targets, *ds]
    rng.shuffle(tools)
    return [t.tool for t in tools]


def make_example(
    rng: random.Random,
    targets: list[Kind],
    distract_pool: list[Kind],
    use_test_templates: bool,
    chitchat: bool = True,
) -> dict:
    def templ(k: Kind) -> tuple[str, dict]:
        ts = k.test_templates() if use_test_templates else k.train_templates()
        if not ts:
            ts = k.templates
        return rng.choice(ts)

    r = rng.random()
    if r < 0.04 and chitchat:  # small talk: no tool fits
        pool = CHITCHAT[N_CHITCHAT_TRAIN:] if use_test_templates else CHITCHAT[:N_CHITCHAT_TRAIN]
        q = rng.choice(pool)
        if rng.random() < 0.3 and SHIPPED_ORDER:
            tools = [KIND_BY_NAME[s].tool for s in SHIPPED_ORDER]
        else:
            tools = [
                d.tool
                for d in _distractors(
                    rng, distract_pool, set(), _n_distractors(rng), allow_generic=False
                )
            ]
        return {"query": _decorate(rng, q), "tools": tools, "answers": []}
    if r < 0.14:  # no matching tool
        k = rng.choice(targets)
        q, _ = k.render(rng, templ(k))
        excl = {x.name for x in KINDS if x.group == k.group}
        shipped_groups = {KIND_BY_NAME[s].group for s in SHIPPED_ORDER}
        if rng.random() < 0.25 and SHIPPED_ORDER and k.group not in shipped_groups:
            tools = [KIND_BY_NAME[s].tool for s in SHIPPED_ORDER]
        else:
            tools = [
                d.tool
                for d in _distractors(
                    rng, distract_pool, excl, _n_distractors(rng), allow_generic=False
                )
            ]
        return {"query": _decorate(rng, q), "tools": tools, "answers": []}
    if r < 0.26:  # two calls
        k1, k2 = rng.sample(targets, 2)
        q1, a1 = k1.render(rng, templ(k1))
        q2, a2 = k2.render(rng, templ(k2))
        joiner = rng.choice([" and ", " and also ", ", then ", ". Also ", " and then ", "; "])
        query = q1 + joiner + q2
        tools = _tool_list(rng, [k1, k2], distract_pool, max(1, _n_distractors(rng) - 1))
        return {
            "query": _decorate(rng, query),
            "tools": tools,
            "answers": [{"name": k1.name, "arguments": a1}, {"name": k2.name, "arguments": a2}],
        }
    k = rng.choice(targets)
    q, a = k.render(rng, templ(k))
    tools = _tool_list(rng, [k], distract_pool, _n_distractors(rng))
    return {
        "query": _decorate(rng, q),
        "tools": tools,
        "answers": [{"name": k.name, "arguments": a}],
    }


def make_group(
    rng: random.Random,
    targets: list[Kind],
    use_test_templates: bool,
    size: int,
    augment: bool = False,
) -> list[dict]:
    """``size`` examples that share one tool list (cheap to train on: the trainer packs
    examples with the same tool list into one sequence).  ``augment`` paraphrases templates
    (:func:`vary_template`) and makes up a quarter of the copied values."""
    fresh = 0.25 if augment else 0.0
    if use_test_templates:
        chitchat = CHITCHAT[N_CHITCHAT_TRAIN:]
    else:
        chitchat = CHITCHAT_TRAIN if augment else CHITCHAT[:N_CHITCHAT_TRAIN]

    def templ(k: Kind) -> tuple[str, dict]:
        ts = k.test_templates() if use_test_templates else k.train_templates()
        t = rng.choice(ts or k.templates)
        if not augment:
            return t
        return vary_template(rng, t, [h for h, _ in k.test_templates()])

    def decorate(q: str) -> str:
        return _decorate(rng, q, augment)

    if SHIPPED_ORDER and rng.random() < 0.2:
        kinds = [KIND_BY_NAME[s] for s in SHIPPED_ORDER]
    else:
        kinds = rng.sample(targets, min(len(targets), _n_distractors(rng) + 1))
    names = {k.name for k in kinds}
    groups = {k.group for k in kinds}
    absent = [k for k in targets if k.group not in groups]
    can_abstain = not (names & set(RELATED)) and absent
    tools = [k.tool for k in kinds]
    out = []
    for _ in range(size):
        r = rng.random()
        if r < 0.04 and can_abstain:
            out.append({"query": decorate(rng.choice(chitchat)), "tools": tools, "answers": []})
        elif r < 0.14 and can_abstain:
            k = rng.choice(absent)
            q, _ = k.render(rng, templ(k), fresh)
            out.append({"query": decorate(q), "tools": tools, "answers": []})
        elif r < 0.27 and len(kinds) >= 2:
            k1, k2 = rng.sample(kinds, 2)
            q1, a1 = k1.render(rng, templ(k1), fresh)
            q2, a2 = k2.render(rng, templ(k2), fresh)
            joiner = rng.choice([" and ", " and also ", ", then ", ". Also ", " and then ", "; "])
            out.append(
                {
                    "query": decorate(q1 + joiner + q2),
                    "tools": tools,
                    "answers": [
                        {"name": k1.name, "arguments": a1},
                        {"name": k2.name, "arguments": a2},
                    ],
                }
            )
        else:
            k = rng.choice(kinds)
            q, a = k.render(rng, templ(k), fresh)
            out.append(
                {
                    "query": decorate(q),
                    "tools": tools,
                    "answers": [{"name": k.name, "arguments": a}],
                }
            )
    return out


def _canon_answers(ex: dict) -> dict:
    ex["answers"] = json.loads(format_answer(ex["answers"], ex["tools"]))
    return ex


def generate_split(
    split: str,
    n: int,
    seed: int = 0,
    grouped: bool = True,
    group_size: tuple[int, int] = (4, 10),
    augment: bool = True,
) -> list[dict]:
    """Deterministic for (split, n, seed, group_size, augment).  ``train`` comes in groups of
    ``group_size`` (min, max) consecutive examples sharing one tool list (``grouped``),
    paraphrased when ``augment``; the other splits have one list each and no paraphrases."""
    offsets = {"train": 0, "valid": 1, "test_phrasing": 2, "test_tools": 3, "test_blind": 4}
    rng = random.Random(seed * 1000 + offsets[split])
    out: list[dict] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        if split == "train" and grouped:
            size = rng.randint(*group_size)
            for ex in make_group(rng, TRAIN_KINDS, False, size, augment):
                if ex["query"] not in seen and len(out) < n:
                    seen.add(ex["query"])
                    out.append(_canon_answers(ex))
            continue
        if split in ("train", "valid"):
            ex = make_example(rng, TRAIN_KINDS, TRAIN_KINDS, use_test_templates=False)
        elif split == "test_phrasing":
            ex = make_example(rng, TRAIN_KINDS, TRAIN_KINDS, use_test_templates=True)
        elif split == "test_blind":
            ex = make_example(rng, BLIND_KINDS, TRAIN_KINDS, use_test_templates=True)
        else:
            ex = make_example(
                rng, TEST_KINDS, TRAIN_KINDS, use_test_templates=False, chitchat=False
            )
        key = ex["query"]
        if key in seen:
            continue
        seen.add(key)
        out.append(_canon_answers(ex))
    return out


DEFAULT_SIZES = {
    "train": 60000,
    "valid": 400,
    "test_phrasing": 400,
    "test_tools": 300,
    "test_blind": 400,
}


def write_splits(
    outdir: str | Path,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    group_size: tuple[int, int] = (4, 10),
    augment: bool = True,
) -> dict[str, Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    paths = {}
    train_queries: set[str] = set()
    for split in DEFAULT_SIZES:
        exs = generate_split(
            split,
            sizes[split] + (sizes[split] // 4 if split != "train" else 0),
            seed,
            group_size=group_size,
            augment=augment,
        )
        if split == "train":
            train_queries = {e["query"] for e in exs}
        else:
            exs = [e for e in exs if e["query"] not in train_queries][: sizes[split]]
        p = outdir / f"{split}.jsonl"
        with p.open("w", encoding="utf-8") as f:
            for e in exs:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
        paths[split] = p
    return paths


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.data", description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    for s, n in DEFAULT_SIZES.items():
        ap.add_argument(f"--{s.replace('_', '-')}", dest=s, type=int, default=n)
    ap.add_argument(
        "--group-size",
        type=int,
        nargs=2,
        default=[4, 10],
        metavar=("MIN", "MAX"),
        help="train examples come in groups of MIN-MAX sharing one tool list (default 4 10)",
    )
    ap.add_argument(
        "--no-augment",
        action="store_true",
        help="train split without paraphrased templates and made-up values",
    )
    a = ap.parse_args(argv)
    paths = write_splits(
        a.outdir,
        {s: getattr(a, s) for s in DEFAULT_SIZES},
        a.seed,
        tuple(a.group_size),
        augment=not a.no_augment,
    )
    for s, p in paths.items():
        print(f"{s}: {p}")
    print(f"{len(KINDS)} tool kinds ({len(TRAIN_KINDS)} trained, {len(TEST_KINDS)} held out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
