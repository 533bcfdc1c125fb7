"""The ``pipeline train`` and ``pipeline eval`` commands, run as subprocesses on the tiny
training run of tests/tinytrain.py (the model itself: tests/test_training_model.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch (pip install '.[train]')")
pytest.importorskip("tokenizers", reason="training needs tokenizers (pip install '.[train]')")
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

from tinytrain import (
    ROOT,
    assert_all_tensors_changed,
    model_state,
    open_llm,
    run_pipeline,
    train_tiny,
    write_rows,
)

from training import data as D
from training.export import load_gguf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("tiny"))


TINY_CONFIG = [
    *("--dim", "32", "--layers", "2", "--heads", "2", "--ffn", "64", "--vocab", "600"),
    *("--max-len", "2048", "--batch-tokens", "2048", "--threads", "1", "--eval-every", "0"),
]


def test_train_command_from_scratch(tiny, tmp_path):
    out = tmp_path / "scratch.gguf"
    data = tiny["dir"] / "train.jsonl"
    p = run_pipeline(
        "train", str(data), "--out", str(out), "--from-scratch", "--steps", "2",
        "--quant", "f32", *TINY_CONFIG,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    n_valid = max(1, len(tiny["examples"]) // 10)
    assert f"data: {len(tiny['examples']) - n_valid} train / {n_valid} valid" in p.stdout
    assert "from scratch:" in p.stdout and "fine-tuning" not in p.stdout
    assert re.search(r"^final valid answer loss \d+\.\d+ .* after 2 steps$", p.stdout, re.M)
    assert f"wrote {out} " in p.stdout
    model, tok = load_gguf(out)
    c = model.c
    assert (c.dim, c.n_layers, c.n_heads, c.ffn_dim) == (32, 2, 2, 64)
    assert c.vocab_size == tok.vocab_size <= 600
    e = tiny["examples"][0]
    text = D.format_prompt(e["tools"], e["query"])
    llm = open_llm(out, vocab_only=True)
    assert llm.tokenize(text.encode(), add_bos=True, special=False) == [
        tok.bos_id,
        *tok.encode(text),
    ]


def test_train_command_fine_tunes_from_init(tiny, tmp_path):
    out = tmp_path / "ft.gguf"
    data = tiny["dir"] / "train.jsonl"
    p = run_pipeline(
        "train", str(data), "--out", str(out), "--init", str(tiny["gguf"]), "--steps", "2",
        "--lr", "1e-3", "--warmup", "1", "--quant", "f32", "--threads", "1",
        "--eval-every", "0", "--batch-tokens", "2048",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"fine-tuning from {tiny['gguf']} " in p.stdout and "from scratch" not in p.stdout
    assert re.search(r"^final valid answer loss .* after 2 steps$", p.stdout, re.M)
    init_sd, init_tokens, init_config = model_state(tiny["gguf"])
    tuned_sd, tuned_tokens, tuned_config = model_state(out)
    assert tuned_tokens == init_tokens and tuned_config == init_config
    assert_all_tensors_changed(init_sd, tuned_sd, 1e-3)

    missing = run_pipeline(
        "train", str(data), "--out", str(out), "--init", str(tmp_path / "no.gguf")
    )
    assert missing.returncode == 2
    assert f"--init {tmp_path / 'no.gguf'}: no such file" in missing.stderr


def _canonical_calls(calls: list) -> list[str]:
    """Calls as order-free JSON strings, numbers with an integer value as integers."""

    def number(text: str) -> int | float:
        value = float(text)
        return int(value) if value.is_integer() else value

    return sorted(
        json.dumps(json.loads(json.dumps(c), parse_float=number), sort_keys=True) for c in calls
    )


def _eval_data(tiny, tmp_path) -> tuple[Path, list[dict]]:
    """A few generated examples, and one whose expected answer no model can give."""
    exs = [dict(e) for e in tiny["examples"][:4]]
    exs.append({**exs[1], "answers": [{"name": "no_such_tool", "arguments": {}}]})
    return write_rows(tmp_path / "labelled.jsonl", exs), exs


def _expected_scores(exs: list[dict], results_path: Path) -> tuple[int, dict[str, list[int]]]:
    """(correct, {tool: [n, correct]}) counted from the results file."""
    results = {str(r["id"]): r for r in map(json.loads, results_path.read_text().splitlines())}
    correct, per_tool = 0, {}
    for i, e in enumerate(exs, 1):
        r = results[str(i)]
        ok = r["status"] == "ok" and _canonical_calls(r["calls"]) == _canonical_calls(e["answers"])
        correct += ok
        for name in sorted({a["name"] for a in e["answers"]}) or ["(no call)"]:
            counts = per_tool.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += ok
    return correct, per_tool


def test_eval_command_prints_the_report(tiny, tmp_path):
    """``pipeline eval`` prints one line per tool and ``overall``, counting every line, and
    the failures."""
    data, exs = _eval_data(tiny, tmp_path)
    results = tmp_path / "results.jsonl"
    p = run_pipeline(
        "eval", str(data), "--model", str(tiny["gguf"]), "--workers", "1",
        "--results", str(results),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    correct, per_tool = _expected_scores(exs, results)
    lines = p.stdout.splitlines()
    assert lines[0] == f"exact match on {data}:"
    report = {}
    for line in lines[1 : 2 + len(per_tool)]:
        m = re.fullmatch(r"  (.+?) +(\d+)/(\d+) +(\d+\.\d)%", line)
        assert m, line
        report[m[1]] = [int(m[3]), int(m[2])]
    assert report.pop("overall") == [len(exs), correct]
    assert report == per_tool
    fails = [line for line in lines if line.startswith("  FAIL ")]
    assert len(fails) == len(exs) - correct
    assert f"  FAIL {len(exs)}: {exs[-1]['query']!r}" in fails  # the impossible answer


def test_eval_command_json(tiny, tmp_path):
    """``pipeline eval --json`` with the shipped model: the scores as JSON."""
    data, exs = _eval_data(tiny, tmp_path)
    results = tmp_path / "results.jsonl"
    shipped = ROOT / "workers" / "models" / "needle-tools.gguf"
    p = run_pipeline(
        "eval", str(data), "--model", str(shipped), "--workers", "1", "--json",
        "--results", str(results),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(p.stdout)
    correct, per_tool = _expected_scores(exs, results)
    assert (s["n"], s["correct"]) == (len(exs), correct)
    assert 0 < correct < len(exs)  # the trained model gets some right; none gets the last
    assert s["accuracy"] == pytest.approx(correct / len(exs))
    assert {k: [v["n"], v["correct"]] for k, v in s["per_tool"].items()} == per_tool
    assert "failures" not in s
