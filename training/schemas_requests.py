"""Requests that call a generated tool: argument values with the text that says them in the
query (:func:`make_value`), one phrase per argument and the verb's phrasing around them
(:func:`request_for`), the values copied from the query into the answer."""

from __future__ import annotations

import random
from typing import Any

from . import data as D
from .schemas_names import _article
from .schemas_tools import Tool
from .schemas_vocab import Param, Vocab

# --------------------------------------------------------------------------------------------
# Values: (value in the answer, text in the query)


def _pool(rng: random.Random, vocab: Vocab, name: str, fresh: float = 0.25) -> str:
    v = rng.choice(vocab.pools[name])
    if rng.random() < fresh and name not in ("email", "url", "phone", "currency", "language"):
        v = D.made_up_like(rng, v)
    return v


def _num_text(rng: random.Random, v: float | int) -> str:
    if isinstance(v, int) and 0 <= v <= 12 and rng.random() < 0.12:
        return D.spell_number(v)
    return str(v)


def _join_list(rng: random.Random, items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + rng.choice([" and ", ", and ", " & ", ", "]) + items[-1]


def _date(rng: random.Random, vocab: Vocab) -> tuple[str, str]:
    y, m, d = rng.randint(2024, 2027), rng.randint(1, 12), rng.randint(1, 28)
    iso = f"{y}-{m:02d}-{d:02d}"
    month = vocab.concepts["month_names"][m - 1]
    surface = rng.choice([iso, iso, f"{month} {d}, {y}", f"{d} {month} {y}", f"{month} {d} {y}"])
    return iso, surface


def _float(rng: random.Random, lo: float, hi: float) -> float | int:
    decimals = rng.choice([0, 0, 1, 2])
    v = round(rng.uniform(lo, hi), decimals)
    return int(v) if decimals == 0 else v


def make_value(rng: random.Random, vocab: Vocab, p: Param) -> tuple[Any, str]:
    c, spec = p.concept, p.spec
    if c == "email":
        v = _pool(rng, vocab, "email", 0)
        return v, v
    if c in vocab.pools:
        v = _pool(rng, vocab, c)
        return v, v
    if c == "count":
        n = rng.randint(1, 20)
        return n, _num_text(rng, n)
    if c == "quantity":
        n = rng.choice([rng.randint(1, 20), rng.randint(1, 500)])
        return n, _num_text(rng, n)
    if c == "integer":
        lo, hi = int(spec.get("min", 0)), int(spec.get("max", 1000))
        n = rng.randint(lo, hi)
        return n, _num_text(rng, n)
    if c == "number":
        lo, hi = float(spec.get("min", 0)), float(spec.get("max", 1000))
        v = _float(rng, lo, hi)
        return v, str(v)
    if c == "amount":
        v = _float(rng, 1, rng.choice([100, 1000, 10000, 250000]))
        return v, rng.choice(["${}", "{} dollars", "{}", "{} USD", "$ {}"]).format(v)
    if c == "percent":
        v = rng.choice([rng.randint(1, 99), round(rng.uniform(0.5, 15), 1)])
        return v, rng.choice(["{}%", "{} percent", "{} %", "{}"]).format(v)
    if c == "year":
        n = rng.randint(1900, 2030)
        return n, str(n)
    if c == "age":
        n = rng.randint(1, 95)
        return n, str(n)
    if c == "rating":
        n = rng.randint(1, 5)
        return n, _num_text(rng, n)
    if c == "duration_minutes":
        surface, a = D.minutes_value("v")(rng)
        return a["v"], surface
    if c == "duration_seconds":
        surface, a = D.duration_seconds("v")(rng)
        return a["v"], surface
    if c == "temperature":
        v = rng.choice([rng.randint(-10, 40), rng.randint(-10, 40) + 0.5])
        return v, rng.choice(["{} degrees", "{}°C", "{} C", "{} degrees celsius"]).format(v)
    if c == "distance_km":
        v = _float(rng, 1, 500)
        return v, rng.choice(["{} km", "{} kilometers", "{}km"]).format(v)
    if c == "weight_kg":
        v = _float(rng, 1, 120)
        return v, rng.choice(["{} kg", "{} kilograms", "{}kg"]).format(v)
    if c == "date":
        return _date(rng, vocab)
    if c == "time":
        surface, a = D.time_of_day("v")(rng)
        return a["v"], surface
    if c == "enum":
        v = rng.choice(spec["values"])
        return v, v.replace("_", " ")
    if c == "flag":
        b = rng.random() < 0.6
        return b, rng.choice(spec["true"] if b else spec["false"])
    if c == "list":
        of = spec.get("of", "item")
        pool = vocab.pools.get(of) or vocab.pools["item"]
        items = rng.sample(pool, rng.choice([1, 2, 2, 3, 3, 4]))
        return items, _join_list(rng, items)
    if c == "number_list":
        nums = [_float(rng, 0, rng.choice([10, 100, 1000])) for _ in range(rng.randint(2, 6))]
        text = rng.choice(
            [
                _join_list(rng, [str(x) for x in nums]),
                "[" + ", ".join(str(x) for x in nums) + "]",
                " ".join(str(x) for x in nums),
            ]
        )
        return nums, text
    raise ValueError(f"unknown concept {c!r}")


# --------------------------------------------------------------------------------------------
# Requests


def _phrase_for(
    rng: random.Random, vocab: Vocab, p: Param, surface: str, shared_concept: bool
) -> str:
    if p.concept == "flag":
        return surface
    own = p.phrases
    concept_phrases = vocab.concepts["concepts"].get(p.concept, {}).get("phrases", [])
    r = rng.random()
    if own and r < 0.55:
        template = rng.choice(own)
    elif concept_phrases and not shared_concept and r < 0.8:
        template = rng.choice(concept_phrases)
    else:
        template = rng.choice(vocab.concepts["universal"])
    if p.concept == "message" and rng.random() < 0.3:
        surface = f'"{surface}"'
    return template.replace("{label}", p.label).replace("{v}", surface)


def request_for(rng: random.Random, vocab: Vocab, tool: Tool) -> tuple[str, dict[str, Any]]:
    """A request that calls ``tool``: its required arguments and some optional ones."""
    action = tool.action
    args = [p for p in tool.declared if p.key in action.required or rng.random() < 0.4]
    concepts = [p.concept for p in args]
    phrases, arguments = [], {}
    for p in args:
        value, surface = make_value(rng, vocab, p)
        shared = concepts.count(p.concept) > 1
        phrases.append(_phrase_for(rng, vocab, p, surface, shared))
        arguments[tool.keys[p.key]] = value
    if rng.random() < 0.5:
        rng.shuffle(phrases)
    head = _article(rng.choice(vocab.verbs[action.verb]["phrases"]).replace("{obj}", action.obj))
    if phrases:
        joined = phrases[0]
        for i, ph in enumerate(phrases[1:], start=1):
            last = i == len(phrases) - 1
            joined += rng.choice([" and ", ", and "] if last else [" ", ", ", " "]) + ph
        param_first = rng.random() < 0.12
        text = f"{joined}, {head}" if param_first else f"{head} {joined}"
    else:
        text = head
    if text.rstrip().endswith("?") is False and head.lower().startswith(
        ("what", "how", "which", "is ", "are ", "can ", "could ", "who", "where", "when")
    ):
        text = text.rstrip(".") + "?"
    return text, D.order_arguments(arguments, tool.definition["parameters"])
