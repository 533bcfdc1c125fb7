"""Tool schemas: normalisation, the answer grammar's JSON Schema, and call validation.

A request's tools arrive either bare (``{"name", "description", "parameters"}``) or in
the OpenAI shape (``{"type": "function", "function": {...}}``). Both become the bare
shape. A :class:`ToolSet` is built once per distinct tool list and cached by its key.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from workers.nullable import Nulls, fill_nulls, model_tool

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class ToolSchemaError(ValueError):
    """A tool definition that cannot be used; the message says which tool and why."""


def normalize_tools(raw: object) -> list[dict[str, Any]]:
    """Return the tools as bare ``{"name", "description", "parameters"}`` dicts."""
    if not isinstance(raw, list):
        raise ToolSchemaError(f"tools must be a list, not {_json_type(raw)}")
    tools: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        tool = _normalize_tool(item, index)
        if tool["name"] in seen:
            raise ToolSchemaError(f"tools[{index}]: duplicate tool name {tool['name']!r}")
        seen.add(tool["name"])
        tools.append(tool)
    return tools


def _normalize_tool(item: object, index: int) -> dict[str, Any]:
    where = f"tools[{index}]"
    if not isinstance(item, dict):
        raise ToolSchemaError(f"{where} must be an object, not {_json_type(item)}")
    if "function" in item and item.get("type", "function") == "function":
        item = item["function"]
        where += ".function"
        if not isinstance(item, dict):
            raise ToolSchemaError(f"{where} must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ToolSchemaError(
            f"{where}.name must be a string of letters, digits, '_', '.' or '-' "
            f"(at most 64, not starting with a digit), got {name!r}"
        )
    description = item.get("description", "")
    if not isinstance(description, str):
        raise ToolSchemaError(f"{where}.description must be a string")
    parameters = item.get("parameters", EMPTY_PARAMETERS)
    if not isinstance(parameters, dict):
        raise ToolSchemaError(
            f"{where}.parameters must be a JSON Schema object, not {_json_type(parameters)}"
        )
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        location = "/".join(str(p) for p in exc.path) or "(root)"
        raise ToolSchemaError(
            f"{where}.parameters is not a valid JSON Schema at {location}: {exc.message}"
        ) from None
    if parameters.get("type", "object") != "object":
        raise ToolSchemaError(
            f'{where}.parameters must describe an object ("type": "object"), '
            f"got type {parameters.get('type')!r}"
        )
    return {"name": name, "description": description, "parameters": parameters}


def tools_key(tools: Sequence[dict[str, Any]]) -> str:
    """A stable key for a normalised tool list (order matters: it is part of the prompt)."""
    return hashlib.blake2b(orjson.dumps(list(tools)), digest_size=16).hexdigest()


MAX_ARRAY_ITEMS = 32
MAX_SAFE_INTEGER = 2**53 - 1  # beyond it a JSON parser may round an integer to a double

# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_SUBSCHEMA = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
)
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")


def _subschemas(node: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for key in _SUBSCHEMA:
        if isinstance(node.get(key), dict):
            found.append(node[key])
    for key in _SUBSCHEMA_LISTS:
        if isinstance(node.get(key), list):
            found += node[key]
    for key in _SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            found += list(node[key].values())
    return found


def bounded_schema(schema: Any, max_string_length: int) -> Any:
    """Copy of ``schema`` shaped for the decoding grammar, accepting a subset of its values.

    - properties are listed required first (each group in schema order): the grammar writes
      keys in ``properties`` order, and the shipped model was trained on this order;
    - an object with ``properties`` and no ``additionalProperties`` gets
      ``additionalProperties: false``, so the model cannot make up keys;
    - free strings get a ``maxLength`` and arrays a ``maxItems`` (at least
      :data:`MAX_ARRAY_ITEMS`), so decoding cannot run away inside one;
    - integers without a bound get ``±``:data:`MAX_SAFE_INTEGER`, so every decoded integer
      parses back exactly (orjson reads wider ones as rounded doubles).

    Validation still runs against the original schema.
    """
    result = copy.deepcopy(schema)
    _tighten(result, max_string_length)
    return result


def _tighten(node: Any, string_limit: int) -> None:
    if not isinstance(node, dict):
        return
    constrained = {"enum", "const", "pattern", "format"} & node.keys()
    if (
        node.get("type") == "string"
        and string_limit > 0
        and not constrained
        and "maxLength" not in node
    ):
        node["maxLength"] = string_limit
    if node.get("type") == "integer":
        if not {"minimum", "exclusiveMinimum"} & node.keys():
            node["minimum"] = -MAX_SAFE_INTEGER
        if not {"maximum", "exclusiveMaximum"} & node.keys():
            node["maximum"] = MAX_SAFE_INTEGER
    if node.get("type") == "array" and "maxItems" not in node:
        node["maxItems"] = max(MAX_ARRAY_ITEMS, node.get("minItems", 0))
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = set(node.get("required", []))
        order = [k for k in properties if k in required] + [
            k for k in properties if k not in required
        ]
        node["properties"] = {k: properties[k] for k in order}
        node.setdefault("additionalProperties", False)
    for child in _subschemas(node):
        _tighten(child, string_limit)


def rebase_refs(schema: Any, base: str) -> Any:
    """Point the local ``$ref``s of a tool's ``parameters`` at where the parameters sit in the
    answer schema: ``#/$defs/person`` becomes ``{base}/$defs/person`` and ``#`` (a recursive
    reference to the parameters themselves) becomes ``base``. Rebases in place."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            schema["$ref"] = base + ref[1:]
        for child in _subschemas(schema):
            rebase_refs(child, base)
    return schema


