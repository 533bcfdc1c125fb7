"""Training data that makes a model read the schema: tool definitions by the thousand.

The lines are the same ``{"query", "tools", "answers"}`` records as :mod:`training.data`.
Three sources are mixed, group by group (a group is several requests over one tool list,
which the trainer packs into one sequence):

* **generated kinds**: an object and one of its actions (``training/vocab/apis.json``) make a
  tool.  Its name, parameter keys, descriptions and key order are drawn afresh for every
  tool list (naming styles, synonyms, masked names), and its requests are composed from the
  verb's phrasings (``verbs.json``) and one phrase per argument (``concepts.json``), with
  the values copied from the query.  Distractors are the object's other actions (same noun,
  other verb) and unrelated tools; some requests fit no tool.
* **rewritten trained kinds**: the trained tools of :mod:`training.data`, re-declared with
  other names, keys, enum spellings, units and optional parameters, their answers converted
  to match.
* **original trained kinds**: :func:`training.data.make_group` as it is, so that the
  phrasings learnt before are kept.

Names masked by random strings ("function masking", as the Hammer models train) leave only
the descriptions to go by.  Function names of the BFCL evaluation set
(``vocab/bfcl_blocklist.txt``) are never produced.

``python -m training.schemas OUT.jsonl --n 200000 --seed 0`` writes a training file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import data as D

VOCAB_DIR = Path(__file__).resolve().parent / "vocab"
Example = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True)
class Param:
    key: str
    concept: str
    label: str
    desc: str
    spec: dict[str, Any]

    @property
    def phrases(self) -> list[str]:
        return list(self.spec.get("phrases") or [])


@dataclass(frozen=True)
class Action:
    obj: str
    obj_names: tuple[str, ...]
    verb: str
    params: tuple[Param, ...]
    required: frozenset[str]
    object_id: int


@dataclass(frozen=True)
class Vocab:
    actions: tuple[Action, ...]
    verbs: dict[str, dict[str, Any]]
    pools: dict[str, list[str]]
    synonyms: dict[str, list[str]]
    concepts: dict[str, Any]
    blocklist: frozenset[str]
    by_object: dict[int, tuple[Action, ...]] = field(default_factory=dict)


def _read(name: str) -> Any:
    return json.loads((VOCAB_DIR / name).read_text(encoding="utf-8"))


@cache
def load_vocab(split: str = "train") -> Vocab:
    """The vocabulary of ``split``: ``train`` leaves out the objects named in
    ``heldout_objects.json``, ``valid`` has only those (unseen kinds to validate on)."""
    apis = _read("apis.json")
    heldout = set(_read("heldout_objects.json"))
    if split not in ("train", "valid"):
        raise ValueError(f"unknown split {split!r}")
    actions: list[Action] = []
    for oid, o in enumerate(apis):
        if (o["object"] in heldout) != (split == "valid"):
            continue
        params = {
            key: Param(
                key, p["concept"], p.get("label", key.replace("_", " ")), p.get("desc", ""), p
            )
            for key, p in o["params"].items()
        }
        for a in o["actions"]:
            actions.append(
                Action(
                    obj=o["object"],
                    obj_names=tuple(o["names"]),
                    verb=a["verb"],
                    params=tuple(params[k] for k in a["params"]),
                    required=frozenset(a.get("required", [])),
                    object_id=oid,
                )
            )
    blockfile = VOCAB_DIR / "bfcl_blocklist.txt"
    blocklist = (
        frozenset(
            name_key(x.strip())
            for x in blockfile.read_text().splitlines()
            if x.strip() and not x.startswith("#")
        )
        if blockfile.exists()
        else frozenset()
    )
    by_object: dict[int, list[Action]] = {}
    for a in actions:
        by_object.setdefault(a.object_id, []).append(a)
    return Vocab(
        actions=tuple(actions),
        verbs=_read("verbs.json"),
        pools=_read("pools.json"),
        synonyms=_read("synonyms.json"),
        concepts=_read("concepts.json"),
        blocklist=blocklist,
        by_object={k: tuple(v) for k, v in by_object.items()},
    )


# --------------------------------------------------------------------------------------------
# Names: words -> an identifier in one of the styles API authors use


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


def masked_name(rng: random.Random, vocab: Vocab) -> str:
    stem = rng.choice(vocab.concepts["masked_names"])
    tail = "".join(
        rng.choice("abcdefghijkmnpqrstuvwxyz0123456789") for _ in range(rng.randint(2, 4))
    )
    return f"{stem}_{tail}"


def _synonym(rng: random.Random, vocab: Vocab, word: str, p: float) -> list[str]:
    alts = vocab.synonyms.get(word)
    if alts and rng.random() < p:
        return split_words(rng.choice(alts))
    return [word]


def _renamed(rng: random.Random, vocab: Vocab, words: list[str], p: float) -> list[str]:
    return [w for word in words for w in _synonym(rng, vocab, word, p)]


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


def _describe(rng: random.Random, vocab: Vocab, desc: str) -> str:
    """One of the usual ways of wording a tool's description around its plain sentence."""
    desc = desc.strip()
    if not desc:
        return desc
    body = desc[0].lower() + desc[1:]
    body = body.rstrip(".")
    wrap = rng.choice(vocab.concepts["generic_descriptions"])
    return wrap.replace("{Desc}", desc if desc.endswith(".") else desc + ".").replace(
        "{desc}", body + "."
    )


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


