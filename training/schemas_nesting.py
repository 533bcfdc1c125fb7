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


def _runs_followed(keys: list[str], required: set[str], given: set[str]) -> list[tuple[int, int]]:
    """(start, size) of each run of 2-4 parameters that an answer giving ``given`` goes on
    after: answers give required arguments first, then optional ones, each in schema order,
    and the nested object takes the place of the run's first parameter."""

    def rank(key: str, is_required: bool) -> tuple[int, int]:
        return (0 if is_required else 1, keys.index(key))

    runs = []
    for size in range(2, min(4, len(keys) - 1) + 1):
        for start in range(len(keys) - size + 1):
            run = keys[start : start + size]
            outer = rank(run[0], bool(required & set(run)))
            later = [
                k
                for k in keys
                if k not in run and (k in given or k in required) and rank(k, k in required) > outer
            ]
            if later:
                runs.append((start, size))
    return runs


def nest_tool(
    rng: random.Random,
    vocab: Vocab,
    tool: dict[str, Any],
    after: float = 0.0,
    given: set[str] | None = None,
) -> tuple[dict[str, Any], str, list[str]] | None:
    """``tool`` with 2-4 neighbouring parameters moved into one object parameter:
    (new definition, the object's key, the keys moved), or None when it has fewer than two.

    ``after``: the probability that the run is one an answer goes on after (where the tool
    has one), an answer that gives the required arguments and ``given``. Runs drawn evenly
    mostly hold the last argument an answer gives, and a model trained on them learns to
    close the arguments after a nested object."""
    params = tool.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    keys = list(props)
    if len(keys) < 2:
        return None
    required = list(params.get("required", []))
    runs = _runs_followed(keys, set(required), given or set()) if after > 0 else []
    if runs and rng.random() < after:
        start, size = rng.choice(runs)
    else:
        size = rng.randint(2, min(4, len(keys)))
        start = rng.randint(0, len(keys) - size)
    members = keys[start : start + size]
    style = _key_style(keys)
    choices = [styled(split_words(key), style) for key in vocab.concepts["nest_keys"]]
    free = [k for k in choices if k not in props]
    if not free:
        return None
    outer = rng.choice(free)
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


def nest_group(
    rng: random.Random, vocab: Vocab, group: list[Example], share: float, after: float = 0.0
) -> None:
    """Re-declare each tool of ``group`` (one tool list) nested with probability ``share``,
    in place; answers that call a nested tool are nested to match. ``after``: as in
    :func:`nest_tool` (0 draws nothing, so older files are reproduced byte for byte)."""

    given: dict[str, set[str]] = {}  # each tool's arguments the group's answers give
    if after > 0:
        for example in group:
            for answer in example["answers"]:
                given.setdefault(answer["name"], set()).update(answer.get("arguments") or {})

    def nested(tool: dict[str, Any]) -> tuple[dict[str, Any], ConvertArguments] | None:
        found = nest_tool(rng, vocab, tool, after, given.get(tool.get("name", "")))
        if found is None:
            return None
        definition, outer, members = found
        parameters = definition["parameters"]
        return definition, lambda arguments: nested_arguments(arguments, outer, members, parameters)

    redeclare_tools(rng, group, share, nested)