def arguments_schema(parameters: dict[str, Any], max_string_length: int) -> dict[str, Any]:
    """A tool's ``parameters`` as the grammar sees them (refs still relative to themselves)."""
    schema = bounded_schema(parameters, max_string_length)
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """OpenAI's ``tool_choice`` and ``parallel_tool_calls``, as the answer grammar takes them.

    ``mode`` is ``auto`` (any number of calls, none included), ``none`` (no call),
    ``required`` (at least one) or ``function`` (at least one, all of tool ``name``);
    ``parallel=False`` allows one call at most.
    """

    mode: str = "auto"
    name: str = ""
    parallel: bool = True

    @property
    def key(self) -> str:
        """What this choice adds to a tool list's grammar cache key ("" for the default)."""
        if self == ToolChoice():
            return ""
        return f"|{self.mode}:{self.name}:{'p' if self.parallel else 's'}"


def answer_schema(
    tools: Sequence[dict[str, Any]],
    max_calls: int,
    max_string_length: int,
    choice: ToolChoice = ToolChoice(),
) -> dict[str, Any]:
    """JSON Schema of a model answer: a list of calls, each naming one of ``tools``,
    as many and as chosen as ``choice`` allows.

    Each tool's ``$ref``s resolve against that tool's own ``parameters``.
    """
    if choice.mode == "none":
        return {"const": []}
    if choice.mode == "function":
        tools = [tool for tool in tools if tool["name"] == choice.name]
    variants = []
    for index, tool in enumerate(tools):
        arguments = arguments_schema(tool["parameters"], max_string_length)
        rebase_refs(arguments, f"#/items/anyOf/{index}/properties/arguments")
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool["name"]}, "arguments": arguments},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    if not variants:
        return {"const": []}  # no tools: the only answer is "no call"
    schema: dict[str, Any] = {
        "type": "array",
        "items": {"anyOf": variants},
        "maxItems": max_calls if choice.parallel else 1,
    }
    if choice.mode in ("required", "function"):
        schema["minItems"] = 1
    return schema


INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


def unrepresentable_number(value: Any, path: tuple[str, ...] = ()) -> tuple[str, Any] | None:
    """The first number in ``value`` that JSON output cannot hold as written (``inf``, ``nan``,
    an integer beyond 64 bits), as ``(path, number)``; None when there is none."""
    non_finite = isinstance(value, float) and not math.isfinite(value)
    too_wide = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= UINT64_MAX
    )
    if non_finite or too_wide:
        return "/".join(path) or "(root)", value
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = unrepresentable_number(item, (*path, str(key)))
        if found is not None:
            return found
    return None


@dataclass
class CallValidationError(Exception):
    """A decoded call that does not fit the request's tools."""

    message: str
    call_index: int


@dataclass
class ToolSet:
    """Everything derived from one tool list, built once and reused across requests.

    ``model_tools`` are the tools as the model is shown them and its grammar built from
    (nullable properties as plain optional ones: :mod:`workers.nullable`); calls are
    validated against ``tools``, as sent, once their ``null`` values are back."""

    tools: list[dict[str, Any]]
    key: str = ""
    model_tools: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict, repr=False)
    _nulls: dict[str, Nulls] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = tools_key(self.tools)
        self._validators = {
            tool["name"]: Draft202012Validator(tool["parameters"]) for tool in self.tools
        }
        views = [model_tool(tool) for tool in self.tools]
        self.model_tools = [view for view, _ in views]
        self._nulls = {view["name"]: nulls for view, nulls in views}

    @property
    def names(self) -> list[str]:
        return [tool["name"] for tool in self.tools]

    def answer_schema(
        self,
        max_calls: int,
        max_string_length: int,
        choice: ToolChoice = ToolChoice(),
    ) -> dict[str, Any]:
        """The answer grammar's schema (:func:`answer_schema`), of the tools as the model
        is shown them."""
        return answer_schema(self.model_tools, max_calls, max_string_length, choice)

    def validate_calls(self, calls: object) -> list[dict[str, Any]]:
        """Check a parsed answer; return the calls as ``{"name", "arguments"}`` dicts."""
        if not isinstance(calls, list):
            raise CallValidationError(
                f"answer must be a list of calls, got {_json_type(calls)}", -1
            )
        result = []
        for index, call in enumerate(calls):
            if not isinstance(call, dict):
                raise CallValidationError(f"calls[{index}] is not an object", index)
            name = call.get("name")
            validator = self._validators.get(name) if isinstance(name, str) else None
            if validator is None:
                raise CallValidationError(f"calls[{index}] names unknown tool {name!r}", index)
            arguments = fill_nulls(call.get("arguments", {}), self._nulls[name])
            error = next(iter(sorted(validator.iter_errors(arguments), key=_error_depth)), None)
            if error is not None:
                path = "/".join(str(p) for p in error.absolute_path) or "(root)"
                raise CallValidationError(
                    f"calls[{index}] ({name}) arguments at {path}: {error.message}", index
                )
            number = unrepresentable_number(arguments)
            if number is not None:
                raise CallValidationError(
                    f"calls[{index}] ({name}) arguments at {number[0]}: {number[1]!r} is not "
                    "a finite number that fits in JSON output",
                    index,
                )
            result.append({"name": name, "arguments": arguments})
        return result


def _error_depth(error: Any) -> int:
    return len(error.absolute_path)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
