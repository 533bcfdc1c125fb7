"""Confidence, grounding and the review queue: the arithmetic, then real runs.

The runs use needle-tiny (the shipped 2.5M model: real token probabilities on the sample
tools, in seconds) through the real CLI; the calibration round trip builds a model with
:mod:`pipeline.modelbuild` and reads it back through a worker's engine.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys

import orjson
import pytest
from conftest import PROJECT_ROOT, SAMPLE_QUERIES, cli_env, read_jsonl

from pipeline.models import TINY_MODEL
from training.confidence_metrics import auroc, precision_at
from workers.confidence import (
    Calibration,
    answer_confidence,
    call_spans,
    fit_platt,
    ungrounded_strings,
)

TOOLS = [
    {
        "name": "set_alarm",
        "parameters": {
            "type": "object",
            "properties": {
                "time": {"type": "string"},
                "label": {"type": "string", "default": "alarm"},
                "sound": {"type": "string", "enum": ["bell", "birds"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "where": {"type": "object", "properties": {"room": {"type": "string"}}},
            },
        },
    }
]


def test_call_spans_skip_brackets_inside_strings() -> None:
    text = b'[{"name":"a","arguments":{"x":"}]{"}},{"name":"b","arguments":{}}]'
    spans = call_spans(text)
    assert [text[s:e] for s, e in spans] == [
        b'{"name":"a","arguments":{"x":"}]{"}}',
        b'{"name":"b","arguments":{}}',
    ]
    assert call_spans(b"[]") == []


def test_confidence_is_the_product_of_chosen_tokens_per_call() -> None:
    pieces = [b"[", b'{"name":"a"', b',"arguments":{}}', b",", b'{"name":"b"}', b"]"]
    logprobs = [(1, math.log(0.5)), (3, math.log(0.9)), (4, math.log(0.8)), (6, math.log(0.7))]
    scored = answer_confidence(pieces, logprobs)
    assert scored.calls == pytest.approx([0.5, 0.8])
    # the structure (another call, the end) times the least sure call
    assert scored.line == pytest.approx(0.9 * 0.7 * 0.5)
    none = answer_confidence([b"[", b"]"], [(1, math.log(0.6))])
    assert none.calls == [] and none.line == pytest.approx(0.6)


def test_calibration_composes_and_round_trips() -> None:
    first, later = Calibration(2.0, -1.0), Calibration(0.5, 0.3)
    for raw in (0.01, 0.3, 0.5, 0.99):
        assert first.then(later).apply(raw) == pytest.approx(later.apply(first.apply(raw)))
    text = first.to_metadata()
    assert Calibration.from_metadata({"needle.confidence.platt": text}) == first
    assert Calibration.from_metadata({}) is None


def test_platt_fit_recovers_a_known_calibration() -> None:
    rng = random.Random(0)
    truth = Calibration(1.7, -0.4)
    scores = [rng.uniform(0.02, 0.98) for _ in range(4000)]
    right = [rng.random() < truth.apply(s) for s in scores]
    fit = fit_platt(scores, right)
    assert fit.a == pytest.approx(truth.a, abs=0.2)
    assert fit.b == pytest.approx(truth.b, abs=0.2)


def test_ranking_metrics() -> None:
    assert auroc([(0.9, True), (0.8, True), (0.2, False)]) == 1.0
    assert auroc([(0.1, True), (0.9, False)]) == 0.0
    assert auroc([(0.5, True), (0.5, False)]) == 0.5
    assert auroc([(0.5, True)]) is None
    pairs = [(0.9, True), (0.8, True), (0.7, False), (0.1, False)]
    assert precision_at(pairs, 0.5) == 1.0
    assert precision_at(pairs, 1.0) == 0.5


def test_ungrounded_strings() -> None:
    calls = [
        {
            "name": "set_alarm",
            "arguments": {
                "time": "07:30",
                "label": "alarm",
                "sound": "birds",
                "tags": ["Gym  Day", "yoga"],
                "where": {"room": "kitchen"},
            },
        }
    ]
    query = "wake me at 7:30 for gym day"
    found = ungrounded_strings(calls, query, TOOLS)
    # "07:30" is not written so; the default label and the enum value count as grounded
    assert found == [
        {"call": 0, "path": "time"},
        {"call": 0, "path": "tags/1"},
        {"call": 0, "path": "where/room"},
    ]


@pytest.mark.slow
def test_review_queue_on_a_real_run(tmp_path) -> None:
    requests = tmp_path / "in.jsonl"
    requests.write_bytes(b"".join(SAMPLE_QUERIES.read_bytes().splitlines(keepends=True)[:30]))
    output, queue = tmp_path / "out.jsonl", tmp_path / "review.jsonl"
    command = [sys.executable, "-m", "pipeline", str(requests), "-o", str(output)]
    command += ["--model", "needle-tiny", "-w", "1", "--review-below", "0.9"]
    command += ["--review-file", str(queue)]
    run = subprocess.run(
        command, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert run.returncode in (0, 1), run.stderr
    lines = read_jsonl(output)
    ok = [line for line in lines if line["status"] == "ok"]
    assert len(lines) == 30 and ok
    for line in ok:
        assert 0 <= line["confidence"] <= 1
        assert len(line["call_confidence"]) == len(line["calls"])
        if line["calls"]:
            assert line["confidence"] <= min(line["call_confidence"]) + 1e-6
        unsure = line["confidence"] < 0.9 or bool(line["ungrounded"])
        assert line["review"] is unsure
    marked = [line for line in ok if line["review"]]
    assert read_jsonl(queue) == marked
    assert f"{len(marked)} for review (under 0.9)" in run.stderr
    # The model is not sure of everything, and not unsure of everything.
    assert 0 < len(marked) < len(ok)


def test_review_file_needs_a_threshold(tmp_path) -> None:
    command = [sys.executable, "-m", "pipeline", str(SAMPLE_QUERIES), "-o", str(tmp_path / "o")]
    command += ["--model", str(TINY_MODEL), "--review-file", str(tmp_path / "r")]
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True)
    assert run.returncode == 2
    assert "--review-file needs --review-below" in run.stderr


@pytest.mark.slow
def test_a_calibrated_model_reports_calibrated_confidence(tmp_path) -> None:
    """The calibration travels in the built GGUF's metadata to the worker's answers."""
    from pipeline.modelbuild import merge_lora
    from pipeline.models import MODELS_DIR, smollm2_path
    from workers.confidence import METADATA_KEY
    from workers.engine import DecodingSettings, LlamaEngine
    from workers.handler import JobHandler
    from workers.prompts import NeedlePromptFormat
    from workers.toolset import ToolSet, answer_schema, normalize_tools

    calibration = Calibration(0.5, 1.0)
    built = tmp_path / "calibrated.gguf"
    adapter = MODELS_DIR / "needle-smol.lora.gguf"
    merge_lora(
        smollm2_path(),
        adapter,
        built,
        "calibrated",
        1024,
        {METADATA_KEY: calibration.to_metadata()},
    )
    engine = LlamaEngine(built, n_threads=1)
    handler_calibration = JobHandler(
        engine,
        NeedlePromptFormat(),
        DecodingSettings(),
        None,
        False,
        0,  # type: ignore[arg-type]
    ).calibration
    assert handler_calibration == calibration
    row = orjson.loads(SAMPLE_QUERIES.read_bytes().splitlines()[0])
    tools = normalize_tools(row["tools"])
    grammar = engine.compile_grammar(answer_schema(tools, 4, 128))
    prompt = engine.tokenize(NeedlePromptFormat().render(ToolSet(tools).tools, row["query"]))
    completion = engine.complete(prompt, grammar, DecodingSettings())
    pieces = engine.token_bytes(completion.token_ids)
    raw = answer_confidence(pieces, completion.logprobs)
    scaled = answer_confidence(pieces, completion.logprobs, calibration)
    assert scaled.line == pytest.approx(calibration.apply(raw.line), abs=1e-6)
