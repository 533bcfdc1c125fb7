"""The answer grammar on llguidance: every supported JSON Schema keyword is enforced while
decoding, ``$ref``/``$defs`` resolve per tool, schemas it cannot compile become error lines,
and no ``ok`` line carries a number JSON cannot hold.

Decoding runs the real worker code (:class:`workers.handler.JobHandler`) on the real test
model through llama.cpp, sampling at temperature 1 over several seeds so the random-weight
model tries many values: any value the grammar let through that breaks the schema would be
an ``invalid_arguments`` line.
"""

from __future__ import annotations

import datetime
import re
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import write_jsonl
from workers.engine import DecodingSettings, LlamaEngine
from workers.handler import JobHandler, parse_answer
from workers.messages import Job, to_wire
from workers.prompts import make_prompt_format
from workers.toolset import CallValidationError, ToolSet, normalize_tools, tools_key

SEEDS = range(12)
QUERIES = ("please do it", "set the value now", "use the probe tool")


@pytest.fixture(scope="module")
def engine(test_model: Path) -> LlamaEngine:
    return LlamaEngine(test_model, n_threads=1)


def decode(engine: LlamaEngine, tools: list[dict[str, Any]], seeds=SEEDS) -> list[dict]:
    """One result message per (seed, query), from the real worker code."""
    tools = normalize_tools(tools)
    results = []
    for seed in seeds:
        handler = JobHandler(
            engine,
            make_prompt_format("needle", {}),
            DecodingSettings(temperature=1.0, seed=seed, max_tokens=192),
            TracerProvider().get_tracer("test"),
            False,
            0,
        )
        for index, query in enumerate(QUERIES):
            job = Job(index, index, query, tools, tools_key(tools))
            results.append(to_wire(handler.handle(job)))
    return results


def probe(value_schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": "probe",
            "description": "Set the value.",
            "parameters": {
                "type": "object",
                "properties": {"value": value_schema},
                "required": ["value"],
            },
        }
    ]


def _is_date(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and bool(
        datetime.date.fromisoformat(text)
    )


def _is_time(text: str) -> bool:
    return bool(re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text))


def _is_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text.lower()


FORMATS = {
    "date": _is_date,
    "time": _is_time,
    "date-time": lambda t: _is_date(t[:10]) and t[10] in "Tt" and _is_time(t[11:]),
    "email": lambda t: bool(re.fullmatch(r"[^@\s]+@[^@\s]+", t)),
    "uuid": _is_uuid,
}

KEYWORDS: dict[str, dict[str, Any]] = {
    "minimum/maximum": {"type": "integer", "minimum": 3, "maximum": 7},
    "exclusiveMinimum/exclusiveMaximum": {
        "type": "number",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 1,
    },
    "multipleOf": {"type": "integer", "multipleOf": 5},
    "minLength/maxLength": {"type": "string", "minLength": 3, "maxLength": 5},
    "pattern": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
    **{f"format {name}": {"type": "string", "format": name} for name in FORMATS},
    "minItems/maxItems": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 9},
        "minItems": 2,
        "maxItems": 3,
    },
    "enum": {"enum": ["red", "green", 7]},
    "const": {"const": "fixed"},
    "anyOf": {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "boolean"}]},
    "oneOf": {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]},
    "nested objects": {
        "type": "object",
        "properties": {
            "inner": {
                "type": "object",
                "properties": {"level": {"type": "integer", "minimum": 1, "maximum": 2}},
                "required": ["level"],
            }
        },
        "required": ["inner"],
    },
    "additionalProperties false": {
        "type": "object",
        "properties": {"a": {"type": "boolean"}},
        "additionalProperties": False,
    },
}


@pytest.mark.parametrize("keyword", list(KEYWORDS))
def test_every_ok_call_honours_the_keyword(engine, keyword) -> None:
    schema = KEYWORDS[keyword]
    results = decode(engine, probe(schema))
    validator = Draft202012Validator(schema)
    values = []
    for result in results:
        assert result["status"] == "ok" or result["error"]["type"] == "truncated", result
        for call in result.get("calls", []):
            value = call["arguments"]["value"]
            assert not list(validator.iter_errors(value)), (keyword, value)
            if keyword.startswith("format "):
                assert FORMATS[keyword.removeprefix("format ")](value), value
            values.append(value)
    assert len(values) >= 3, f"{keyword}: too few calls to show anything ({results[:2]})"


