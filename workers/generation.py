"""One answer's grammar-constrained token loop, apart from how its tokens are decoded.

:func:`answer_tokens` is a generator: it yields the tokens to decode next for its sequence
and is sent the logits that follow them. :meth:`workers.engine.LlamaEngine.complete` drives
it with one sequence's ``llama_decode`` calls; a driver that decodes several sequences per
call would give every loop the same choices for the same logits (``bench/batched.py``
measures that lever).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Vocabulary:
    """What the loop needs to know of each token, computed once per model."""

    eog: Any  # numpy bool array: the token ends generation
    structural: list[bool]  # the piece holds JSON punctuation
    opens_string: list[bool]  # the piece ends with a quote
    n_vocab: int
    closes_list: Any = None  # numpy bool array: the piece starts (after spaces) with "]"
    bitmask: Any = field(init=False)

    def __post_init__(self) -> None:
        self.bitmask = np.full(((self.n_vocab + 31) // 32,), -1, dtype=np.int32)


@dataclass
class AnswerState:
    """What the loop produced, filled in as it runs."""

    generated: list[int] = field(default_factory=list)
    finish_reason: str = "length"
    forced_tokens: int = 0
    decode_calls: int = 0
    grammar_s: float = 0.0
    full_checks: int = 0  # the sampled token was rejected and the full mask computed
    # (index in generated, log-probability under the model's full softmax) of each token
    # the model chose; forced tokens have none. The end token's index is len(generated).
    logprobs: list[tuple[int, float]] = field(default_factory=list)
    # The model's probability of answering no call, at the choice between "]" and a call
    # (None: the loop never met that choice, or was not asked to weigh it).
    none_probability: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None


def allowed_logits(vocab: Vocabulary, matcher: Any, logits: Any, state: AnswerState) -> Any:
    """The logits with every token the grammar rejects set to -inf (the full mask)."""
    state.full_checks += 1
    bitmask = vocab.bitmask
    matcher.unsafe_compute_mask_ptr(bitmask.ctypes.data, bitmask.nbytes)
    bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little")[: vocab.n_vocab]
    return np.where(bits.astype(bool), logits, -np.inf)


def log_probability(logits: Any, token: int) -> float:
    """log softmax(logits)[token], over the whole vocabulary (not the grammar's mask: a
    token the model chose only because the grammar rejected its favourite scores low)."""
    top = float(logits.max())
    return float(logits[token]) - top - float(np.log(np.exp(logits - top).sum()))


def pick(vocab: Vocabulary, masked: Any, temperature: float, rng: Any) -> int:
    """A token of logits whose rejected tokens are -inf: the first maximum at temperature
    0, else drawn from their softmax at ``temperature``."""
    if temperature == 0:
        return int(masked.argmax())
    scaled = masked.astype(np.float64) / temperature
    weights = np.exp(scaled - scaled.max())  # rejected tokens: exp(-inf) = 0
    return int(rng.choice(vocab.n_vocab, p=weights / weights.sum()))


def sample(
    vocab: Vocabulary, matcher: Any, logits: Any, temperature: float, rng: Any, state: AnswerState
) -> int:
    """The next token under the grammar, consumed by ``matcher`` unless it is the end:
    greedy (the first maximum logit among allowed tokens) at temperature 0, else drawn
    from the softmax of the allowed logits."""
    if temperature == 0:
        token = int(logits.argmax())
        if not vocab.eog[token] and matcher.try_consume_tokens([token]) == 1:
            return token  # allowed, and already consumed
    token = pick(vocab, allowed_logits(vocab, matcher, logits, state), temperature, rng)
    if not vocab.eog[token] and not matcher.consume_token(token):
        raise RuntimeError(f"grammar rejected token {token}: {matcher.get_error()}")
    return token


def choose_none_or_call(
    vocab: Vocabulary,
    matcher: Any,
    logits: Any,
    threshold: float,
    temperature: float,
    rng: Any,
    state: AnswerState,
) -> int | None:
    """At the answer's first choice, between closing the list (no call) and starting a
    call: answer none when the model gives it at least ``threshold`` of the probability the
    grammar allows, else a call; the token is then the best (or, above temperature 0, a
    drawn one) of that side. ``None`` (choose as usual) when the grammar allows only one
    side here, or the vocabulary does not say which tokens close the list."""
    if vocab.closes_list is None:
        return None
    masked = allowed_logits(vocab, matcher, logits, state)
    allowed = np.isfinite(masked)
    closes = allowed & vocab.closes_list
    opens = allowed & ~vocab.closes_list & ~vocab.eog
    if not closes.any() or not opens.any():
        return None
    weights = np.exp(masked.astype(np.float64) - float(masked[allowed].max()))
    p_none = float(weights[closes].sum() / weights[allowed].sum())
    state.none_probability = p_none
    side = np.where(closes if p_none >= threshold else opens, masked, -np.inf)
    token = pick(vocab, side, temperature, rng)
    if not matcher.consume_token(token):
        raise RuntimeError(f"grammar rejected token {token}: {matcher.get_error()}")
    return token


def answer_tokens(
    vocab: Vocabulary,
    matcher: Any,
    *,
    max_tokens: int,
    temperature: float,
    rng: Any,
    fast_forward: bool,
    state: AnswerState,
    none_threshold: float | None = None,
) -> Generator[list[int], Any, None]:
    """Yield the tokens to decode next; be sent the logits after them (first: the prompt's).

    ``none_threshold``: decide the first choice between no call and a call by the model's
    probability of none (:func:`choose_none_or_call`) rather than by its likeliest token.

    Fast-forward: where the grammar allows exactly one continuation (keys, punctuation,
    the rest of a tool name once it is unique), llguidance's forced tokens are taken
    without asking the model and decoded together with the sampled token before them.
    """
    clock = time.perf_counter
    logits = yield []
    pending: list[int] = []  # accepted, not yet decoded
    generated = state.generated
    look_for_forced = fast_forward
    in_quotes = False  # inside a string that a forced run opened (a name, a key, an enum)
    weigh_none = none_threshold is not None
    while True:
        if look_for_forced:
            tick = clock()
            forced = matcher.compute_ff_tokens()[: max_tokens - len(generated)]
            if forced and not matcher.consume_tokens(forced):
                raise RuntimeError(f"grammar rejected its forced tokens: {matcher.get_error()}")
            state.grammar_s += clock() - tick
            if forced:
                generated += forced
                pending += forced
                state.forced_tokens += len(forced)
                state.first_token_at = state.first_token_at or clock()
                in_quotes = vocab.opens_string[forced[-1]]
        if len(generated) >= max_tokens:
            break
        tick = clock()
        stopped = matcher.is_stopped()
        state.grammar_s += clock() - tick
        if stopped:  # the answer is complete: the only token left is the end
            state.finish_reason = "stop"
            break
        if pending:
            logits = yield pending
            state.decode_calls += 1
            pending = []
        tick = clock()
        token = None
        if weigh_none:
            weigh_none = False
            token = choose_none_or_call(
                vocab, matcher, logits, none_threshold or 0.0, temperature, rng, state
            )
        if token is None:
            token = sample(vocab, matcher, logits, temperature, rng, state)
        state.grammar_s += clock() - tick
        state.logprobs.append((len(generated), log_probability(logits, token)))
        state.first_token_at = state.first_token_at or clock()
        if vocab.eog[token]:
            state.finish_reason = "stop"
            break
        generated.append(token)
        pending.append(token)
        if len(generated) >= max_tokens:
            break
        # Forced text follows JSON punctuation, or a prefix that makes a name or an
        # enum value unique; elsewhere (free strings, numbers) asking is wasted time.
        structural = vocab.structural[token]
        look_for_forced = fast_forward and (structural or in_quotes)
        in_quotes = in_quotes and not structural
    state.finished_at = clock()
