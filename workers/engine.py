"""The model engine: one llama.cpp model instance, grammar-constrained greedy completion.

The grammar is llguidance's (:mod:`workers.grammar`); llama.cpp only runs the model.
"""

from __future__ import annotations

import ctypes
import sys
import time
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workers.generation import AnswerState, Vocabulary, answer_tokens
from workers.grammar import AnswerGrammar, tokenizer_for
from workers.llama_load import load_llama

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
    # Answer no call when the model gives it at least this probability (None: the model's
    # own threshold from its metadata, NONE_THRESHOLD_KEY; without one, its likeliest token).
    none_threshold: float | None = None
    # Put a string taken from the request in the form its parameter asks (workers/reformat.py):
    # "(415) 555-0134" -> "+14155550134" for an E.164 phone, "44:45" -> "00:44:45".
    reformat_strings: bool = True
    # Convert a number copied in the request's unit to the unit its parameter names
    # (workers/units.py): "frequency_hz": 2.4 for "2.4 GHz" becomes 2400000000.
    convert_units: bool = True
    # Fill in an optional integer the model left out where the request gives it beside the
    # parameter's name (workers/numberfill.py): "(cups 19)" -> "cups": 19.
    fill_numbers: bool = True
    # Fill in an optional enum argument the model left out where the request names one of
    # its values (workers/enumfill.py): "preliminary test results" -> "status": "preliminary".
    fill_enums: bool = True
    # Set an optional boolean argument the model left out to true where the request names
    # the flag (workers/flagfill.py): "shuffle my Focus playlist" -> "shuffle": true.
    fill_flags: bool = True
    # Fill in the one date, time or date-and-time parameter an answer left out where the
    # request writes one (workers/datefill.py): "arrive by 9am" -> "arrive_by": "09:00".
    fill_dates: bool = True
    # Fill in an optional ISO-code argument the model left out where the request names the
    # one language, country or currency (workers/codefill.py): "230 euros" -> "currency": "EUR".
    fill_codes: bool = True


# The repairs of a valid answer (workers/repairs.py), in the order they run: the
# DecodingSettings field that turns each on, and the output list its changes go to.
REPAIRS: dict[str, str] = {
    "reformat_strings": "reformatted",
    "fill_numbers": "filled",
    "convert_units": "converted",
    "fill_enums": "filled",
    "fill_flags": "filled",
    "fill_dates": "filled",
    "fill_codes": "filled",
}


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    reused_prefix_tokens: int
    finish_reason: str
    prompt_ms: float
    generation_ms: float
    token_ids: list[int] = field(default_factory=list)
    forced_tokens: int = 0  # tokens the grammar forced, decoded in batches (fast-forward)
    decode_calls: int = 0  # llama_decode calls for the answer (the prompt not counted)
    grammar_ms: float = 0.0  # time in the grammar: token checks, masks, forced tokens
    # (index in token_ids, log-probability) of each token the model chose (not forced)
    logprobs: list[tuple[int, float]] = field(default_factory=list)
    none_probability: float | None = None  # the model's, where it weighed none against a call


class ContextOverflowError(Exception):
    """The prompt does not fit the model's context with room for an answer."""


ANSWER_ROOM_TOKENS = 8


NONE_THRESHOLD_KEY = "needle.answer.none_threshold"


def none_threshold_of(metadata: dict[str, str]) -> float | None:
    """The model's own no-call threshold (chosen on a validation split), if it has one."""
    try:
        value = float(metadata.get(NONE_THRESHOLD_KEY, ""))
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def check_context(prompt_tokens: int, n_ctx: int) -> None:
    """Raise :class:`ContextOverflowError` unless the prompt leaves room for an answer."""
    if prompt_tokens + ANSWER_ROOM_TOKENS > n_ctx:
        raise ContextOverflowError(
            f"prompt is {prompt_tokens} tokens; the model's context holds {n_ctx} "
            "(--n-ctx sets a larger one)"
        )


class Engine(Protocol):
    """What a worker needs from a model runtime."""

    model_name: str
    n_ctx: int
    metadata: dict[str, str]

    def tokenize(self, text: str) -> list[int]: ...

    def complete(
        self, tokens: Sequence[int], grammar: Any, settings: DecodingSettings
    ) -> Completion: ...

    def compile_grammar(self, schema: dict[str, Any]) -> Any:
        """Compile an answer JSON Schema; raises :class:`workers.grammar.GrammarError`."""
        ...


