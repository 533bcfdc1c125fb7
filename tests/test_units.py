"""Fast tests of the pure pieces: tool schemas, grammar schema, ids, answers, model references."""

from __future__ import annotations

import pytest
from conftest import sample_tools

from pipeline.idset import IdSet
from pipeline.models import ModelError, parse_hub_reference
from workers.handler import parse_answer
from workers.protocol import ProtocolError, encode_frame, read_frame
from workers.toolset import (
    CallValidationError,
    ToolSchemaError,
    ToolSet,
    answer_schema,
    bounded_schema,
    normalize_tools,
)


def test_openai_and_bare_tools_normalise_to_the_same_shape():
    bare = sample_tools()
    wrapped = [{"type": "function", "function": tool} for tool in bare]
    assert normalize_tools(wrapped) == normalize_tools(bare)
    assert normalize_tools([{"name": "ping"}]) == [
        {"name": "ping", "description": "", "parameters": {"type": "object", "properties": {}}}
    ]


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"name": "x"}, "must be a list"),
        ([5], "must be an object"),
        ([{"description": "no name"}], ".name must be"),
        ([{"name": "1bad"}], ".name must be"),
        ([{"name": "x", "parameters": []}], "JSON Schema object"),
        ([{"name": "x", "parameters": {"type": "strnig"}}], "not a valid JSON Schema"),
        ([{"name": "x", "parameters": {"type": "string"}}], "must describe an object"),
        ([{"name": "x"}, {"name": "x"}], "duplicate tool name"),
    ],
)
def test_bad_tools_are_rejected_with_the_place_and_reason(tools, message):
    with pytest.raises(ToolSchemaError, match=message):
        normalize_tools(tools)


def test_grammar_schema_bounds_free_strings_orders_required_first_and_closes_objects():
    parameters = {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "level": {"type": "integer", "minimum": 0, "maximum": 3},
            "count": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "open": {"type": "object", "properties": {}, "additionalProperties": True},
        },
        "required": ["level", "mode"],
    }
    tightened = bounded_schema(parameters, 16)
    assert tightened["properties"]["text"]["maxLength"] == 16
    assert "maxLength" not in tightened["properties"]["mode"]
    assert tightened["properties"]["level"] == {"type": "integer", "minimum": 0, "maximum": 3}
    assert tightened["properties"]["count"]["maximum"] == 2**53 - 1
    assert tightened["properties"]["tags"]["maxItems"] == 32
    # the grammar writes keys in ``properties`` order: required ones first, as trained
    assert list(tightened["properties"]) == ["mode", "level", "text", "count", "tags", "open"]
    assert tightened["additionalProperties"] is False
    assert tightened["properties"]["open"]["additionalProperties"] is True
    assert "maxLength" not in parameters["properties"]["text"]  # the original is untouched
    assert next(iter(parameters["properties"])) == "text"


def test_answer_schema_names_only_the_tools_and_rebases_their_refs():
    tools = normalize_tools(sample_tools())
    schema = answer_schema(tools, 4, 64)
    names = [v["properties"]["name"]["const"] for v in schema["items"]["anyOf"]]
    assert names == [tool["name"] for tool in tools]
    assert answer_schema([], 4, 64) == {"const": []}
    with_refs = normalize_tools(
        [
            {
                "name": "t",
                "parameters": {
                    "type": "object",
                    "$defs": {"p": {"type": "object", "properties": {"kids": {"$ref": "#"}}}},
                    "properties": {"who": {"$ref": "#/$defs/p"}},
                },
            }
        ]
    )
    arguments = answer_schema([*tools, *with_refs], 4, 64)["items"]["anyOf"][-1]
    arguments = arguments["properties"]["arguments"]
    base = f"#/items/anyOf/{len(tools)}/properties/arguments"
    assert arguments["properties"]["who"]["$ref"] == base + "/$defs/p"
    assert arguments["$defs"]["p"]["properties"]["kids"]["$ref"] == base
    assert with_refs[0]["parameters"]["properties"]["who"]["$ref"] == "#/$defs/p"


def test_calls_are_validated_against_their_tool_schema():
    toolset = ToolSet(normalize_tools(sample_tools()))
    ok = toolset.validate_calls([{"name": "set_timer", "arguments": {"duration_seconds": 300}}])
    assert ok == [{"name": "set_timer", "arguments": {"duration_seconds": 300}}]
    with pytest.raises(CallValidationError, match="unknown tool"):
        toolset.validate_calls([{"name": "launch_rocket", "arguments": {}}])
    with pytest.raises(CallValidationError, match="duration_seconds"):
        toolset.validate_calls([{"name": "set_timer", "arguments": {"duration_seconds": 0}}])
    with pytest.raises(CallValidationError, match="required"):
        toolset.validate_calls([{"name": "set_timer", "arguments": {}}])


def test_answers_parse_leniently_where_json_allows():
    assert parse_answer('[{"name":"a","arguments":{}}]') == [{"name": "a", "arguments": {}}]
    assert parse_answer('["tab\there"]') == ["tab\there"]  # a raw control character
    with pytest.raises(ValueError):
        parse_answer('[{"name": ')


def test_id_set_tells_integer_and_string_ids_apart_and_grows():
    ids = IdSet(capacity=4)
    assert ids.add(3) and ids.add("3")
    assert not ids.add(3)
    for value in range(10_000):
        ids.add(f"id-{value}")
    assert len(ids) == 10_002
    assert "id-9999" in ids and "id-10000" not in ids


def test_hub_references():
    assert parse_hub_reference("org/repo/model.gguf") == ("org/repo", "model.gguf", None)
    assert parse_hub_reference("org/repo/sub/m.gguf@v1") == ("org/repo", "sub/m.gguf", "v1")
    with pytest.raises(ModelError):
        parse_hub_reference("org/model.gguf")


def test_frames_round_trip_and_detect_truncation(tmp_path):
    path = tmp_path / "frames"
    path.write_bytes(encode_frame({"type": "job", "n": 1}) + encode_frame({"type": "x"})[:-2])
    with open(path, "rb") as stream:
        assert read_frame(stream) == {"type": "job", "n": 1}
        with pytest.raises(ProtocolError):
            read_frame(stream)


def test_every_error_type_is_documented_and_no_other_is_accepted() -> None:
    import re

    from conftest import PROJECT_ROOT

    from pipeline.requests import InputError
    from workers.errors import ErrorType, anonymous, client_fault, found_by_line
    from workers.prepared import RequestFailed

    usage = (PROJECT_ROOT / "docs" / "usage.md").read_text()
    table = usage[usage.index("| error type | when |") :].split("\n\n")[0]
    documented = set(
        re.findall(r"`([a-z_0-9]+)`", "\n".join(r.split(" | ")[0] for r in table.splitlines()))
    )
    assert documented == {e.value for e in ErrorType}
    with pytest.raises(ValueError):
        RequestFailed("new_kind_of_failure", "a type nobody added to workers/errors.py")
    with pytest.raises(ValueError):
        InputError(3, "invalid_jsn", "a misspelt type")
    assert client_fault("missing_tools") and not client_fault("timeout")
    assert not client_fault("a type an older version wrote")
    assert anonymous("invalid_json") and found_by_line("invalid_json")
    assert found_by_line("duplicate_id") and not anonymous("duplicate_id")
    assert not found_by_line("missing_query") and not found_by_line("truncated")
