"""The tiny training run and helpers shared by tests/test_training_model.py and
tests/test_training_commands.py.

Needs the ``train`` extra and llama-cpp-python: import it only after the test module's
``pytest.importorskip`` guards for torch, tokenizers and llama_cpp.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import llama_cpp
import torch
from conftest import cli_env

from training import data as D
from training.export import load_gguf
from training.train import TrainArgs, train

ROOT = Path(__file__).resolve().parent.parent


def train_tiny(d: Path) -> dict:
    """Train a 4-step model on 40 generated examples in the folder ``d``: its ``dir``, the f32
    ``gguf`` it wrote, the ``examples`` (``dir/train.jsonl``) and train's ``result``."""
    exs = D.generate_split("train", 40, seed=1)
    (d / "train.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in exs), encoding="utf-8"
    )
    out = d / "tiny.gguf"
    args = TrainArgs(
        data=str(d / "train.jsonl"),
        out=str(out),
        steps=4,
        lr=3e-3,
        warmup=1,
        eval_every=2,
        batch_tokens=2048,
        dim=32,
        n_layers=2,
        n_heads=2,
        ffn_dim=64,
        vocab_size=600,
        qtype="f32",
        threads=1,
        max_len=2048,
    )
    args.log = lambda *a: None
    res = train(args)
    return {"dir": d, "gguf": out, "examples": exs, "result": res}


def open_llm(path, **kw):
    return llama_cpp.Llama(str(path), n_ctx=2048, n_threads=1, verbose=False, **kw)


def run_pipeline(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def model_state(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str], object]:
    model, tok = load_gguf(path)
    return model.state_dict(), tok.tokens(), model.c


def assert_all_tensors_changed(init: dict, tuned: dict, lr: float) -> None:
    assert init.keys() == tuned.keys()
    for name, before in init.items():
        change = (tuned[name] - before).abs().max().item()
        # Adam's first step moves every weight with a gradient by about lr
        assert change > lr / 4, f"{name} moved by only {change:g}"
