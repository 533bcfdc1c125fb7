"""Groups of the trained kinds of :mod:`training.data`: rewritten (the same requests, the
tools declared by another author with other names, keys, enum spellings, units and optional
parameters, the answers converted to match) and original (as they are)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import data as D
from .schemas_names import STYLES, split_words, styled
from .schemas_vocab import Example, Vocab, _describe, _renamed, accepted_tool_name

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

    def propose() -> str:
        new_words = _renamed(rng, vocab, words, 0.5)
        if rng.random() < 0.1 and len(new_words) >= 2:
            return ".".join([styled(new_words[1:], "snake"), new_words[0]])
        return styled(new_words, style)

    name = accepted_tool_name(rng, vocab, propose, masked, taken)
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
