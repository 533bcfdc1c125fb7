"""A short check for the first ``run`` call on a lent GPU (docs/models.md, "On a lent GPU").

It answers, in well under a minute, the two things the long third call depends on:
- the speed of a LoRA training step of a SmolLM2-135M-shaped model (random weights; the real
  base only arrives with the last call) on packed 16,384-token batches, so that the stage's
  time budget and data size can be judged;
- that ``training train`` runs end to end on CUDA: data made there, our own tiny model
  (``workers/models/needle-tools.gguf``) as ``--init`` with LoRA, evaluation, exports and
  checkpoints, written to ``--work``.

``python -m training.device_smoke --work /tmp/needle-smoke``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from .lora import add_lora, freeze_in_bf16
from .model import Config, LlamaLM
from .reproduce import REPO as ROOT
from .train import attention_mask, loss_fn

# SmolLM2-135M's shape, as its GGUF states it
SMOLLM2 = Config(
    vocab_size=49152,
    dim=576,
    n_layers=30,
    n_heads=9,
    n_kv_heads=3,
    ffn_dim=1536,
    max_seq_len=2048,
    rope_theta=100000.0,
)


def packed_batch(rows: int, length: int, device: torch.device) -> tuple:
    """A batch shaped like ``collate``'s (a full (B,1,T,T) mask, loss on half the positions);
    each row one causal sequence, as segment ids of 0 make it."""
    ids = torch.randint(0, SMOLLM2.vocab_size, (rows, length), device=device)
    pos = torch.arange(length, device=device).repeat(rows, 1)
    weights = torch.zeros(rows, length, device=device)
    weights[:, length // 2 :] = 1.0
    seg = torch.zeros(rows, length, dtype=torch.long, device=device)
    return ids, pos, attention_mask(seg), ids.roll(-1, 1), weights, seg


def step_speed(device: torch.device, steps: int, rank: int, layers: int) -> float:
    model = LlamaLM(SMOLLM2)
    add_lora(model, rank, 2.0 * rank, layers)
    freeze_in_bf16(model)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    batch = packed_batch(16, 1024, device)
    for i in range(steps + 3):
        if i == 3:  # the first steps pay for kernel choice and allocation
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss, *_ = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.device_smoke", description=__doc__)
    ap.add_argument("--work", type=Path, required=True, help="folder for the short train run")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--speed-steps", type=int, default=10, help="timed steps (0: no probe)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    print(f"torch {torch.__version__}, device {device}", flush=True)
    if device.type == "cuda":
        print(f"  {torch.cuda.get_device_name(device)}", flush=True)
    if a.speed_steps > 0:  # 0 skips it (about a minute a step on 2 CPU cores)
        per_step = step_speed(device, a.speed_steps, rank=32, layers=30)
        print(
            f"SmolLM2-shaped LoRA r32 x 30 layers: {per_step * 1000:.0f} ms per 16,384-token "
            f"step ({16384 / per_step:,.0f} tokens/s)",
            flush=True,
        )
    a.work.mkdir(parents=True, exist_ok=True)
    data = a.work / "smoke.jsonl"
    run = [sys.executable, "-m", "training"]
    subprocess.run(
        [*run[:2], "training.schemas", str(data), "--n", "400", "--seed", "5"],
        check=True,
        cwd=ROOT,
    )
    started = time.perf_counter()
    subprocess.run(
        [
            *run,
            "train",
            str(data),
            "--out",
            str(a.work / "smoke.gguf"),
            "--init",
            str(ROOT / "workers/models/needle-tools.gguf"),
            "--lora-rank",
            "4",
            "--lora-layers",
            "2",
            "--steps",
            "40",
            "--eval-every",
            "20",
            "--keep-checkpoints",
            "--batch-tokens",
            "4096",
            "--device",
            a.device,
        ],
        check=True,
        cwd=ROOT,
    )
    print(f"train on {device}: {time.perf_counter() - started:.1f}s", flush=True)
    for path in sorted(a.work.iterdir()):
        print(f"  {path.name} {path.stat().st_size}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
