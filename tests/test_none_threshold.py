"""``--none-threshold``: no call when the model gives it at least that probability.

On needle-tiny (real probabilities, seconds): the engine reports the model's probability of
answering none, and a threshold at that probability or below gives ``[]`` while one just
above gives a call; through the CLI, 0 empties every answer and 1 leaves none empty.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from conftest import PROJECT_ROOT, SAMPLE_QUERIES, cli_env, read_jsonl

from pipeline.models import TINY_MODEL
from workers.engine import NONE_THRESHOLD_KEY, DecodingSettings, LlamaEngine, none_threshold_of
from workers.prompts import NeedlePromptFormat
from workers.toolset import answer_schema, normalize_tools

SETTINGS = DecodingSettings()


LABELLED = PROJECT_ROOT / "inputs" / "labelled.jsonl"


def _requests(start: int, stop: int) -> list[tuple[str, list[dict]]]:
    """Labelled requests (lines 57-66 answer both ways: small talk and calls)."""
    lines = LABELLED.read_bytes().splitlines()[start:stop]
    return [(doc["query"], normalize_tools(doc["tools"])) for doc in map(orjson.loads, lines)]


def test_the_threshold_decides_at_the_models_probability_of_none() -> None:
    engine = LlamaEngine(TINY_MODEL, n_threads=1)
    prompts = NeedlePromptFormat()
    sides = set()
    for query, tools in _requests(56, 66):
        grammar = engine.compile_grammar(
            answer_schema(tools, SETTINGS.max_calls, SETTINGS.max_string_length)
        )
        tokens = engine.tokenize(prompts.render(tools, query))

        def answer(threshold: float | None, tokens=tokens, grammar=grammar):
            settings = DecodingSettings(none_threshold=threshold)
            return engine.complete(tokens, grammar, settings)

        plain = answer(None)
        assert plain.none_probability is None  # not weighed without a threshold
        p = answer(0.5).none_probability
        assert p is not None and 0 < p < 1
        assert answer(p).text == "[]"
        above = answer(min(1.0, p * 1.001 + 1e-9))
        assert above.text.startswith('[{"name":')
        assert above.none_probability == pytest.approx(p)
        sides.add(plain.text == "[]")
        engine.none_threshold = p  # the model's own threshold (its GGUF metadata) ...
        assert answer(None).text == "[]"  # ... applies when the run names none
        engine.none_threshold = None
    assert sides == {True, False}  # the model itself answers both ways on these requests


def test_a_models_own_threshold_comes_from_its_metadata(tmp_path) -> None:
    from pipeline.modelbuild import Manifest

    manifest = tmp_path / "m.json"
    document = {
        "name": "m",
        "base": {"package": "p", "file": "f", "sha256": "0"},
        "adapter": {"file": "a.gguf", "sha256": "0"},
        "sha256": "0",
        "none_threshold": {"value": 0.3, "chosen_on": "valid_nofit.jsonl"},
    }
    manifest.write_text(orjson.dumps(document).decode())
    metadata = Manifest.read(manifest).metadata()
    assert none_threshold_of(metadata) == 0.3  # the manifest's value reaches the built model
    assert none_threshold_of({NONE_THRESHOLD_KEY: "0.3"}) == 0.3
    assert none_threshold_of({NONE_THRESHOLD_KEY: "1.5"}) is None
    assert none_threshold_of({NONE_THRESHOLD_KEY: "x"}) is None
    assert none_threshold_of({}) is None


def test_zero_empties_every_answer_and_one_none(tmp_path) -> None:
    requests = tmp_path / "in.jsonl"
    requests.write_bytes(b"".join(SAMPLE_QUERIES.read_bytes().splitlines(keepends=True)[:20]))
    answers = {}
    for threshold in ("0", "1"):
        output = tmp_path / f"out{threshold}.jsonl"
        command = [sys.executable, "-m", "pipeline", str(requests), "-o", str(output)]
        command += ["--model", "needle-tiny", "-w", "1", "--none-threshold", threshold]
        run = subprocess.run(
            command, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
        )
        assert run.returncode in (0, 1), run.stderr
        answers[threshold] = [line for line in read_jsonl(output) if line["status"] == "ok"]
        assert len(answers[threshold]) >= 15
    assert all(line["calls"] == [] for line in answers["0"])
    assert all(line["calls"] for line in answers["1"])
