"""GGUF export / import of :class:`training.model.LlamaLM` plus its tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .model import Config, LlamaLM
from .tokenizer import Tok, add_to_gguf, from_gguf_reader

ARCH = "llama"
# a block's projections: our module names -> llama.cpp tensor names
PROJECTIONS = {
    "wq": "attn_q",
    "wk": "attn_k",
    "wv": "attn_v",
    "wo": "attn_output",
    "w_gate": "ffn_gate",
    "w_up": "ffn_up",
    "w_down": "ffn_down",
}


def _tensor_map(model: LlamaLM) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("token_embd.weight", model.tok_emb.weight)]
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", b.attn_norm.weight),
            (p + "attn_q.weight", b.wq.weight),
            (p + "attn_k.weight", b.wk.weight),
            (p + "attn_v.weight", b.wv.weight),
            (p + "attn_output.weight", b.wo.weight),
            (p + "ffn_norm.weight", b.ffn_norm.weight),
            (p + "ffn_gate.weight", b.w_gate.weight),
            (p + "ffn_up.weight", b.w_up.weight),
            (p + "ffn_down.weight", b.w_down.weight),
        ]
    out += [("output_norm.weight", model.norm.weight), ("output.weight", model.out.weight)]
    return out


def export_gguf(
    model: LlamaLM,
    tok: Tok,
    path: str | Path,
    qtype: str = "f16",
    name: str = "needle-tools",
    extra: dict | None = None,
) -> Path:
    """Write ``model`` + ``tok`` to ``path``.  ``qtype``: f32, f16 or q8_0 (2-D weights only;
    norms stay f32)."""
    import gguf

    c = model.c
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), ARCH)
    w.add_name(name)
    w.add_context_length(c.max_seq_len)
    w.add_embedding_length(c.dim)
    w.add_block_count(c.n_layers)
    w.add_feed_forward_length(c.ffn_dim)
    w.add_head_count(c.n_heads)
    w.add_head_count_kv(c.n_kv_heads)
    w.add_layer_norm_rms_eps(c.norm_eps)
    w.add_rope_dimension_count(c.head_dim)
    w.add_rope_freq_base(c.rope_theta)
    w.add_vocab_size(c.vocab_size)
    ftype = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[qtype]
    w.add_file_type(ftype)
    w.add_string("needle.training_config", json.dumps({**c.to_dict(), **(extra or {})}))
    add_to_gguf(w, tok)
    for tname, t in _tensor_map(model):
        a = t.detach().float().cpu().numpy()
        if a.ndim == 1 or qtype == "f32":
            w.add_tensor(tname, a.astype(np.float32))
        elif qtype == "f16":
            w.add_tensor(tname, a.astype(np.float16))
        else:
            q = gguf.quants.quantize(a.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(tname, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _field(reader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    if f.types and f.types[0] == 8:  # STRING
        return bytes(v).decode("utf-8")
    return v.tolist()[0] if hasattr(v, "tolist") else v


def load_gguf(path: str | Path, with_tokenizer: bool = True) -> tuple[LlamaLM, Tok | None]:
    """Load a GGUF written by :func:`export_gguf` (or any tied/untied llama GGUF of the same
    layout without q/k permutation) back into PyTorch; the tokenizer too when it is one of
    ours (``with_tokenizer``)."""
    import gguf
    import torch

    r = gguf.GGUFReader(str(path))
    arch = _field(r, "general.architecture")
    if arch != ARCH:
        raise ValueError(f"{path}: architecture {arch!r}, expected {ARCH!r}")
    tensors = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            a = np.asarray(t.data, dtype=np.float32).reshape(shape)
        else:
            a = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
        tensors[t.name] = torch.from_numpy(np.array(a, dtype=np.float32, copy=True))
    n_layers = int(_field(r, f"{ARCH}.block_count"))
    emb = tensors["token_embd.weight"]
    c = Config(
        vocab_size=emb.shape[0],
        dim=emb.shape[1],
        n_layers=n_layers,
        n_heads=int(_field(r, f"{ARCH}.attention.head_count")),
        n_kv_heads=int(_field(r, f"{ARCH}.attention.head_count_kv")),
        ffn_dim=int(_field(r, f"{ARCH}.feed_forward_length")),
        max_seq_len=int(_field(r, f"{ARCH}.context_length")),
        rope_theta=float(_field(r, f"{ARCH}.rope.freq_base", 10000.0)),
        norm_eps=float(_field(r, f"{ARCH}.attention.layer_norm_rms_epsilon", 1e-5)),
    )
    model = LlamaLM(c)
    sd = {"tok_emb.weight": emb, "norm.weight": tensors["output_norm.weight"]}
    for i in range(n_layers):
        p = f"blk.{i}."
        for ours, theirs in [
            ("attn_norm", "attn_norm"),
            ("ffn_norm", "ffn_norm"),
            *PROJECTIONS.items(),
        ]:
            sd[f"blocks.{i}.{ours}.weight"] = tensors[p + theirs + ".weight"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if m != "out.weight"]
    if missing or unexpected:
        raise ValueError(
            f"GGUF tensors do not match the model: missing={missing} unexpected={unexpected}"
        )
    return model, from_gguf_reader(r) if with_tokenizer else None
