"""A small Llama-architecture decoder (RMSNorm, SwiGLU, rotary attention) in PyTorch.

Rotary embeddings use llama.cpp's NORMAL rope for the ``llama`` architecture: adjacent pairs
``(x[2i], x[2i+1])`` are rotated by ``pos * base**(-2i/head_dim)``, so the weights export to
GGUF without any permutation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass
class Config:
    vocab_size: int = 4096
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 8
    n_kv_heads: int = 8
    ffn_dim: int = 688
    max_seq_len: int = 1024
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(max_len, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, H, T, D); cos/sin: (T, D/2) or (B, 1, T, D/2).
    # Rotate adjacent pairs (llama.cpp NORMAL rope).
    xs = x.unflatten(-1, (-1, 2))
    x0, x1 = xs[..., 0], xs[..., 1]
    o0 = x0 * cos - x1 * sin
    o1 = x0 * sin + x1 * cos
    return torch.stack((o0, o1), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        hd = c.head_dim
        self.attn_norm = RMSNorm(c.dim, c.norm_eps)
        self.wq = nn.Linear(c.dim, c.n_heads * hd, bias=False)
        self.wk = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(c.n_heads * hd, c.dim, bias=False)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.w_gate = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.w_up = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.w_down = nn.Linear(c.ffn_dim, c.dim, bias=False)

    def forward(self, x, cos, sin, mask=None):
        c = self.c
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.wk(h).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.wv(h).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if c.n_kv_heads != c.n_heads:
            rep = c.n_heads // c.n_kv_heads
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if mask is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, -1))
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class LlamaLM(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        # True: keep only each block's input for the backward pass and compute the rest
        # again there (--grad-checkpoint: a fraction of the activation memory, about a third
        # more compute)
        self.recompute_blocks = False
        self.tok_emb = nn.Embedding(c.vocab_size, c.dim)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.out = nn.Linear(c.dim, c.vocab_size, bias=False)
        self.out.weight = self.tok_emb.weight  # tied; exported as both token_embd and output
        cos, sin = rope_tables(c.head_dim, c.max_seq_len, c.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)
        for b in self.blocks:  # scaled init of residual projections
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * c.n_layers))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(
        self, ids: torch.Tensor, pos: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``ids`` (B, T).  Optional ``pos`` (B, T) rope positions and boolean ``mask``
        (B, 1, T, T) of allowed attention (True = may attend); default: plain causal."""
        return self.out(self.features(ids, pos, mask))

    def features(
        self, ids: torch.Tensor, pos: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The final normed hidden states (B, T, dim): the logits are ``self.out`` of them,
        and a loss needs them only where it has weight (49k-token vocabularies make the
        output layer the largest single cost)."""
        T = ids.shape[1]
        x = self.tok_emb(ids)
        if pos is None:
            cos, sin = self.cos[:T], self.sin[:T]
        else:
            cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]
        recompute = self.recompute_blocks and torch.is_grad_enabled()
        for b in self.blocks:
            if recompute:
                x = checkpoint(b, x, cos, sin, mask, use_reentrant=False)
            else:
                x = b(x, cos, sin, mask)
        return self.norm(x)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
