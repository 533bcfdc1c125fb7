"""Nested parameters: a group's tools re-declared with a run of their parameters moved into one
object parameter (``{"options": {"type": "object", "properties": {...}}}``), and the answers
nested to match, so that a model learns to read and write arguments below the top level.

Applied to a whole group after it is made (:func:`nest_group`), so the other generators stay
as they are and a share of 0 leaves their output byte for byte unchanged.
"""

from __future__ import annotations

import random
from typing import Any

from .kinds import order_arguments
from .schemas_names import split_words, styled
from .schemas_redeclared import ConvertArguments, redeclare_tools
from .schemas_vocab import Example, Vocab


def _key_style(keys: list[str]) -> str:
    return "camel" if any(k != k.lower() for k in keys) else "snake"


def nest_tool(
    rng: random.Random, vocab: Vocab, tool: dict[str, Any]
) -> tuple[dict[str, Any], str, list[str]] | None:
    """``tool`` with 2-4 neighbouring parameters moved into one object parameter:
    (new definition, the object's key, the keys moved), or None when it has fewer than two."""
    params = tool.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    keys = list(props)
    if len(keys) < 2:
        return None
    size = rng.randint(2, min(4, len(keys)))
    start = rng.randint(0, len(keys) - size)
    members = keys[start : start + size]
    style = _key_style(keys)
    choices = [styled(split_words(key), style) for key in vocab.concepts["nest_keys"]]
    free = [k for k in choices if k not in props]
    if not free:
        return None
    outer = rng.choice(free)
    required = list(params.get("required", []))
    inner: dict[str, Any] = {"type": "object"}
    description = rng.choice(vocab.concepts["nest_descriptions"])
    if description:
        inner["description"] = description
    inner["properties"] = {k: props[k] for k in members}
    inner_required = [k for k in required if k in members]
    if inner_required:
        inner["required"] = inner_required
    new_props: dict[str, Any] = {}
    for k in keys:
        if k == members[0]:
            new_props[outer] = inner
        elif k not in members:
            new_props[k] = props[k]
    new_params = {**params, "properties": new_props}
    new_required = [k for k in required if k not in members]
    if inner_required:
        new_required.append(outer)
    if new_required or "required" in params:
        new_params["required"] = new_required
    return {**tool, "parameters": new_params}, outer, members


def nested_arguments(
    arguments: dict[str, Any], outer: str, members: list[str], parameters: dict[str, Any]
) -> dict[str, Any]:
    """``arguments`` with ``members`` moved under ``outer`` (left out when none is given),
    keys in the order the data uses: required first, then optional, in schema order."""
    inner_schema = parameters["properties"][outer]
    moved = {k: arguments[k] for k in members if k in arguments}
    out = {k: v for k, v in arguments.items() if k not in members}
    if moved:
        out[outer] = order_arguments(moved, inner_schema)
    return order_arguments(out, parameters)


def nest_group(rng: random.Random, vocab: Vocab, group: list[Example], share: float) -> None:
    """Re-declare each tool of ``group`` (one tool list) nested with probability ``share``,
    in place; answers that call a nested tool are nested to match."""

    def nested(tool: dict[str, Any]) -> tuple[dict[str, Any], ConvertArguments] | None:
        found = nest_tool(rng, vocab, tool)
        if found is None:
            return None
        definition, outer, members = found
        parameters = definition["parameters"]
        return definition, lambda arguments: nested_arguments(arguments, outer, members, parameters)

    redeclare_tools(rng, group, share, nested)
