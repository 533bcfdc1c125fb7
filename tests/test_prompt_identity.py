"""Training and serving see the same prompt text: for the same tools and query, the string
training tokenises (``training.data.format_prompt`` on a data file's example) is byte for
byte the one the pipeline's worker renders for a request line with those tools."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.trace import NoOpTracer

from pipeline.requests import ToolCache, build_request, decode_line, read_id
from training import data as D
from workers.engine import Completion, DecodingSettings
from workers.handler import JobHandler
from workers.messages import Job, expect, to_wire
from workers.prompts import make_prompt_format
from workers.protocol import HEADER, decode_body, encode_frame


class RecordingEngine:
    """Keeps the text the worker tokenises; answers every request with no call."""

    n_ctx = 1 << 20

    def __init__(self) -> None:
        self.texts: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        self.texts.append(text)
        return list(range(len(text) // 4 + 1))

    def compile_grammar(self, gbnf: str) -> Any:
        return None

    def complete(self, tokens: Sequence[int], grammar: Any, settings: Any) -> Completion:
        return Completion("[]", len(tokens), 1, 0, "stop", 1.0, 1.0)


def serving_prompt(line: bytes) -> str:
    """The prompt the pipeline gives the model for one request line: read and checked as the
    supervisor does, sent to the worker in a frame, rendered by the worker."""
    document = decode_line(line, 1)
    request = build_request(document, 1, read_id(document, 1), None, ToolCache())
    job = Job(1, request.id, request.query, request.tools, request.tools_key)
    job = expect(decode_body(encode_frame(to_wire(job))[HEADER.size :]), Job)
    engine = RecordingEngine()
    handler = JobHandler(
        engine, make_prompt_format("needle", {}), DecodingSettings(), NoOpTracer(), False, 0
    )
    result = handler.handle(job)  # (only its prompt stage matters here)
    assert len(engine.texts) == 1, result
    return engine.texts[0]


def training_prompts(examples: list[dict], tmp_path: Path) -> list[str]:
    """What training tokenises: the examples written as a data file, read back, rendered."""
    path = D.write_jsonl(tmp_path / "examples.jsonl", examples)
    return [D.format_prompt(e["tools"], e["query"]) for e in D.read_jsonl(path)]


def openai_shape(tools: list[dict]) -> list[dict]:
    return [{"type": "function", "function": t} for t in tools]


ODD_TOOLS = [
    {
        "name": "reserve_table",
        "description": "Réserver une table — 予約, für 2–12 Gäste ☕",
        "parameters": {
            "type": "object",
            "properties": {
                "restaurant": {"type": "string", "description": "Nom (e.g. « Chez Zoë »)"},
                "tip_fraction": {"type": "number", "minimum": 1e-05, "maximum": 0.3},
                "budget": {"type": "number", "exclusiveMaximum": 1e16, "default": 2.5e-7},
                "temperature": {"type": "number", "default": -0.0, "multipleOf": 0.1},
                "guests": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "diet": {"enum": ["végétarien", "halal", "無し"]},
                            "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                        },
                        "required": ["name"],
                    },
                },
                "when": {
                    "type": "object",
                    "properties": {"date": {"type": "string"}, "time": {"type": "string"}},
                },
            },
            "required": ["restaurant", "guests"],
        },
    },
    {"name": "no_arguments", "description": "Nothing to fill in: parameters default"},
    {"name": "bare_name"},
]


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    exs = D.generate_split("valid", 40, seed=5)
    exs += D.generate_split("test_blind", 10, seed=5)
    exs += D.generate_split("test_tools", 10, seed=5)
    exs += [e for e in D.generate_split("train", 60, seed=5) if len(e["tools"]) > 8][:10]
    assert any(not e["answers"] for e in exs)
    return exs


def variants(examples: list[dict]) -> list[dict]:
    """The generated examples; their tools in OpenAI shape; and with odd tools added
    (non-ASCII text, floats that json.dumps and orjson write differently, nested schemas,
    tools without a description or parameters)."""
    out = copy.deepcopy(examples)
    out += [{**e, "tools": openai_shape(e["tools"])} for e in copy.deepcopy(examples[:15])]
    for i, e in enumerate(copy.deepcopy(examples[15:35])):
        odd = copy.deepcopy(ODD_TOOLS)
        tools = [*e["tools"][:2], *odd] if i % 2 else [*odd, *e["tools"]]
        if i % 3 == 0:
            tools = openai_shape(tools)
        out.append({"query": e["query"] + " — ¿vale? ☕ «oui»", "tools": tools, "answers": []})
    return out


@pytest.mark.parametrize("encode", ["orjson", "json"])
def test_training_prompt_is_the_serving_prompt(examples, tmp_path, encode):
    cases = variants(examples)
    trained = training_prompts(cases, tmp_path)
    for e, text in zip(cases, trained, strict=True):
        request = {"id": "r", "query": e["query"], "tools": e["tools"]}
        if encode == "orjson":
            line = orjson.dumps(request)
        else:
            line = json.dumps(request, ensure_ascii=False).encode()
        assert serving_prompt(line) == text
        assert text.endswith(f"</tools><query>{e['query']}</query>")


def test_one_renderer_for_bare_and_openai_shapes(examples):
    for e in examples[:10]:
        bare = D.format_prompt(e["tools"], e["query"])
        assert D.format_prompt(openai_shape(e["tools"]), e["query"]) == bare
        assert bare.startswith('<tools>[{"name":')


def test_floats_are_written_as_the_worker_writes_them(tmp_path):
    """json.dumps and orjson disagree on some floats (``1e-05`` / ``0.00001``); a data file
    may store either, and the prompt is always the worker's rendering."""
    tools = copy.deepcopy(ODD_TOOLS)
    written = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
    assert '"minimum":1e-05' in written and '"default":2.5e-07' in written
    (text,) = training_prompts([{"query": "q", "tools": tools, "answers": []}], tmp_path)
    assert '"minimum":0.00001' in text and '"default":2.5e-7' in text
    assert "Réserver une table — 予約" in text  # non-ASCII stays as it is, not \u-escaped
    assert '"parameters":{"type":"object","properties":{}}' in text  # defaults filled in


def test_prompt_text_of_generated_examples_unchanged(examples):
    """The generator's tools have no such floats: the shared renderer gives the same text
    as the json.dumps rendering training used before."""
    for e in examples:
        tools = [
            {"name": t["name"], "description": t["description"], "parameters": t["parameters"]}
            for t in e["tools"]
        ]
        tj = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
        assert (
            D.format_prompt(e["tools"], e["query"])
            == f"<tools>{tj}</tools><query>{e['query']}</query>"
        )