def param_schema(p: Param) -> dict[str, Any]:
    c, spec = p.concept, p.spec
    typ = "string"
    if c in (
        "count",
        "quantity",
        "integer",
        "year",
        "age",
        "rating",
        "duration_minutes",
        "duration_seconds",
    ):
        typ = "integer"
    elif c in ("number", "amount", "percent", "temperature", "distance_km", "weight_kg"):
        typ = "number"
    elif c == "flag":
        typ = "boolean"
    elif c in ("list", "number_list"):
        typ = "array"
    out: dict[str, Any] = {"type": typ}
    if c == "enum":
        out["enum"] = list(spec["values"])
    if c == "list":
        out["items"] = {"type": "string"}
    if c == "number_list":
        out["items"] = {"type": "number"}
    if c == "integer" and "min" in spec:
        out["minimum"] = int(spec["min"])
        if "max" in spec:
            out["maximum"] = int(spec["max"])
    if c == "rating":
        out["minimum"], out["maximum"] = 1, 5
    return out


# --------------------------------------------------------------------------------------------
# Generated kinds: a tool and the requests that call it


@dataclass
class Tool:
    action: Action
    definition: dict[str, Any]
    keys: dict[str, str]  # vocabulary key -> declared key
    declared: tuple[Param, ...]  # the parameters the definition has


def make_tool(rng: random.Random, vocab: Vocab, action: Action, taken: set[str]) -> Tool:
    verb = vocab.verbs[action.verb]
    style = rng.choice(STYLES)
    masked = rng.random() < 0.08
    for _ in range(6):
        vname = split_words(verb["names"][0] if rng.random() < 0.6 else rng.choice(verb["names"]))
        oname = split_words(rng.choice(action.obj_names))
        r = rng.random()
        if r < 0.1:
            name = ".".join(
                styled(x, "snake" if style == "kebab" else style) for x in (oname, vname)
            )
        elif r < 0.22:
            name = styled(_renamed(rng, vocab, [*oname, *vname], 0.2), style)
        else:
            name = styled(_renamed(rng, vocab, [*vname, *oname], 0.2), style)
        prefix = rng.choice(vocab.concepts["name_prefixes"])
        if prefix:
            name = styled([*split_words(prefix), name], "snake") if style == "snake" else name
        if masked:
            name = masked_name(rng, vocab)
        if name_key(name) not in vocab.blocklist and name not in taken and D_TOOL_NAME.match(name):
            break
    else:
        name = masked_name(rng, vocab) + str(rng.randint(100, 999))
    taken.add(name)

    description = ""
    if masked or rng.random() < 0.9:
        description = _article(rng.choice(verb["desc"]).replace("{obj}", action.obj))
        description = _describe(rng, vocab, description)

    optional = [p for p in action.params if p.key not in action.required]
    declared = [p for p in action.params if p.key in action.required or rng.random() < 0.85]
    if rng.random() < 0.2:
        rng.shuffle(declared)
    del optional
    keys: dict[str, str] = {}
    props: dict[str, Any] = {}
    key_style = style if style in ("snake", "camel") and rng.random() < 0.8 else "snake"
    for i, p in enumerate(declared):
        key_masked = rng.random() < 0.04
        if key_masked:
            key = rng.choice(["arg", "param", "p", "x", "field"]) + str(i + 1)
        else:
            key = styled(_renamed(rng, vocab, split_words(p.key), 0.15), key_style)
        while key in props:
            key += "_"
        keys[p.key] = key
        schema = param_schema(p)
        desc = p.desc or p.label.capitalize()
        r = rng.random()
        if key_masked or r < 0.75:
            schema["description"] = desc
        elif r < 0.85:
            schema["description"] = p.label.capitalize()
        if "description" in schema and rng.random() < 0.3:  # "description" before "type"
            schema = {"description": schema.pop("description"), **schema}
        props[key] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": props}
    required = [keys[p.key] for p in declared if p.key in action.required]
    if required or rng.random() < 0.5:
        parameters["required"] = required
    if rng.random() < 0.1:
        parameters["additionalProperties"] = False
    definition = {"name": name, "description": description, "parameters": parameters}
    return Tool(action, definition, keys, tuple(declared))


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