def test_pydantic_schema_with_defs_and_refs_decodes_to_valid_calls(engine) -> None:
    """``model_json_schema()`` output, as a user would paste it: ``$defs``, ``$ref``, a
    recursive model, ``anyOf`` with null, titles and defaults."""
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=12)
        age: int = Field(ge=0, le=120)

    class Team(BaseModel):
        label: str
        members: list[Person] = Field(min_length=1, max_length=2)
        subteams: list[Team] = Field(default_factory=list, max_length=1)

    class Meeting(BaseModel):
        title: str
        organizer: Person
        team: Team | None = None

    tools = [
        {
            "name": "book_meeting",
            "description": "Book a meeting.",
            "parameters": Meeting.model_json_schema(),
        },
        {
            "name": "make_team",
            "description": "Make a team.",
            "parameters": Team.model_json_schema(),
        },
    ]
    assert "$defs" in tools[0]["parameters"] and "$ref" in orjson.dumps(tools).decode()
    results = decode(engine, tools)
    models = {"book_meeting": Meeting, "make_team": Team}
    calls = []
    for result in results:
        assert result["status"] == "ok" or result["error"]["type"] == "truncated", result
        for call in result.get("calls", []):
            models[call["name"]].model_validate(call["arguments"])  # raises if invalid
            calls.append(call["name"])
    assert {"book_meeting", "make_team"} <= set(calls), calls


def test_refs_resolve_against_their_own_tool(engine) -> None:
    """Two tools with the same ``$defs`` name and different definitions."""

    def tool(name: str, kind: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "parameters": {
                "type": "object",
                "$defs": {"item": kind},
                "properties": {"item": {"$ref": "#/$defs/item"}},
                "required": ["item"],
            },
        }

    tools = [
        tool("count", {"type": "integer", "minimum": 5, "maximum": 6}),
        tool("flag", {"type": "boolean"}),
    ]
    seen = {}
    for result in decode(engine, tools):
        assert result["status"] == "ok" or result["error"]["type"] == "truncated", result
        for call in result.get("calls", []):
            seen.setdefault(call["name"], set()).add(type(call["arguments"]["item"]))
    assert seen == {"count": {int}, "flag": {bool}}, seen


BAD_TOOLS = {
    "uniqueItems": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
    },
    "$ref": {"type": "object", "properties": {"who": {"$ref": "#/$defs/person"}}},
    "pattern": {"type": "object", "properties": {"code": {"type": "string", "pattern": "(?<=a)b"}}},
    "format": {"type": "object", "properties": {"when": {"type": "string", "format": "moonphase"}}},
}


def test_uncompilable_schemas_become_error_lines_naming_tool_and_keyword(run_cli, tmp_path) -> None:
    good = probe({"type": "integer", "minimum": 1, "maximum": 3})
    rows = [{"id": "good", "query": "set it", "tools": good}]
    for keyword, parameters in BAD_TOOLS.items():
        tools = [*good, {"name": "broken_tool", "parameters": parameters}]
        rows.append({"id": keyword, "query": "set it", "tools": tools})
    rows.append({"id": "good again", "query": "set it again", "tools": good})
    run = run_cli(write_jsonl(tmp_path / "in.jsonl", rows), "--workers", "1")
    assert run.returncode == 1, run.stderr
    results = {row["id"]: row for row in run.results()}
    assert results["good"]["status"] == results["good again"]["status"] == "ok"
    for keyword in BAD_TOOLS:
        error = results[keyword]["error"]
        assert error["type"] == "invalid_tool_schema", results[keyword]
        assert "tools[1] (broken_tool)" in error["message"]
        assert f"keyword {keyword}" in error["message"], error["message"]
    assert "/$defs/person" in results["$ref"]["error"]["message"]  # the tool's own pointer


@pytest.mark.parametrize(
    "answer",
    [
        '[{"name":"probe","arguments":{"value":1e999}}]',
        '[{"name":"probe","arguments":{"value":-1e999}}]',
        '[{"name":"probe","arguments":{"value":NaN}}]',
        '[{"name":"probe","arguments":{"value":[1,Infinity]}}]',
        '[{"name":"probe","arguments":{"value":123456789012345678901234567890}}]',
    ],
)
def test_numbers_json_cannot_hold_are_never_ok(answer) -> None:
    """``1e999`` fits the grammar of a JSON number but parses as ``inf``, which passes the
    schema and would be written as ``null``: validation rejects it (and NaN, and integers
    too wide for 64 bits when the lenient parser reads them exactly)."""
    toolset = ToolSet(normalize_tools(probe({"type": ["number", "array"]})))
    wide = "1234567890" in answer  # orjson reads it as a (finite) double; json exactly
    parsed = json_lenient(answer) if wide else parse_answer(answer)
    with pytest.raises(CallValidationError, match="finite number"):
        toolset.validate_calls(parsed)
    assert toolset.validate_calls(parse_answer('[{"name":"probe","arguments":{"value":1e300}}]'))


def json_lenient(text: str) -> Any:
    """What the worker's parser does with text orjson refuses (NaN, Infinity, control
    characters): Python's json module, which also reads wide integers exactly."""
    import json

    return json.loads(text, strict=False)


def test_the_worker_parser_reads_non_finite_numbers_as_such() -> None:
    assert parse_answer('{"x":1e999}') == {"x": float("inf")}
    value = parse_answer('{"x":NaN}')["x"]
    assert value != value  # NaN reaches validation, which rejects it
