"""Byte-level BPE tokenizer (HF ``tokenizers``) that llama.cpp reproduces exactly.

The tokenizer uses GPT-2's byte-level pre-tokenisation (same regex as llama.cpp's ``gpt-2``
pre-tokenizer), no normaliser and no prefix space.  It is written into the GGUF as
``tokenizer.ggml.model = "gpt2"`` / ``tokenizer.ggml.pre = "gpt-2"`` with tokens, token types
and merges, and ``add_bos_token = True`` so that ``llm.tokenize(text.encode(), add_bos=True,
special=False)`` gives ``[BOS] + encode(text)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
SPECIALS = [BOS, EOS, PAD]

TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError("training needs `pip install tokenizers`") from e
    return tokenizers


class Tok:
    """Thin wrapper: ``encode(text) -> ids`` (no BOS), ``decode``, special ids."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        # special-token strings in text are plain text, as in llama.cpp with special=False
        self.hf.encode_special_tokens = True
        self.bos_id = hf_tokenizer.token_to_id(BOS)
        self.eos_id = hf_tokenizer.token_to_id(EOS)
        self.pad_id = hf_tokenizer.token_to_id(PAD)
        self.vocab_size = hf_tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)

    # -- serialisation -------------------------------------------------------------------
    def tokens(self) -> list[str]:
        vocab = self.hf.get_vocab()
        inv = [None] * len(vocab)
        for t, i in vocab.items():
            inv[i] = t
        assert all(t is not None for t in inv), "vocab ids are not contiguous"
        assert len(set(inv)) == len(inv), "duplicate token strings"
        return inv  # type: ignore[return-value]

    def merges(self) -> list[str]:
        model = json.loads(self.hf.to_str())["model"]
        out = []
        for m in model["merges"]:
            out.append(m if isinstance(m, str) else " ".join(m))
        return out

    def token_types(self) -> list[int]:
        return [TOKEN_TYPE_CONTROL if t in SPECIALS else TOKEN_TYPE_NORMAL for t in self.tokens()]

    def to_str(self) -> str:
        return self.hf.to_str()

    @classmethod
    def from_str(cls, s: str) -> Tok:
        tk = _import_tokenizers()
        return cls(tk.Tokenizer.from_str(s))

    @classmethod
    def from_vocab_merges(cls, tokens: list[str], merges: list[str]) -> Tok:
        """Rebuild from GGUF ``tokenizer.ggml.tokens`` / ``tokenizer.ggml.merges``."""
        tk = _import_tokenizers()
        vocab = {t: i for i, t in enumerate(tokens)}
        pairs = [tuple(m.split(" ", 1)) for m in merges]
        model = tk.models.BPE(vocab=vocab, merges=pairs)
        return cls(_finish(tk, tk.Tokenizer(model)))


def _finish(tk, tok):
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = tk.decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> Tok:
    tk = _import_tokenizers()
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIALS,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return Tok(tok)


def add_to_gguf(writer, tok: Tok) -> None:
    """Write the tokenizer metadata into a ``gguf.GGUFWriter``."""
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tok.tokens())
    writer.add_token_types(tok.token_types())
    writer.add_token_merges(tok.merges())
    writer.add_bos_token_id(tok.bos_id)
    writer.add_eos_token_id(tok.eos_id)
    writer.add_pad_token_id(tok.pad_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def from_gguf_reader(reader) -> Tok:
    """Rebuild the tokenizer from a ``gguf.GGUFReader``."""

    def strings(key: str) -> list[str]:
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    return Tok.from_vocab_merges(strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges"))
