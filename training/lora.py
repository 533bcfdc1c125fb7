"""Low-rank adapters (LoRA) on the top layers of a :class:`training.model.LlamaLM`.

Only the adapters train: the base weights stay frozen, and the layers below the adapted ones
build no autograd graph at all (nothing there needs a gradient), so a step costs a forward
pass through the whole model and a backward pass through the adapted layers only.

The adapter is written as llama.cpp's LoRA GGUF (``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha``; ``<tensor>.lora_a`` of shape (r, in) and
``<tensor>.lora_b`` of shape (out, r)), so llama.cpp can apply it at load time as well as
:mod:`pipeline.modelbuild` merging it into the base.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .export import PROJECTIONS as TARGETS
from .model import LlamaLM


class LoRALinear(nn.Module):
    """``base(x) + scale * (x @ A^T) @ B^T``; ``B`` starts at zero, so the adapted model
    starts as the base model."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.rank = rank
        self.alpha = alpha
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def add_lora(model: LlamaLM, rank: int, alpha: float, layers: int) -> list[str]:
    """Freeze ``model`` and put adapters on every projection of its top ``layers`` blocks;
    returns the GGUF names of the adapted tensors."""
    for p in model.parameters():
        p.requires_grad_(False)
    n = model.c.n_layers
    names = []
    for i in range(max(0, n - layers), n):
        block = model.blocks[i]
        for ours, theirs in TARGETS.items():
            setattr(block, ours, LoRALinear(getattr(block, ours), rank, alpha))
            names.append(f"blk.{i}.{theirs}.weight")
    return names


def freeze_in_bf16(model: LlamaLM) -> None:
    """Keep the frozen projection weights of the blocks in bfloat16: under bf16 autocast they
    are then not cast again at every step (the tied embedding stays float32: it feeds the
    residual stream)."""
    for block in model.blocks:
        for module in block.modules():
            if isinstance(module, nn.Linear) and not module.weight.requires_grad:
                module.weight.data = module.weight.data.to(torch.bfloat16)


def adapters(model: LlamaLM) -> dict[str, LoRALinear]:
    """GGUF tensor name -> its adapter."""
    out = {}
    for i, block in enumerate(model.blocks):
        for ours, theirs in TARGETS.items():
            m = getattr(block, ours)
            if isinstance(m, LoRALinear):
                out[f"blk.{i}.{theirs}.weight"] = m
    return out


def save_adapter(model: LlamaLM, path: str | Path, name: str, extra: dict | None = None) -> Path:
    """Write the adapters as a llama.cpp LoRA GGUF (F16 tensors)."""
    found = adapters(model)
    if not found:
        raise ValueError("the model has no LoRA adapters")
    factors = {
        tname: (m.lora_a.detach().float().cpu().numpy(), m.lora_b.detach().float().cpu().numpy())
        for tname, m in found.items()
    }
    return write_adapter(path, factors, next(iter(found.values())).alpha, name, extra)


def write_adapter(
    path: str | Path,
    factors: dict[str, tuple[np.ndarray, np.ndarray]],
    alpha: float,
    name: str,
    extra: dict | None = None,
) -> Path:
    """Write ``{base tensor name: (A (r, in), B (out, r))}`` as a llama.cpp LoRA GGUF (F16
    tensors; ``extra`` as ``needle.KEY`` strings), atomically."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    w.add_name(name)
    for key, value in (extra or {}).items():
        w.add_string(f"needle.{key}", str(value))
    for tname, (a, b) in factors.items():
        w.add_tensor(tname + ".lora_a", a.astype(np.float16))
        w.add_tensor(tname + ".lora_b", b.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path


def load_adapter_into(model: LlamaLM, path: str | Path) -> None:
    """Put the adapters of a LoRA GGUF (as :func:`save_adapter` writes) onto ``model``,
    adding them where missing (rank and alpha from the file)."""
    from pipeline.modelbuild import read_lora

    factors, alpha = read_lora(path)
    by_block: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for base, (a, b) in factors.items():
        _, i, theirs, _ = base.split(".")
        pair = (np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32))
        by_block.setdefault(int(i), {})[theirs] = pair
    inverse = {v: k for k, v in TARGETS.items()}
    for i, mats in by_block.items():
        block = model.blocks[i]
        for theirs, (a, b) in mats.items():
            ours = inverse[theirs]
            m = getattr(block, ours)
            if isinstance(m, LoRALinear) and (m.rank, m.alpha) != (a.shape[0], alpha):
                m = m.base
            if not isinstance(m, LoRALinear):
                m = LoRALinear(m, a.shape[0], alpha)
                setattr(block, ours, m)
            with torch.no_grad():
                m.lora_a.copy_(torch.from_numpy(a))
                m.lora_b.copy_(torch.from_numpy(b))