_log_callback_ref: Any = None

# The KV state of the last few prompts that brought new tools is kept in memory, so a
# request whose tools were seen a few requests ago loads them instead of decoding them.
SAVED_PROMPTS = 8
# At most this much memory for them: needle-smol's KV is 23 KB a token, so a 700-token
# tool list takes 16 MB (a 16 MB budget kept none, and the sample requests, whose main
# tool list comes back after each other one, ran at half the speed). 48 MB rather than 64
# keeps a worker under 400 MB and decodes as many prompt tokens on the sample requests
# (docs/performance.md, "A worker's memory").
SAVED_PROMPT_BYTES = 48 << 20
# Prompt tokens per llama_decode call (n_batch = n_ubatch). llama.cpp sizes the compute
# buffer for a full batch with every token's logits; 256 instead of 512 gives the same
# logits to the last bit, processes prompts as fast (needle-smol: 619 against 593 tokens/s)
# and keeps 24 MB less resident after a 1,500-token prompt (docs/performance.md).
N_BATCH = 256
SAVE_MIN_NEW_TOKENS = 64  # save a prompt when at least this much of it was decoded
RESTORE_MIN_GAIN_TOKENS = 32  # load a saved state when it saves this much decoding
MIN_DECODED_PROMPT_TOKENS = 2


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if list(a[:n]) == list(b[:n]):
        return n
    return next((i for i in range(n) if a[i] != b[i]), n)


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
    """One llama.cpp model and context, decoded with a tight low-level loop.

    Greedy decoding under an llguidance grammar that gives exactly the tokens of
    llama-cpp-python's ``generate(..., temp=0)`` with the grammar's full token mask applied
    to every step's logits, faster:

    - the tokenizer bridge is built once, each tool set's grammar compiled once
      (:class:`workers.grammar.AnswerGrammar`) and its matcher copied per request;
    - only the highest-logit token is checked against the grammar; the full mask is computed
      only when that token is rejected. Greedy picks the first maximum among allowed tokens,
      so when the overall first maximum is allowed it is the answer, and otherwise the mask
      decides: same token either way;
    - fast-forward: where the grammar allows exactly one continuation (keys, punctuation, the
      rest of a tool name once it is unique), llguidance's forced tokens are taken without
      asking the model and decoded together with the sampled token before them in one
      ``llama_decode`` call. Step by step, the mask would allow only that token at each of
      those steps, so the tokens are the same; ``fast_forward=False`` decodes one token per
      call (for the test that shows it, and for the benchmark);
    - consecutive prompts reuse their common KV-cache prefix (the tools come first), and
      the KV state of the last few prompts that brought new tools is kept
      (``llama_state_seq_get_data``), so a tool set seen a few requests ago is loaded back
      into the emptied cache (same cells, same order as decoding it) instead of decoded;
    - flash attention is off unless asked for (``flash_attn``). llama.cpp's fused kernel
      processes needle-smol's prompts about 1.2x faster here (590 against 480 tokens/s on 2
      threads; llama-bench and llama-server turn it on by default), but it moves logits by
      up to about 1 (as an F32 instead of F16 KV cache does): 16 of 300 ``valid_unseen``
      answers changed, 11 for the worse, and needle-smol's no-call threshold was chosen
      without it.

    ``tests/test_decoding.py`` checks the tokens against llama-cpp-python's own API.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 0,
        n_threads: int = 1,
        n_batch: int = N_BATCH,
        verbose: bool = False,
        saved_prompts: int = SAVED_PROMPTS,
        saved_bytes: int = SAVED_PROMPT_BYTES,
        fast_forward: bool = True,
        flash_attn: bool = False,
    ) -> None:
        install_llama_log_handler(verbose)
        import llama_cpp
        import numpy as np

        started = time.perf_counter()
        self._llm = load_llama(
            str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=n_batch,
            n_ubatch=n_batch,
            flash_attn=flash_attn,
            verbose=verbose,
        )
        self.metadata: dict[str, str] = dict(self._llm.metadata)
        self.model_name = self.metadata.get("general.name") or Path(model_path).stem
        self.n_ctx = self._llm.n_ctx()
        self._ctx = self._llm._ctx.ctx
        self._add_bos = self.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"
        self._lib = llama_cpp
        self._np = np
        self._vocab = self._llm._model.vocab
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._saved_prompts = saved_prompts
        self._saved_bytes = saved_bytes
        # KV state of recent prompts (tokens -> bytes), least recently used first.
        self._saved: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._n_batch = self._llm.n_batch  # Llama caps it at the context size
        self.saved_prefix_hits = 0  # prompts that started from a saved prefix (benchmark)
        self._eog = np.array(
            [bool(llama_cpp.llama_vocab_is_eog(self._vocab, t)) for t in range(self._n_vocab)]
        )
        self._kv_tokens: list[int] = []  # what the KV cache of sequence 0 holds
        self.fast_forward = fast_forward
        eog_ids = [int(t) for t in np.flatnonzero(self._eog)]
        self._tokenizer = tokenizer_for(self._vocab, eog_ids)
        pieces = [self._llm.detokenize([t], special=True) for t in range(self._n_vocab)]
        self._pieces = pieces
        self._vocabulary = Vocabulary(
            eog=self._eog,
            structural=[any(c in piece for c in b'"{}[],:') for piece in pieces],
            opens_string=[piece.endswith(b'"') for piece in pieces],
            n_vocab=self._n_vocab,
            closes_list=np.array([piece.lstrip().startswith(b"]") for piece in pieces]),
        )
        self.none_threshold = none_threshold_of(self.metadata)
        self.load_ms = (time.perf_counter() - started) * 1000  # model and tokenizer bridge
        self.full_checks = 0  # how often the sampled token was rejected (for the benchmark)

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=False)

    def compile_grammar(self, schema: dict[str, Any]) -> AnswerGrammar:
        return AnswerGrammar(self._tokenizer, schema)

    def token_bytes(self, token_ids: Sequence[int]) -> list[bytes]:
        """Each token's text, in bytes (their concatenation is the answer's text)."""
        return [self._pieces[t] for t in token_ids]

    def cached_prefix_length(self, tokens: Sequence[int]) -> int:
        """Prompt tokens that need no decoding: the longest prefix held or saved."""
        return self._best_prefix(tokens)[0]

    def _best_prefix(self, tokens: Sequence[int]) -> tuple[int, tuple[int, ...] | None]:
        """(tokens reusable, the saved prompt to load first or None for the live cache)."""
        # At least two prompt tokens are always decoded: llama.cpp computes a one-token
        # batch with other kernels (other rounding) than a longer one, and with two or more
        # the logits are those of decoding the whole prompt afresh, whatever came before.
        limit = len(tokens) - MIN_DECODED_PROMPT_TOKENS
        reused = min(_common_prefix(self._kv_tokens, tokens), limit)
        source = None
        for saved in self._saved:
            common = min(_common_prefix(saved, tokens), limit)
            if common > reused + RESTORE_MIN_GAIN_TOKENS:
                reused, source = common, saved
        return max(0, reused), source

    def _restore_prefix(self, tokens: Sequence[int]) -> int:
        """Make the KV cache hold the longest known prefix of ``tokens``; returns its length.

        A saved prompt state is loaded into the emptied cache, so its cells sit at the same
        places, in the same order, as if that prompt had just been decoded.
        """
        lib = self._lib
        reused, source = self._best_prefix(tokens)
        if source is not None:
            state = self._saved[source]
            lib.llama_memory_clear(self._memory, True)
            if lib.llama_state_seq_set_data(self._ctx, state, len(state), 0) == 0:
                del self._saved[source]  # could not be loaded: decode the prompt instead
                self._kv_tokens = []
                lib.llama_memory_clear(self._memory, True)
                return 0
            self._kv_tokens = list(source)
            self._saved.move_to_end(source)
            self.saved_prefix_hits += 1
        del self._kv_tokens[reused:]
        lib.llama_memory_seq_rm(self._memory, 0, reused, -1)
        return reused

    @property
    def saved_prompt_bytes(self) -> int:
        """Memory held by the saved prompt states."""
        return sum(len(state) for state in self._saved.values())

    def _save_prompt(self, tokens: Sequence[int]) -> None:
        """Copy the KV state of the prompt just decoded, for later prompts with its tools."""
        lib = self._lib
        size = lib.llama_state_seq_get_size(self._ctx, 0)
        if size > self._saved_bytes:
            return
        # Make room first, so the saved states never hold more than the budget, even while
        # the new one is copied.
        total = self.saved_prompt_bytes
        while self._saved and (
            len(self._saved) >= self._saved_prompts or total + size > self._saved_bytes
        ):
            _, dropped = self._saved.popitem(last=False)
            total -= len(dropped)
        state = (ctypes.c_uint8 * size)()
        if lib.llama_state_seq_get_data(self._ctx, state, size, 0) != size:
            return
        self._saved[tuple(tokens)] = state

    def prefill_seconds(self, tokens: Sequence[int]) -> float:
        """Seconds to decode ``tokens`` into an emptied cache (the benchmarks' prompt rate,
        as llama-bench's ``-p``); the cache holds them afterwards."""
        self._kv_tokens = []
        self._lib.llama_memory_clear(self._memory, True)
        started = time.perf_counter()
        self._decode(tokens)
        return time.perf_counter() - started

    def _decode(self, tokens: Sequence[int]) -> None:
        """Append ``tokens`` to sequence 0; logits are kept for the last one only."""
        lib = self._lib
        for start in range(0, len(tokens), self._n_batch):
            chunk = tokens[start : start + self._n_batch]
            array = (lib.llama_token * len(chunk))(*chunk)
            status = lib.llama_decode(self._ctx, lib.llama_batch_get_one(array, len(chunk)))
            if status != 0:
                self._kv_tokens = []
                lib.llama_memory_clear(self._memory, True)
                raise RuntimeError(f"llama_decode failed with status {status}")
            self._kv_tokens.extend(chunk)

    def _max_tokens(self, tokens: Sequence[int], settings: DecodingSettings) -> int:
        check_context(len(tokens), self.n_ctx)
        if settings.temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or more")
        return min(settings.max_tokens, self.n_ctx - len(tokens))

    def _answer_loop(
        self,
        tokens: Sequence[int],
        grammar: Any,
        settings: DecodingSettings,
        max_tokens: int,
        state: AnswerState,
    ) -> Any:
        """The answer's token loop (:func:`workers.generation.answer_tokens`), primed."""
        # A generator per request, from the seed and the prompt: the same request gets the
        # same answer whichever worker runs it, in whatever order.
        prompt_hash = zlib.crc32(self._np.asarray(tokens, dtype=self._np.int32).tobytes())
        tick = time.perf_counter()
        matcher = grammar.fresh()
        state.grammar_s += time.perf_counter() - tick
        loop = answer_tokens(
            self._vocabulary,
            matcher,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            rng=self._np.random.default_rng([settings.seed, prompt_hash]),
            fast_forward=self.fast_forward,
            state=state,
            none_threshold=(
                self.none_threshold if settings.none_threshold is None else settings.none_threshold
            ),
        )
        next(loop)
        return loop

    def _logits(self, index: int) -> Any:
        """The logits of output ``index`` of the last decode (-1: its last)."""
        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        return self._np.ctypeslib.as_array(pointer, (self._n_vocab,))

    def _completion(
        self, tokens: Sequence[int], reused: int, started: float, state: AnswerState
    ) -> Completion:
        self.full_checks += state.full_checks
        finished = state.finished_at or time.perf_counter()
        first_token_at = state.first_token_at or finished
        text = self._llm.detokenize(state.generated).decode("utf-8", errors="replace")
        return Completion(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=len(state.generated),
            reused_prefix_tokens=reused,
            finish_reason=state.finish_reason,
            prompt_ms=(first_token_at - started) * 1000,
            generation_ms=(finished - first_token_at) * 1000,
            token_ids=state.generated,
            forced_tokens=state.forced_tokens,
            decode_calls=state.decode_calls,
            grammar_ms=state.grammar_s * 1000,
            logprobs=state.logprobs,
            none_probability=state.none_probability,
        )

    def complete(
        self, tokens: Sequence[int], grammar: Any, settings: DecodingSettings
    ) -> Completion:
        max_tokens = self._max_tokens(tokens, settings)
        started = time.perf_counter()
        reused = self._restore_prefix(tokens)
        self._decode(tokens[reused:])
        if self._saved_prompts and len(tokens) - reused >= SAVE_MIN_NEW_TOKENS:
            self._save_prompt(tokens)
        state = AnswerState()
        loop = self._answer_loop(tokens, grammar, settings, max_tokens, state)
        try:
            pending = loop.send(self._logits(-1))
            while True:
                self._decode(pending)
                pending = loop.send(self._logits(-1))
        except StopIteration:
            pass
        return self._completion(tokens, reused, started, state)
