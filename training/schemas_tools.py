"""Generated tool definitions: an action of the vocabulary declared as a tool, with its name,
parameter keys, descriptions and key order drawn afresh (:func:`make_tool`), and each
parameter's JSON schema (:func:`param_schema`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .schemas_names import STYLES, _article, split_words, styled
from .schemas_vocab import Action, Param, Vocab, _describe, _renamed, accepted_tool_name


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

    def propose() -> str:
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
        return name

    name = accepted_tool_name(rng, vocab, propose, masked, taken)

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
