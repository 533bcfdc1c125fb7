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
from workers.answer_spans import value_spans
from workers.confidence import (
    REPEATED_FACTOR,
    Calibration,
    answer_confidence,
    call_spans,
    fit_platt_with_none,
    label_answer,
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


def test_a_repeated_value_lowers_its_calls_confidence() -> None:
    pieces = [b"[", b'{"name":"a","arguments":{"x":1,"y":1}}', b",", b'{"name":"b"}', b"]"]
    logprobs = [(1, math.log(0.9)), (3, math.log(0.8))]
    plain = answer_confidence(pieces, logprobs)
    doubted = answer_confidence(pieces, logprobs, repeats=[1, 0])
    assert doubted.calls == pytest.approx([0.9 * REPEATED_FACTOR, 0.8])
    assert doubted.line == pytest.approx(0.9 * REPEATED_FACTOR)
    assert plain.line == pytest.approx(0.8)
    query = "the z-score for 721 where the mean is -678.76"
    calls = [{"name": "z", "arguments": {"value": -678.76, "mean": -678.76}}]
    answer = [b"[", orjson.dumps(calls[0]), b"]"]
    labels = label_answer(answer, [(1, math.log(0.9))], None, calls, query, [])
    assert labels.repeated == [{"call": 0, "path": "mean"}]
    assert labels.confidence == pytest.approx(0.9 * REPEATED_FACTOR)
    said_twice = "the z-score for 5 where the mean is 5"
    calls = [{"name": "z", "arguments": {"value": 5, "mean": 5}}]
    labels = label_answer(answer, [(1, math.log(0.9))], None, calls, said_twice, [])
    assert labels.repeated == [] and labels.confidence == pytest.approx(0.9)


def test_the_tokens_of_a_value_the_worker_rewrote_do_not_count() -> None:
    """A phone the worker put in E.164 (workers/reformat.py) is the request's, not the
    model's choice: the tokens that wrote it leave the call's confidence."""
    query = "where are we on the Nopa waitlist? (415) 555-0134"
    pieces = [b'[{"name":"q","arguments":{"restaurant":"', b"Nopa", b'","phone":"', b"515"]
    pieces += [b"-0134", b'"}}', b"]"]
    logprobs = [(1, math.log(0.9)), (3, math.log(0.2)), (4, math.log(0.5)), (6, math.log(0.95))]
    calls = [{"name": "q", "arguments": {"restaurant": "Nopa", "phone": "+14155550134"}}]
    as_written = label_answer(pieces, logprobs, None, calls, query, [])
    rewritten = label_answer(pieces, logprobs, None, calls, query, [], {(0, "phone")})
    assert as_written.call_confidence == pytest.approx([0.9 * 0.2 * 0.5])
    assert rewritten.call_confidence == pytest.approx([0.9])
    assert rewritten.confidence == pytest.approx(0.9 * 0.95)
    assert as_written.ungrounded == [{"call": 0, "path": "phone"}] and rewritten.ungrounded == []
    spans = value_spans(b"".join(pieces), [(0, "phone"), (0, "restaurant"), (1, "phone")])
    assert [b"".join(pieces)[start:end] for start, end in spans] == [b'"515-0134"', b'"Nopa"']


def test_calibration_composes_and_round_trips() -> None:
    first, later = Calibration(2.0, -1.0), Calibration(0.5, 0.3)
    for raw in (0.01, 0.3, 0.5, 0.99):
        assert first.then(later).apply(raw) == pytest.approx(later.apply(first.apply(raw)))
    text = first.to_metadata()
    assert Calibration.from_metadata({"needle.confidence.platt": text}) == first
    assert Calibration.from_metadata({}) is None


def test_answers_of_no_call_have_a_calibration_of_their_own() -> None:
    calls, none = Calibration(2.0, -1.0), Calibration(0.5, -2.0)
    calibration = Calibration(calls.a, calls.b, none=none)
    call_answer = ([b"[", b'{"name":"a"', b',"arguments":{}}', b"]"], [(1, math.log(0.6))])
    no_call = ([b"[", b"]"], [(1, math.log(0.6))])
    assert answer_confidence(*call_answer, calibration).line == pytest.approx(calls.apply(0.6))
    assert answer_confidence(*no_call, calibration).line == pytest.approx(none.apply(0.6))
    metadata = {
        "needle.confidence.platt": calibration.to_metadata(),
        "needle.confidence.platt_none": none.to_metadata(),
    }
    assert Calibration.from_metadata(metadata) == calibration
    # composed: each kind of answer goes through its own scale at each step
    later = Calibration(0.7, 0.2, none=Calibration(1.5, 0.1))
    for raw in (0.05, 0.5, 0.9):
        both = calibration.then(later)
        assert both.apply(raw) == pytest.approx(later.apply(calls.apply(raw)))
        assert both.for_answer(False).apply(raw) == pytest.approx(
            later.for_answer(False).apply(none.apply(raw))
        )
    # a calibration without one scales answers of no call as it does calls
    assert calls.for_answer(False) is calls


def test_platt_fit_with_none_recovers_a_known_calibration() -> None:
    rng = random.Random(1)
    truth = Calibration(1.5, 0.3, none=Calibration(1.5, -1.2))
    scores = [rng.uniform(0.02, 0.98) for _ in range(6000)]
    none = [rng.random() < 0.3 for _ in scores]
    pairs = zip(scores, none, strict=True)
    right = [rng.random() < truth.for_answer(not n).apply(s) for s, n in pairs]
    fit = fit_platt_with_none(scores, right, none)
    assert fit.a == pytest.approx(1.5, abs=0.15)
    assert fit.b == pytest.approx(0.3, abs=0.15)
    assert fit.none is not None and fit.none.a == fit.a
    assert fit.none.b == pytest.approx(-1.2, abs=0.2)


def test_platt_fit_recovers_a_known_calibration() -> None:
    rng = random.Random(0)
    truth = Calibration(1.7, -0.4)
    scores = [rng.uniform(0.02, 0.98) for _ in range(4000)]
    right = [rng.random() < truth.apply(s) for s in scores]
    fit = fit_platt_with_none(scores, right, [False] * len(scores))
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
        assert isinstance(line["repeated"], list)
        unsure = line["confidence"] < 0.9 or bool(line["ungrounded"]) or bool(line["repeated"])
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
    from pipeline.modelbuild import merge_lora, model_metadata
    from pipeline.models import MODELS_DIR, smollm2_path
    from workers.engine import DecodingSettings, LlamaEngine
    from workers.handler import JobHandler
    from workers.prompts import NeedlePromptFormat
    from workers.toolset import ToolSet, answer_schema, normalize_tools

    calibration = Calibration(0.5, 1.0, none=Calibration(0.5, -1.0))
    built = tmp_path / "calibrated.gguf"
    adapter = MODELS_DIR / "needle-smol.lora.gguf"
    merge_lora(
        smollm2_path(),
        adapter,
        built,
        "calibrated",
        1024,
        model_metadata(calibration.to_metadata(), None, "0.5,-1.0"),
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


def test_calibrate_fits_answers_of_no_call_apart(tmp_path, capsys) -> None:
    """``python -m training calibrate`` writes both scales into the manifest, and the model
    it builds carries them: here answers of no call are right half as often as calls of
    the same confidence, so theirs is the lower scale."""
    import json
    import shutil

    from pipeline.modelbuild import Manifest
    from pipeline.models import MODELS_DIR, SMOL_MANIFEST
    from training.calibrate import calibrate_main

    manifest = tmp_path / SMOL_MANIFEST.name
    shutil.copy(SMOL_MANIFEST, manifest)
    shutil.copy(MODELS_DIR / "needle-smol.lora.gguf", tmp_path)
    rng = random.Random(2)
    call, other = {"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}
    labelled, results = [], []
    for line in range(1, 301):
        confidence = rng.uniform(0.3, 0.99)
        none = line % 3 == 0
        right = rng.random() < confidence * (0.4 if none else 0.9)
        answer = [] if none else [call]
        expected = answer if right else ([call] if none else [other])
        labelled.append({"query": "q", "tools": [], "answers": expected})
        results.append({"id": line, "status": "ok", "calls": answer, "confidence": confidence})
    for path, rows in (("labelled.jsonl", labelled), ("results.jsonl", results)):
        (tmp_path / path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = Manifest.read(manifest)
    args = [str(tmp_path / "labelled.jsonl"), str(tmp_path / "results.jsonl")]
    assert calibrate_main([*args, "--manifest", str(manifest)]) == 0
    assert "300 answers" in capsys.readouterr().out
    after = Manifest.read(manifest)
    fitted = Calibration.from_metadata(after.metadata())
    assert fitted is not None and fitted.none is not None
    assert fitted.none.apply(0.8) < fitted.apply(0.8) - 0.2
    assert after.sha256 != before.sha256  # the built model's metadata changed
    assert json.loads(manifest.read_text())["calibration"]["platt_none"] == after.calibration_none


def test_calibrate_fits_several_splits_together(tmp_path, capsys) -> None:
    """Pairs of LABELLED RESULTS are fitted as one set (the manifest names every split), and
    an odd number of paths is a usage error."""
    import json
    import shutil

    from pipeline.models import MODELS_DIR, SMOL_MANIFEST
    from training.calibrate import calibrate_main

    manifest = tmp_path / SMOL_MANIFEST.name
    shutil.copy(SMOL_MANIFEST, manifest)
    shutil.copy(MODELS_DIR / "needle-smol.lora.gguf", tmp_path)
    rng = random.Random(3)
    call, other = {"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}
    args = []
    for split in ("one", "two"):
        labelled, results = [], []
        for line in range(1, 101):
            confidence = rng.uniform(0.3, 0.99)
            right = rng.random() < confidence
            labelled.append({"query": "q", "tools": [], "answers": [call] if right else [other]})
            results.append({"id": line, "status": "ok", "calls": [call], "confidence": confidence})
        for name, rows in ((f"{split}.jsonl", labelled), (f"{split}.results.jsonl", results)):
            (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        args += [str(tmp_path / f"{split}.jsonl"), str(tmp_path / f"{split}.results.jsonl")]
    with pytest.raises(SystemExit) as usage:
        calibrate_main([*args[:3], "--manifest", str(manifest)])
    assert usage.value.code == 2
    assert calibrate_main([*args, "--manifest", str(manifest)]) == 0
    assert "200 answers" in capsys.readouterr().out
    assert json.loads(manifest.read_text())["calibration"]["fit_on"] == "one.jsonl + two.jsonl"
