"""A GGUF's byte-level BPE vocabulary as an HF ``tokenizers`` tokenizer, for machines
without llama.cpp.

Training tokenises with llama.cpp itself (:class:`training.pretrained.LlamaCppTok`), so the
ids the model learns on are the ids it is served. A machine lent for training (the H200 of
docs/models.md) has PyTorch and ``tokenizers`` but no llama-cpp-python, so there the same
vocabulary is rebuilt from the GGUF's metadata (``tokenizer.ggml.tokens`` and ``merges``)
with the pre-tokeniser its ``tokenizer.ggml.pre`` names. Only the pre-tokenisers written
out below are known; any other is an error, never a guess. ``tests/test_gguf_tokenizer.py``
checks the ids against llama.cpp's on the training data's kinds of text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# llama.cpp's pre-tokeniser types (llama-vocab.cpp), as tokenizers' pre-tokenisers: "smollm"
# splits every digit alone, then applies GPT-2's regex (SmolLM2's own tokenizer.json does
# the same with Digits(individual_digits) and ByteLevel).
KNOWN_PRE_TOKENIZERS = ("smollm", "gpt2")
CONTROL_TOKEN = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL


class UnknownTokenizerError(ValueError):
    """The GGUF's vocabulary is not one this module can rebuild exactly."""


def _metadata(path: str | Path) -> dict[str, Any]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {
        key: field.contents()
        for key, field in reader.fields.items()
        if key.startswith("tokenizer.ggml.")
    }


def _pre_tokenizer(name: str) -> Any:
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if name == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if name == "gpt2":
        return byte_level
    raise UnknownTokenizerError(
        f"pre-tokeniser {name!r} is not one of {KNOWN_PRE_TOKENIZERS}: tokenise with "
        "llama-cpp-python instead"
    )


class TokenizersTok:
    """The :class:`training.pretrained.LlamaCppTok` surface over HF ``tokenizers``."""

    def __init__(self, gguf_path: str | Path):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        meta = _metadata(gguf_path)
        if meta.get("tokenizer.ggml.model") != "gpt2":
            raise UnknownTokenizerError(
                f"tokenizer model {meta.get('tokenizer.ggml.model')!r} is not byte-level BPE"
            )
        tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
        merges = [tuple(merge.split(" ", 1)) for merge in meta["tokenizer.ggml.merges"]]
        vocab = {token: index for index, token in enumerate(tokens)}
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
        tokenizer.pre_tokenizer = _pre_tokenizer(str(meta.get("tokenizer.ggml.pre", "gpt2")))
        tokenizer.decoder = decoders.ByteLevel()
        self._tokenizer = tokenizer
        self.add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", True))
        self.bos_id = int(meta["tokenizer.ggml.bos_token_id"])
        self.eos_id = int(meta["tokenizer.ggml.eos_token_id"])
        pad = meta.get("tokenizer.ggml.padding_token_id")
        self.pad_id = int(pad) if pad is not None and int(pad) >= 0 else self.eos_id
        self.vocab_size = len(tokens)
        # Each token's bytes: the byte-level alphabet maps one character to one byte; a
        # control token (type 3) detokenises to nothing, as llama.cpp's does unasked.
        alphabet = set(pre_tokenizers.ByteLevel.alphabet())
        types = list(meta.get("tokenizer.ggml.token_type") or [1] * len(tokens))
        self._piece_bytes = [
            0
            if kind == CONTROL_TOKEN
            else sum(1 if char in alphabet else len(char.encode("utf-8")) for char in token)
            for token, kind in zip(tokens, types, strict=True)
        ]

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        encoded = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [item.ids for item in encoded]

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=False)

    def piece_lengths(self, ids: list[int]) -> list[int]:
        """Bytes each token contributes to the detokenised text (for mapping text spans)."""
        return [self._piece_bytes[token] for token in ids]
