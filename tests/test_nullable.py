"""Nullable arguments (OpenAI strict mode): the model is shown them as optional ones, and a
call that leaves one out gets its ``null`` back before validation against the tool as sent.
Training's prompt and answer take the same view (``training.data_format``)."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
from conftest import PROJECT_ROOT, cli_env, read_jsonl
from jsonschema import Draft202012Validator

from training.data_format import format_answer, format_prompt
from workers.nullable import drop_nulls, fill_nulls, model_tool, model_tools
from workers.prompts import NeedlePromptFormat
from workers.toolset import ToolSet, normalize_tools

STRICT_TOOL = {
    "type": "function",
    "function": {
        "name": "book_table",
        "description": "Book a table.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "venue": {"type": "string"},
                "party": {"type": ["integer", "null"], "description": "people"},
                "seating": {"anyOf": [{"type": "string", "enum": ["in", "out"]}, {"type": "null"}]},
                "contact": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "phone": {"type": ["string", "null"]},
                    },
                    "required": ["name", "phone"],
                    "additionalProperties": False,
                },
                "guests": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"diet": {"type": ["string", "null"], "enum": ["veg", None]}},
                        "required": ["diet"],
                        "additionalProperties": False,
                    },
                },
                "note": {"type": ["string", "null"]},
            },
            "required": ["venue", "party", "seating", "contact", "guests"],
            "additionalProperties": False,
        },
    },
}


def _strict() -> dict:
    return normalize_tools([STRICT_TOOL])[0]


def test_the_model_sees_nullable_properties_as_optional_ones():
    shown, nulls = model_tool(_strict())
    parameters = shown["parameters"]
    assert parameters["required"] == ["venue", "contact", "guests"]
    assert parameters["properties"]["party"] == {"type": "integer", "description": "people"}
    assert parameters["properties"]["seating"] == {"type": "string", "enum": ["in", "out"]}
    assert parameters["properties"]["note"] == {"type": "string"}  # optional already
    assert parameters["properties"]["contact"]["required"] == ["name"]
    assert parameters["properties"]["guests"]["items"]["properties"]["diet"] == {
        "type": "string",
        "enum": ["veg"],
    }
    assert b"null" not in orjson.dumps(parameters)
    assert nulls.required == ["party", "seating"]
    assert _strict()["parameters"]["required"][1] == "party"  # the tool itself is unchanged


def test_a_tool_without_nullable_properties_is_shown_as_it_is():
    first = (PROJECT_ROOT / "inputs" / "queries.jsonl").read_bytes().splitlines()[0]
    tools = normalize_tools(json.loads(first)["tools"])
    assert all(shown is tool for shown, tool in zip(model_tools(tools), tools, strict=True))


def test_left_out_nullables_come_back_as_null_in_declared_order_and_validate():
    tool = _strict()
    _, nulls = model_tool(tool)
    written = {"contact": {"name": "Kim"}, "venue": "Lula", "guests": [{}, {"diet": "veg"}]}
    filled = fill_nulls(written, nulls)
    assert filled == {
        "venue": "Lula",
        "party": None,
        "seating": None,
        "contact": {"name": "Kim", "phone": None},
        "guests": [{"diet": None}, {"diet": "veg"}],
    }
    assert list(filled) == ["venue", "party", "seating", "contact", "guests"]
    assert not list(Draft202012Validator(tool["parameters"]).iter_errors(filled))
    assert list(Draft202012Validator(tool["parameters"]).iter_errors(written))  # as written: not
    assert drop_nulls(filled, nulls) == written
    assert drop_nulls(written | {"note": None}, nulls) == written  # optional: left out too
    given = {"venue": "Lula", "party": 4, "seating": "out", "contact": {"name": "K", "phone": "1"}}
    assert fill_nulls(given | {"guests": []}, nulls) == given | {"guests": []}


def test_training_writes_what_the_worker_reads_back():
    """The prompt and answer of a training example are the worker's prompt and the model's
    answer; the worker's validation turns that answer back into the labelled one."""
    tools = [STRICT_TOOL]
    answers = [
        {
            "name": "book_table",
            "arguments": {
                "venue": "Lula",
                "party": 2,
                "seating": None,
                "contact": {"name": "Kim", "phone": None},
                "guests": [],
                "note": "window",
            },
        }
    ]
    toolset = ToolSet(normalize_tools(tools))
    query = "table for two at Lula for Kim, by the window"
    assert format_prompt(tools, query) == NeedlePromptFormat().render(toolset.model_tools, query)
    written = format_answer(answers, tools)
    assert "null" not in written
    assert written.startswith('[{"name":"book_table","arguments":{"venue":"Lula","contact":')
    assert toolset.validate_calls(json.loads(written)) == answers


def test_the_pipeline_answers_a_strict_tool_with_every_key(tmp_path):
    """Through worker processes and the default model, the answer to a strict tool has
    every property the tool requires (``null`` where the model left it out) and validates
    against the tool as sent."""
    queries = ["book Lula for 4, outside, name Kim", "table at Roma for Sam", "Lula for two"]
    source = tmp_path / "strict.jsonl"
    source.write_text(
        "".join(json.dumps({"query": q, "tools": [STRICT_TOOL]}) + "\n" for q in queries)
    )
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "pipeline", str(source), "-o", str(output)]
    command += ["-w", "1", "--none-threshold", "1"]
    run = subprocess.run(
        command, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    lines = read_jsonl(output)
    assert len(lines) == 3 and all(line["status"] == "ok" for line in lines)
    validator = Draft202012Validator(_strict()["parameters"])
    for line in lines:
        for call in line["calls"]:
            assert set(call["arguments"]) >= {"venue", "party", "seating", "contact", "guests"}
            assert not list(validator.iter_errors(call["arguments"]))
