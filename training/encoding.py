"""Training examples as token items: the tool-list prefix that examples with the same tools
share, and each example's branch (the rest of its prompt, its answer, EOS)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .data import format_answer, format_prompt
from .tokenizer import Tok
from .weights import token_weights, value_mask


@dataclass
class Item:
    """One example: ``prefix`` (BOS + the tool-list part of the prompt, shared by examples
    with the same tools) and ``branch`` (rest of the prompt + answer + EOS); the first
    ``n_prompt`` branch tokens are prompt."""

    prefix: tuple[int, ...]
    branch: list[int]
    n_prompt: int
    answer_weights: list[float] | None = None  # per answer token (+EOS); None = all 1.0


def encode_examples(
    exs: list[dict],
    tok: Tok,
    max_len: int,
    chunk: int = 4096,
    value_weight: float = 1.0,
    workers: int = 1,
) -> list[Item]:
    """Tokenised examples; examples with the same tool list share one prefix tuple, and the
    examples are tokenised ``chunk`` at a time so that only the short branches stay in memory
    (hundreds of thousands of examples fit in a few GB).  With ``value_weight`` != 1 (and a
    tokenizer that reports its pieces' byte lengths), answer tokens that carry a tool name or
    an argument value weigh that much in the loss (:mod:`training.weights`).

    ``workers`` > 1 encodes the chunks in that many forked processes (the same items, in
    the same order): most of the time goes to checking each distinct tool's schema and
    rendering prompts in Python, so a lent GPU machine's 16 cores do it in a fraction of the
    time one does, while the GPU waits for it."""
    starts = range(0, len(exs), chunk)
    if workers > 1 and len(starts) > 1:
        parts = _encode_in_processes(exs, tok, max_len, chunk, value_weight, workers)
    else:
        heads: dict[str, list[int]] = {}
        parts = (
            _encode_chunk(exs[s : s + chunk], tok, max_len, value_weight, heads) for s in starts
        )
    out: list[Item] = []
    prefixes: dict[tuple[int, ...], tuple[int, ...]] = {}
    for part in parts:
        for item in part:
            item.prefix = prefixes.setdefault(item.prefix, item.prefix)
            out.append(item)
    return out


def _encode_chunk(
    part: list[dict], tok: Tok, max_len: int, value_weight: float, head_ids: dict[str, list[int]]
) -> list[Item]:
    """:func:`encode_examples` of one chunk; ``head_ids`` caches the tool-list heads' tokens."""
    weigh = value_weight != 1.0 and hasattr(tok, "piece_lengths")
    bos = (tok.bos_id,) if getattr(tok, "add_bos", True) else ()  # as the worker tokenises
    prompts = [format_prompt(e["tools"], e["query"]) for e in part]
    heads = [
        p[: len(p) - len(e["query"]) - len("</query>")] for p, e in zip(prompts, part, strict=True)
    ]
    answers = [format_answer(e["answers"], e["tools"]) for e in part]
    full = tok.encode_batch(prompts)
    ans = tok.encode_batch(answers)
    new_heads = sorted(set(heads) - head_ids.keys())
    for h, ids in zip(new_heads, tok.encode_batch(new_heads), strict=True):
        head_ids[h] = ids
    items: list[Item] = []
    # one prefix object per tool list here too: a forked process pickles each one once
    prefixes: dict[tuple[int, ...], tuple[int, ...]] = {}
    for h, f, a, text in zip(heads, full, ans, answers, strict=True):
        hi = head_ids[h]
        # the prompt's tokens must start with the head's own tokens (true when the query
        # starts a new pre-token); otherwise the whole prompt minus one token is the prefix
        cut = len(hi) if 0 < len(hi) < len(f) and f[: len(hi)] == hi else len(f) - 1
        weights = None
        if weigh:
            pieces = tok.piece_lengths(a)  # type: ignore[attr-defined]
            weights = [*token_weights(value_mask(text), pieces, value_weight), 1.0]
        prefix = (*bos, *f[:cut])
        prefix = prefixes.setdefault(prefix, prefix)
        item = Item(prefix, [*f[cut:], *a, tok.eos_id], len(f) - cut, weights)
        if len(item.prefix) + len(item.branch) <= max_len:
            items.append(item)
    return items


# What the forked encoding processes read (set only while their pool runs): the examples,
# the tokenizer and the settings travel by fork, not by pickling.
_ENCODE_JOB: tuple | None = None
_ENCODE_HEADS: dict[str, list[int]] = {}


def _encode_job(start: int) -> list[Item]:
    assert _ENCODE_JOB is not None
    exs, tok, max_len, chunk, value_weight = _ENCODE_JOB
    return _encode_chunk(exs[start : start + chunk], tok, max_len, value_weight, _ENCODE_HEADS)


def _encode_in_processes(
    exs: list[dict], tok: Tok, max_len: int, chunk: int, value_weight: float, workers: int
) -> Iterator[list[Item]]:
    """Each chunk's items, in order, encoded by a pool of forked processes."""
    global _ENCODE_JOB
    _ENCODE_JOB = (exs, tok, max_len, chunk, value_weight)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_encode_job, range(0, len(exs), chunk))
    finally:
        _ENCODE_JOB = None


def encode_workers() -> int:
    """Processes for encoding a large training set: the CPUs this process may use, at most
    16."""
    return max(1, min(16, len(os.sched_getaffinity(0))))
