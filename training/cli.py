"""Command-line entry points: ``train_main(argv)`` and ``eval_main(argv)``.

``python -m training train DATA.jsonl --out model.gguf`` /
``python -m training eval DATA.jsonl`` (the pipeline wires the same functions to
``python -m pipeline train|eval``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.models import TINY_MODEL as DEFAULT_MODEL


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
    ap.add_argument(
        "--encode-workers",
        type=int,
        default=None,
        help="processes that tokenise the data before training (default: one per CPU, at most 16)",
    )
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="also keep each --eval-every export as OUT.stepN.gguf",
    )
    ap.add_argument("--quant", choices=["f32", "f16", "q8_0"], default="f16")
    ap.add_argument(
        "--lora-rank",
        type=int,
        default=0,
        help="train LoRA adapters of this rank instead of the weights (a pretrained --init "
        "such as SmolLM2 needs it); --out is then the adapter GGUF",
    )
    ap.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default 2*rank)")
    ap.add_argument(
        "--lora-layers", type=int, default=None, help="adapt only the top N blocks (default all)"
    )
    ap.add_argument(
        "--value-weight",
        type=float,
        default=1.0,
        help="loss weight of answer tokens holding tool names and argument values (default 1)",
    )
    ap.add_argument(
        "--prompt-weight",
        type=float,
        default=0.05,
        help="loss weight of prompt tokens (default 0.05; 0 for a pretrained model)",
    )
    ap.add_argument(
        "--init-adapter",
        help="LoRA GGUF to continue training (with --lora-rank; its rank and alpha are kept)",
    )
    ap.add_argument(
        "--train-layers",
        type=int,
        default=None,
        help="train the weights of the top N blocks only (no LoRA)",
    )
    ap.add_argument(
        "--no-export",
        action="store_true",
        help="measure only: train and validate, write no model (to compare set-ups)",
    )
    ap.add_argument(
        "--resume", action="store_true", help="continue from OUT.ckpt.pt when it exists"
    )
    ap.add_argument(
        "--stop-after",
        type=float,
        default=None,
        help="save a checkpoint and stop after this many seconds; the schedule is not "
        "shortened (--resume continues it)",
    )
    ap.add_argument(
        "--stop-at-step",
        type=int,
        default=None,
        help="save and stop at this step, the schedule (--steps, --time-budget) not "
        "shortened: the model as it was at that step of a longer run",
    )
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=688)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--no-bf16", action="store_true", help="train in float32 (slower)")
    ap.add_argument(
        "--grad-checkpoint",
        action="store_true",
        help="keep only each block's input for the backward pass and compute the rest again "
        "(far less memory, about a third more compute)",
    )
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
        encode_workers=a.encode_workers,
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
        grad_checkpoint=a.grad_checkpoint,
        max_len=a.max_len,
        max_branches=a.max_branches,
        lora_rank=a.lora_rank,
        lora_alpha=a.lora_alpha,
        lora_layers=a.lora_layers,
        value_weight=a.value_weight,
        prompt_weight=a.prompt_weight,
        resume=a.resume,
        stop_after_s=a.stop_after,
        stop_at_step=a.stop_at_step,
        train_layers=a.train_layers,
        init_adapter=a.init_adapter,
        export=not a.no_export,
        warmup=a.warmup if a.warmup is not None else min(100, max(1, steps // 10)),
    )
    ta.log = lambda *x: print(*x, flush=True)
    if a.device != "cuda" and "jemalloc" not in os.environ.get("LD_PRELOAD", ""):
        print(ALLOCATOR_NOTE, file=sys.stderr)
    train(ta)
    return 0


# Measured on needle-smol's run (docs/models.md): under glibc's allocator the process held
# 16.7 GB at step 63 and was killed; with jemalloc and no decay it went from 10.3 GB to
# 16.5 GB over the next 255 steps and trained faster (about 780 against 640 tokens/s).
ALLOCATOR_NOTE = (
    "note: for long CPU runs, preload jemalloc (Debian: libjemalloc2): "
    "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 "
    "MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 (docs/models.md)"
)


def eval_main(argv: list[str] | None = None) -> int:
    from .evaluate import eval_cli

    return eval_cli(argv)
