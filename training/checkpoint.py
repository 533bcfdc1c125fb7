"""Where a fine-tuning run starts and how it resumes.

* :func:`load_init` -- a GGUF to start from: one of ours (its own BPE tokenizer) or a
  pretrained llama GGUF such as SmolLM2 (llama.cpp's tokenizer, :mod:`training.pretrained`).
* :func:`save_checkpoint` / :func:`load_checkpoint` -- the trainable weights, the optimizer
  state and the step, in ``OUT.ckpt.pt`` beside the output: with LoRA a few tens of MB, so a
  run stopped by the end of a session goes on with ``--resume``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .export import load_gguf
from .model import LlamaLM
from .pretrained import load_pretrained


def is_needle_gguf(path: str | Path) -> bool:
    """True for a GGUF this project's trainer wrote (it carries ``needle.training_config``)."""
    import gguf

    return "needle.training_config" in gguf.GGUFReader(str(path)).fields


def load_init(path: str | Path) -> tuple[LlamaLM, Any]:
    if is_needle_gguf(path):
        return load_gguf(path)
    return load_pretrained(path)


def checkpoint_path(out: str | Path) -> Path:
    return Path(str(out) + ".ckpt.pt")


def save_checkpoint(
    path: Path, model: LlamaLM, opt: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"params": trainable, "optimizer": opt.state_dict(), **state}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, model: LlamaLM, opt: torch.optim.Optimizer) -> dict[str, Any]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in saved["params"]]
    if missing:
        raise ValueError(f"{path}: the checkpoint does not hold {missing[:3]}...")
    with torch.no_grad():
        for name, value in saved["params"].items():
            params[name].copy_(value)
    opt.load_state_dict(saved["optimizer"])
    return {k: v for k, v in saved.items() if k not in ("params", "optimizer")}