def _n_tools(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.25:
        return 1
    if r < 0.65:
        return rng.randint(2, 4)
    return rng.randint(5, 10)


JOINERS = [" and ", " and also ", ", then ", ". Also ", " and then ", "; ", ". After that, "]


def generated_group(
    rng: random.Random,
    vocab: Vocab,
    size: int,
    no_fit: float = 0.1,
    near_miss: float = 0.0,
    chitchat: float = 0.04,
) -> list[Example]:
    """A group over one generated tool list.  ``no_fit``: share of requests no tool in the
    list handles; of those, ``near_miss`` ask another action of an object the list has (the
    list can *book* a class, the request *cancels* one), the rest another object.
    ``chitchat``: share of small talk.  The other kinds of request share the rest in the
    proportions they have at the defaults."""
    target = rng.choice(vocab.actions)
    n = _n_tools(rng)
    chosen = [target]
    siblings = [a for a in vocab.by_object[target.object_id] if a is not target]
    rng.shuffle(siblings)
    for a in siblings:
        if len(chosen) < n and rng.random() < 0.6:
            chosen.append(a)
    while len(chosen) < n:
        a = rng.choice(vocab.actions)
        if a not in chosen:
            chosen.append(a)
    rng.shuffle(chosen)
    taken: set[str] = set()
    tools = [make_tool(rng, vocab, a, taken) for a in chosen]
    definitions = [t.definition for t in tools]
    objects = {a.object_id for a in chosen}
    out: list[Example] = []
    absent = [a for o in objects for a in vocab.by_object[o] if a not in chosen]
    shift = no_fit + chitchat - 0.14  # the thresholds below are those of the defaults
    for _ in range(size):
        draw = rng.random()
        r = draw - shift
        if draw < no_fit:  # a request no tool in the list handles
            if near_miss and absent and rng.random() < near_miss:
                other = rng.choice(absent)
            else:
                other = rng.choice(vocab.actions)
                if other.object_id in objects:
                    continue
            q, _ = request_for(rng, vocab, make_tool(rng, vocab, other, set()))
            answers: list[dict[str, Any]] = []
        elif draw < no_fit + chitchat:
            q, answers = rng.choice(D.CHITCHAT_TRAIN), []
        elif r < 0.26 and len(tools) >= 2:
            t1, t2 = rng.sample(tools, 2)
            q1, a1 = request_for(rng, vocab, t1)
            q2, a2 = request_for(rng, vocab, t2)
            q = q1 + rng.choice(JOINERS) + q2
            answers = [
                {"name": t1.definition["name"], "arguments": a1},
                {"name": t2.definition["name"], "arguments": a2},
            ]
        elif r < 0.31:  # the same tool twice
            t = rng.choice(tools)
            q1, a1 = request_for(rng, vocab, t)
            q2, a2 = request_for(rng, vocab, t)
            if a1 == a2:
                continue
            q = q1 + rng.choice(JOINERS) + q2
            answers = [
                {"name": t.definition["name"], "arguments": a1},
                {"name": t.definition["name"], "arguments": a2},
            ]
        else:
            t = rng.choice(tools)
            q, a = request_for(rng, vocab, t)
            answers = [{"name": t.definition["name"], "arguments": a}]
        out.append({"query": _decorate(rng, q, answers), "tools": definitions, "answers": answers})
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [x for v in value for x in _strings(v)]
    return []


def _decorate(rng: random.Random, query: str, answers: list[dict[str, Any]]) -> str:
    """Prefix, suffix and capitals as :func:`training.data._decorate` adds them, unless that
    would change a value the answer copies from the query."""
    decorated = D._decorate(rng, query, augment=True)
    copied = [v for a in answers for x in a["arguments"].values() for v in _strings(x)]
    if all(v in decorated for v in copied if v in query):
        return decorated
    return query


# --------------------------------------------------------------------------------------------
# Rewritten trained kinds: the same requests, the tools declared by another author


Convert = Callable[[Any], Any]


def _number(v: float) -> float | int:
    v = round(v, 6)
    return int(v) if float(v).is_integer() else v


def _unit_change(
    rng: random.Random, vocab: Vocab, key: str, schema: dict[str, Any]
) -> tuple[str, dict, Convert] | None:
    """Another unit for a quantity parameter (``unit_changes`` in ``concepts.json``):
    (new key words, new schema, value converter)."""
    words = split_words(key)
    if schema.get("type") not in ("integer", "number") or rng.random() > 0.3:
        return None
    changes = vocab.concepts["unit_changes"]
    base = [w for w in words if w not in {c["word"] for c in changes}]
    for change in changes:
        if change["word"] not in words:
            continue
        options = change["to"]
        to = options[0] if len(options) == 1 or rng.random() < 0.5 else options[1]
        new_words = [*base, to["word"]] if base or "alone" not in to else [to["alone"]]
        factor, divisor = to.get("multiply", 1), to.get("divide", 1)

        def convert(v: float, factor: float = factor, divisor: float = divisor) -> float | int:
            return _number(v * factor / divisor)

        return "_".join(new_words), dict(to["schema"]), convert
    return None


@dataclass
class Rewrite:
    definition: dict[str, Any]
    keys: dict[str, str | None]  # original key -> new key (None: dropped)
    convert: dict[str, Convert]

    def answer(self, arguments: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in arguments.items():
            new = self.keys.get(k, k)
            if new is None:
                continue
            out[new] = self.convert[k](v) if k in self.convert else v
        return D.order_arguments(out, self.definition["parameters"])


def rewrite_tool(
    rng: random.Random, vocab: Vocab, tool: dict[str, Any], taken: set[str]
) -> Rewrite:
    style = rng.choice(STYLES)
    masked = rng.random() < 0.08
    words = split_words(tool["name"])
    for _ in range(6):
        new_words = _renamed(rng, vocab, words, 0.5)
        if rng.random() < 0.1 and len(new_words) >= 2:
            name = ".".join([styled(new_words[1:], "snake"), new_words[0]])
        else:
            name = styled(new_words, style)
        if masked:
            name = masked_name(rng, vocab)
        if name_key(name) not in vocab.blocklist and name not in taken and D_TOOL_NAME.match(name):
            break
    else:
        name = masked_name(rng, vocab) + str(rng.randint(100, 999))
    taken.add(name)
    desc = tool.get("description", "")
    r = rng.random()
    if r < 0.3 and not masked:
        desc = _describe(rng, vocab, desc)
    elif r < 0.42 and not masked:
        desc = ""

    params = tool.get("parameters") or {}
    required = set(params.get("required", []))
    key_style = style if style in ("snake", "camel") else "snake"
    keys: dict[str, str | None] = {}
    convert: dict[str, Convert] = {}
    props: dict[str, Any] = {}
    for i, (key, schema) in enumerate((params.get("properties") or {}).items()):
        schema = dict(schema)
        if key not in required and rng.random() < 0.15:
            keys[key] = None
            continue
        new_key_words = _renamed(rng, vocab, split_words(key), 0.4)
        change = _unit_change(rng, vocab, key, schema)
        if change:
            new_key_words = _renamed(rng, vocab, split_words(change[0]), 0.2)
            schema = {**{k: v for k, v in schema.items() if k == "description"}, **change[1]}
            convert[key] = change[2]
        if "enum" in schema and rng.random() < 0.3:
            case = rng.choice([str.upper, str.title])
            schema["enum"] = [case(v) for v in schema["enum"]]
            convert[key] = case
        new_key = styled(new_key_words, key_style)
        if rng.random() < 0.04 or not new_key:
            schema.setdefault("description", " ".join(split_words(key)).capitalize())
            new_key = f"arg{i + 1}"
        while new_key in props:
            new_key += "_"
        if key not in required and rng.random() < 0.1 and "enum" in schema:
            schema["default"] = schema["enum"][0]
        props[new_key] = schema
        keys[key] = new_key
    if rng.random() < 0.2:
        for extra_key, extra_schema in rng.sample(
            vocab.concepts["extra_optional"], rng.randint(1, 2)
        ):
            if extra_key not in props:
                props[extra_key] = dict(extra_schema)
    if rng.random() < 0.15:
        items = list(props.items())
        rng.shuffle(items)
        props = dict(items)
    new_params: dict[str, Any] = {"type": "object", "properties": props}
    new_required = [keys[k] for k in params.get("required", []) if keys.get(k)]
    if new_required or "required" in params:
        new_params["required"] = new_required
    if rng.random() < 0.12:
        new_params["additionalProperties"] = False
    definition = {"name": name, "description": desc, "parameters": new_params}
    return Rewrite(definition, keys, convert)


def rewritten_group(rng: random.Random, vocab: Vocab, size: int) -> list[Example]:
    exs = D.make_group(rng, D.TRAIN_KINDS, False, size, augment=True)
    if not exs:
        return []
    taken: set[str] = set()
    rewrites = {t["name"]: rewrite_tool(rng, vocab, t, taken) for t in exs[0]["tools"]}
    tools = [rewrites[t["name"]].definition for t in exs[0]["tools"]]
    out = []
    for ex in exs:
        answers = [
            {
                "name": rewrites[a["name"]].definition["name"],
                "arguments": rewrites[a["name"]].answer(a["arguments"]),
            }
            for a in ex["answers"]
        ]
        out.append({"query": ex["query"], "tools": tools, "answers": answers})
    return out


def original_group(rng: random.Random, vocab: Vocab, size: int) -> list[Example]:
    del vocab
    exs = D.make_group(rng, D.TRAIN_KINDS, False, size, augment=True)
    return [D._canon_answers(e) for e in exs]


SOURCES = {"generated": generated_group, "rewritten": rewritten_group, "original": original_group}
DEFAULT_MIX = {"generated": 0.55, "rewritten": 0.25, "original": 0.20}


def generate(
    n: int,
    seed: int = 0,
    mix: dict[str, float] | None = None,
    group_size: tuple[int, int] = (8, 24),
    split: str = "train",
    no_fit: float = 0.1,
    near_miss: float = 0.0,
    chitchat: float = 0.04,
) -> list[Example]:
    """``n`` examples, deterministic for the arguments; groups drawn from ``mix``.  With
    ``split="valid"``, generated kinds come from the held-out objects only.  ``no_fit``,
    ``near_miss`` and ``chitchat`` shape the generated groups (:func:`generated_group`)."""
    vocab = load_vocab(split)
    mix = mix or DEFAULT_MIX
    names, weights = list(mix), [mix[k] for k in mix]
    rng = random.Random(seed * 7919 + 17)
    out: list[Example] = []
    seen: set[tuple[str, str]] = set()
    while len(out) < n:
        source = rng.choices(names, weights)[0]
        size = rng.randint(*group_size)
        if source == "generated":
            group = generated_group(rng, vocab, size, no_fit, near_miss, chitchat)
        else:
            group = SOURCES[source](rng, vocab, size)
        for ex in group:
            key = (ex["query"], ex["tools"][0]["name"] if ex["tools"] else "")
            if key in seen or len(out) >= n:
                continue
            seen.add(key)
            out.append(ex)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.schemas", description=__doc__.split("\n")[0]
    )
    ap.add_argument("out", help="JSONL file to write")
    ap.add_argument("--n", type=int, default=200000, help="examples (default 200000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--mix",
        type=float,
        nargs=3,
        default=[DEFAULT_MIX[k] for k in SOURCES],
        metavar=("GENERATED", "REWRITTEN", "ORIGINAL"),
        help="share of groups from each source (default 0.55 0.25 0.20)",
    )
    ap.add_argument("--group-size", type=int, nargs=2, default=[8, 24], metavar=("MIN", "MAX"))
    ap.add_argument(
        "--split",
        choices=["train", "valid"],
        default="train",
        help="valid: generated kinds from the held-out objects (heldout_objects.json) only",
    )
    ap.add_argument(
        "--no-fit",
        type=float,
        default=0.1,
        help="share of generated-kind requests that no listed tool handles (default 0.1)",
    )
    ap.add_argument(
        "--chitchat",
        type=float,
        default=0.04,
        help="share of generated-kind requests that are small talk (default 0.04)",
    )
    ap.add_argument(
        "--near-miss",
        type=float,
        default=0.0,
        help="of those, the share asking another action of a listed object (default 0)",
    )
    a = ap.parse_args(argv)
    exs = generate(
        a.n,
        a.seed,
        dict(zip(SOURCES, a.mix, strict=True)),
        tuple(a.group_size),
        a.split,
        a.no_fit,
        a.near_miss,
        a.chitchat,
    )
    with open(a.out, "w", encoding="utf-8") as f:
        for e in exs:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    print(f"{len(exs)} examples -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
