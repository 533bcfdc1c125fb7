"""The model engine: one llama.cpp model instance, grammar-constrained greedy completion."""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

GGML_LOG_LEVEL_ERROR = 3
GGML_LOG_LEVEL_CONT = 5


@dataclass(frozen=True)
class DecodingSettings:
    """What decides the model's answer; part of a run's fingerprint."""

    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    max_calls: int = 4
    max_string_length: int = 128


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    reused_prefix_tokens: int
    finish_reason: str
    prompt_ms: float
    generation_ms: float


class ContextOverflowError(Exception):
    """The prompt does not fit the model's context with room for an answer."""


class Engine(Protocol):
    """What a worker needs from a model runtime."""

    model_name: str
    n_ctx: int
    metadata: dict[str, str]

    def tokenize(self, text: str) -> list[int]: ...

    def complete(
        self, tokens: Sequence[int], grammar: Any, settings: DecodingSettings
    ) -> Completion: ...

    def compile_grammar(self, gbnf: str) -> Any: ...


_log_callback_ref: Any = None


def install_llama_log_handler(verbose: bool) -> None:
    """Route llama.cpp's C logging: errors always to stderr, everything else only if verbose.

    The ctypes callback must stay referenced for the life of the process.
    """
    import llama_cpp

    global _log_callback_ref
    state = {"level": GGML_LOG_LEVEL_ERROR}

    @llama_cpp.llama_log_callback
    def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        if level != GGML_LOG_LEVEL_CONT:
            state["level"] = level
        if verbose or state["level"] == GGML_LOG_LEVEL_ERROR:
            sys.stderr.write(text.decode("utf-8", errors="replace"))
            sys.stderr.flush()

    _log_callback_ref = _on_log
    llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))


class LlamaEngine:
    """llama-cpp-python's ``Llama``; consecutive prompts reuse their common KV-cache prefix."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 0,
        n_threads: int = 1,
        n_batch: int = 512,
        verbose: bool = False,
    ) -> None:
        install_llama_log_handler(verbose)
        from llama_cpp import Llama

        started = time.perf_counter()
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=n_batch,
            n_ubatch=n_batch,
            verbose=verbose,
        )
        self.load_ms = (time.perf_counter() - started) * 1000
        self.metadata: dict[str, str] = dict(self._llm.metadata)
        self.model_name = self.metadata.get("general.name") or Path(model_path).stem
        self.n_ctx = self._llm.n_ctx()
        self._add_bos = self.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=False)

    def compile_grammar(self, gbnf: str) -> Any:
        from llama_cpp import LlamaGrammar

        return LlamaGrammar.from_string(gbnf, verbose=False)

    def cached_prefix_length(self, tokens: Sequence[int]) -> int:
        cached = self._llm.n_tokens
        reused = 0
        for old, new in zip(self._llm._input_ids[:cached], tokens, strict=False):
            if old != new:
                break
            reused += 1
        return min(reused, len(tokens) - 1)

    def complete(
        self, tokens: Sequence[int], grammar: Any, settings: DecodingSettings
    ) -> Completion:
        if len(tokens) + 8 > self.n_ctx:
            raise ContextOverflowError(
                f"prompt is {len(tokens)} tokens; the model's context holds {self.n_ctx}"
            )
        max_tokens = min(settings.max_tokens, self.n_ctx - len(tokens))
        reused = self.cached_prefix_length(tokens)
        llm = self._llm
        started = time.perf_counter()
        first_token_at: float | None = None
        generated: list[int] = []
        finish_reason = "length"
        import llama_cpp

        vocab = llm._model.vocab
        for token in llm.generate(
            list(tokens),
            temp=settings.temperature,
            top_k=0 if settings.temperature == 0 else 40,
            repeat_penalty=1.0,
            grammar=grammar,
            reset=True,
        ):
            if first_token_at is None:
                first_token_at = time.perf_counter()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish_reason = "stop"
                break
            generated.append(token)
            if len(generated) >= max_tokens:
                break
        finished = time.perf_counter()
        first_token_at = first_token_at or finished
        text = llm.detokenize(generated).decode("utf-8", errors="replace")
        return Completion(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=len(generated),
            reused_prefix_tokens=reused,
            finish_reason=finish_reason,
            prompt_ms=(first_token_at - started) * 1000,
            generation_ms=(finished - first_token_at) * 1000,
        )
