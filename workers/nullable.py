"""Nullable arguments: what the model sees of them, and ``null`` put back in its answer.

OpenAI's strict mode asks for every property to be ``required`` and for an optional one
to be nullable (``"type": ["string", "null"]``, or ``anyOf`` with ``{"type": "null"}``),
answered ``null`` when the request does not give it. The model reads an optional argument
as one it may leave out. So the model is shown each tool with its nullable properties as
plain optional ones (:func:`model_tools`), and a call that leaves out a property that
was required and nullable gets ``null`` for it again (:func:`fill_nulls`) before it is
validated against the tool as sent. Both sides of training (the prompt and the answer
the model learns to write, ``training.data_format``) see the same view.

A tool without nullable properties is shown as it is, so its prompt, grammar and answers
stay byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Nulls:
    """Where a tool's answer gets ``null`` back: the properties of one object that were
    required and nullable, and the same for its nested objects and array items. (Its
    ``optional`` nullable properties are left out when ``null``, and not put back.)"""

    required: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    properties: dict[str, Nulls] = field(default_factory=dict)
    items: Nulls | None = None
    order: list[str] = field(default_factory=list)  # the object's properties, as declared

    def __bool__(self) -> bool:
        return bool(self.required or self.optional or self.properties or self.items)


def _without_null(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` with ``null`` taken out of its type, ``anyOf``/``oneOf`` and ``enum``;
    None when it does not allow ``null`` (or allows nothing else)."""
    result = dict(schema)
    nullable = False
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        if not rest:
            return None
        result["type"] = rest[0] if len(rest) == 1 else rest
        nullable = True
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and {"type": "null"} in branches:
            rest = [b for b in branches if b != {"type": "null"}]
            if not rest:
                return None
            del result[key]
            if len(rest) == 1 and isinstance(rest[0], dict):
                result = {**rest[0], **result}
            else:
                result[key] = rest
            nullable = True
    enum = result.get("enum")
    if isinstance(enum, list) and None in enum:
        result["enum"] = [value for value in enum if value is not None]
        nullable = True
    return result if nullable else None


def _relax(schema: Any) -> tuple[Any, Nulls]:
    """A copy of ``schema`` with its nullable properties optional and not nullable, and
    where their ``null`` goes back."""
    nulls = Nulls()
    if not isinstance(schema, dict):
        return schema, nulls
    result = dict(schema)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = list(schema.get("required", []))
        relaxed_properties = {}
        for name, child in properties.items():
            plain = _without_null(child) if isinstance(child, dict) else None
            if plain is not None and name in required:
                required.remove(name)
                nulls.required.append(name)
            elif plain is not None:
                nulls.optional.append(name)
            relaxed, inner = _relax(plain if plain is not None else child)
            relaxed_properties[name] = relaxed
            if inner:
                nulls.properties[name] = inner
        result["properties"] = relaxed_properties
        nulls.order = list(properties)
        if "required" in schema:
            result["required"] = required
    if isinstance(schema.get("items"), dict):
        result["items"], inner = _relax(schema["items"])
        nulls.items = inner or None
    return result, nulls


def model_tool(tool: dict[str, Any]) -> tuple[dict[str, Any], Nulls]:
    """A bare tool as the model is shown it, and where its calls get ``null`` back."""
    parameters, nulls = _relax(tool["parameters"])
    if not nulls:
        return tool, nulls
    return {**tool, "parameters": parameters}, nulls


def model_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bare tools as the model is shown them (the same dicts where nothing is nullable)."""
    return [model_tool(tool)[0] for tool in tools]


def _each_object(
    arguments: Any, nulls: Nulls, change: Callable[[dict[str, Any], Nulls], dict[str, Any]]
) -> Any:
    """``arguments`` with ``change`` applied to each object that ``nulls`` describes (nested
    objects and array items first); ``arguments`` itself where it describes none."""
    if not nulls or not isinstance(arguments, dict | list):
        return arguments
    if isinstance(arguments, list):
        if nulls.items is None:
            return arguments
        return [_each_object(item, nulls.items, change) for item in arguments]
    inner = nulls.properties
    return change(
        {
            name: _each_object(value, inner[name], change) if name in inner else value
            for name, value in arguments.items()
        },
        nulls,
    )


def _with_nulls(arguments: dict[str, Any], nulls: Nulls) -> dict[str, Any]:
    filled = {name: None for name in nulls.required} | arguments
    rank = {name: place for place, name in enumerate(nulls.order)}
    return dict(sorted(filled.items(), key=lambda item: rank.get(item[0], len(rank))))


def _without_nulls(arguments: dict[str, Any], nulls: Nulls) -> dict[str, Any]:
    return {
        name: value
        for name, value in arguments.items()
        if not (value is None and (name in nulls.required or name in nulls.optional))
    }


def fill_nulls(arguments: Any, nulls: Nulls) -> Any:
    """A copy of ``arguments`` with ``null`` for each required nullable property left out
    (in nested objects and array items too), keys in the order the tool declares them;
    ``arguments`` itself for a tool with no such property."""
    return _each_object(arguments, nulls, _with_nulls)


def drop_nulls(arguments: Any, nulls: Nulls) -> Any:
    """The arguments the model learns to write: the nullable properties that are ``null``
    left out (the model is shown them as not nullable; :func:`fill_nulls` puts back those
    that were required)."""
    return _each_object(arguments, nulls, _without_nulls)
