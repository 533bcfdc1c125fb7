"""Command-line entry points: ``train_main(argv)`` and ``eval_main(argv)``.

``python -m training train DATA.jsonl --out model.gguf`` /
``python -m training eval DATA.jsonl`` (the pipeline wires the same functions to
``python -m pipeline train|eval``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.models import TRAINED_DEFAULT as DEFAULT_MODEL


def train_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline train",
        description="Train or fine-tune a tool-calling model and export a GGUF.",
    )
    ap.add_argument("data", help="labelled JSONL: {query, tools, answers} per line")
    ap.add_argument("--out", required=True, help="output GGUF path")
    ap.add_argument("--valid", help="validation JSONL (default: 10%% of DATA, at most 400 lines)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--from-scratch", action="store_true", help="new tokenizer and model")
    g.add_argument("--init", help=f"GGUF to fine-tune (default: {DEFAULT_MODEL} if present)")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps (default: 1300 from scratch, 300 fine-tuning)",
    )
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="stop after this many seconds of training (lr schedule follows)",
    )
    ap.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default 2e-3 from scratch, 3e-4 fine-tuning)",
    )
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument(
        "--warmup", type=int, default=None, help="warm-up steps (default: steps/10, at most 100)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-len", type=int, default=1024, help="longest packed sequence (tokens)")
    ap.add_argument(
        "--max-branches", type=int, default=16, help="most examples packed on one tool list"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="also keep each --eval-every export as OUT.stepN.gguf",
    )
    ap.add_argument("--quant", choices=["f32", "f16", "q8_0"], default="f16")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=688)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--no-bf16", action="store_true", help="train in float32 (slower)")
    ap.add_argument(
        "--device",
        choices=["cpu", "cuda", "auto"],
        default="cpu",
        help="where to train (default cpu; auto = cuda when torch sees one)",
    )
    a = ap.parse_args(argv)
    try:
        from .train import TrainArgs, train
    except ImportError as e:
        print(f"training needs torch and tokenizers (pip install '.[train]'): {e}", file=sys.stderr)
        return 2
    init = None
    if not a.from_scratch:
        init = a.init or (str(DEFAULT_MODEL) if DEFAULT_MODEL.exists() else None)
        if a.init and not Path(a.init).exists():
            print(f"--init {a.init}: no such file", file=sys.stderr)
            return 2
        if init is None:
            print("no shipped model found; training from scratch")
    steps = a.steps if a.steps is not None else (300 if init else 1300)
    lr = a.lr if a.lr is not None else (3e-4 if init else 2e-3)
    ta = TrainArgs(
        data=a.data,
        out=a.out,
        valid=a.valid,
        init=init,
        steps=steps,
        time_budget_s=a.time_budget,
        lr=lr,
        batch_tokens=a.batch_tokens,
        seed=a.seed,
        threads=a.threads,
        eval_every=a.eval_every,
        keep_checkpoints=a.keep_checkpoints,
        device=a.device,
        qtype=a.quant,
        dim=a.dim,
        n_layers=a.layers,
        n_heads=a.heads,
        ffn_dim=a.ffn,
        vocab_size=a.vocab,
        bf16=not a.no_bf16,
        max_len=a.max_len,
        max_branches=a.max_branches,
        warmup=a.warmup if a.warmup is not None else min(100, max(1, steps // 10)),
    )
    ta.log = lambda *x: print(*x, flush=True)
    train(ta)
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    from .evaluate import eval_cli

    return eval_cli(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "eval", "reproduce"):
        print("usage: python -m training {train,eval,reproduce} ...", file=sys.stderr)
        return 2
    if argv[0] == "reproduce":
        from .reproduce import reproduce_main

        return reproduce_main(argv[1:])
    return (train_main if argv[0] == "train" else eval_main)(argv[1:])
