"""``python -m bench.batched``: several sequences per ``llama_decode`` call, measured.

The lever issue 21 names: answer the requests a worker holds in lock step, one decode call
advancing all of them, instead of one after another. Each of ``--sequences`` requests of
``inputs/queries.jsonl`` that share its commonest tool list gets ``--generate`` greedy
tokens after its prompt (no grammar: this times the model), three ways on needle-smol, one
thread:

* ``one at a time``: the engine's way: the shared tool prefix decoded once, each request's
  query and answer in sequence 0 after it;
* ``lock step, unified cache``: the prefix copied to sequences 1..n (cells shared), each
  step one call holding every sequence's next token;
* ``lock step, own streams``: the same with a KV stream per sequence (``kv_unified =
  false``; the prefix's cells copied; memory grows with the number of sequences).

It reports the time of each and how many sequences' tokens equal the one-at-a-time
tokens, and the largest difference of their first logits. In llama.cpp 0.3.36 the unified
cache gives other logits for a sequence that shares a ubatch with another (llama.cpp issue
24962), so answers change; the own streams keep them but need a full context per sequence.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipeline.models import resolve_model
from workers.engine import install_llama_log_handler
from workers.llama_load import load_llama
from workers.nullable import model_tools
from workers.prompts import NeedlePromptFormat
from workers.toolset import normalize_tools

SAMPLE_QUERIES = Path(__file__).resolve().parent.parent / "inputs" / "queries.jsonl"


def shared_tool_prompts(count: int) -> list[str]:
    rows = [orjson.loads(line) for line in SAMPLE_QUERIES.read_bytes().splitlines()]
    commonest = Counter(orjson.dumps(r["tools"]) for r in rows).most_common(1)[0][0]
    fmt = NeedlePromptFormat()
    return [
        fmt.render(model_tools(normalize_tools(r["tools"])), r["query"])
        for r in rows
        if orjson.dumps(r["tools"]) == commonest
    ][:count]


class Context:
    """A llama.cpp context for ``sequences`` sequences, and a batch to fill by hand."""

    def __init__(self, path: str, sequences: int, unified: bool, n_ctx: int) -> None:
        import llama_cpp.llama_cpp as lib

        original = lib.llama_context_default_params

        def params() -> Any:
            p = original()
            p.n_seq_max, p.kv_unified = sequences, unified
            return p

        lib.llama_context_default_params = params
        try:
            total = n_ctx if unified else n_ctx * sequences
            self.llm = load_llama(path, n_ctx=total, n_threads=1, n_threads_batch=1)
        finally:
            lib.llama_context_default_params = original
        self.lib, self.ctx = lib, self.llm._ctx.ctx
        self.memory = lib.llama_get_memory(self.ctx)
        self.n_vocab = lib.llama_vocab_n_tokens(self.llm._model.vocab)
        self.batch = lib.llama_batch_init(512, 0, 1)

    def decode_prefix(self, prefix: list[int]) -> None:
        """``prefix`` into sequence 0, a batch at a time."""
        for start in range(0, len(prefix), 512):
            self.decode([(0, start, prefix[start : start + 512])])

    def decode(self, items: list[tuple[int, int, list[int]]]) -> list[Any]:
        """Decode ``(sequence, first position, tokens)`` items in one call; the logits
        after each item's last token."""
        n, last = 0, []
        for seq, pos, tokens in items:
            for j, token in enumerate(tokens):
                self.batch.token[n], self.batch.pos[n] = token, pos + j
                self.batch.n_seq_id[n], self.batch.seq_id[n][0] = 1, seq
                self.batch.logits[n] = j == len(tokens) - 1
                n += 1
            last.append(n - 1)
        self.batch.n_tokens = n
        if self.lib.llama_decode(self.ctx, self.batch) != 0:
            raise RuntimeError("llama_decode failed")
        return [
            np.ctypeslib.as_array(
                self.lib.llama_get_logits_ith(self.ctx, i), (self.n_vocab,)
            ).copy()
            for i in last
        ]


def one_at_a_time(ctx: Context, prefix: list[int], queries: list[list[int]], n: int) -> tuple:
    ctx.decode_prefix(prefix)
    started = time.perf_counter()
    outputs, firsts = [], []
    for query in queries:
        ctx.lib.llama_memory_seq_rm(ctx.memory, 0, len(prefix), -1)
        logits = ctx.decode([(0, len(prefix), query)])[0]
        firsts.append(logits)
        tokens: list[int] = []
        for step in range(n):
            tokens.append(int(logits.argmax()))
            if step + 1 < n:
                logits = ctx.decode([(0, len(prefix) + len(query) + step, tokens[-1:])])[0]
        outputs.append(tokens)
    return time.perf_counter() - started, outputs, firsts


def lock_step(ctx: Context, prefix: list[int], queries: list[list[int]], n: int) -> tuple:
    ctx.decode_prefix(prefix)
    started = time.perf_counter()
    for k in range(len(queries)):
        ctx.lib.llama_memory_seq_cp(ctx.memory, 0, k + 1, -1, -1)
    logits = ctx.decode([(k + 1, len(prefix), q) for k, q in enumerate(queries)])
    firsts = logits
    outputs: list[list[int]] = [[] for _ in queries]
    for step in range(n):
        for k, row in enumerate(logits):
            outputs[k].append(int(row.argmax()))
        if step + 1 < n:
            logits = ctx.decode(
                [
                    (k + 1, len(prefix) + len(q) + step, outputs[k][-1:])
                    for k, q in enumerate(queries)
                ]
            )
    return time.perf_counter() - started, outputs, firsts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.batched", description=__doc__)
    ap.add_argument("--sequences", type=int, default=8, help="requests in lock step (8)")
    ap.add_argument("--generate", type=int, default=24, help="tokens per answer (24)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    install_llama_log_handler(False)
    path = str(resolve_model("needle-smol").path)
    texts = shared_tool_prompts(a.sequences)
    tokenizer = load_llama(path, vocab_only=True, verbose=False)
    prompts = [tokenizer.tokenize(t.encode(), add_bos=False, special=False) for t in texts]
    shared = min(len(p) for p in prompts) - 2
    for p in prompts[1:]:
        shared = min(
            shared, next(i for i, (x, y) in enumerate(zip(prompts[0], p, strict=False)) if x != y)
        )
    prefix, queries = prompts[0][:shared], [p[shared:] for p in prompts]
    n_ctx = 4096
    base_s, base_out, base_first = one_at_a_time(
        Context(path, 1, True, n_ctx), prefix, queries, a.generate
    )
    rows = [{"way": "one at a time", "seconds": round(base_s, 2), "speedup": 1.0}]
    for label, unified in (("lock step, unified cache", True), ("lock step, own streams", False)):
        ctx = Context(path, len(queries) + 1, unified, n_ctx)
        secs, out, first = lock_step(ctx, prefix, queries, a.generate)
        same = sum(x == y for x, y in zip(out, base_out, strict=True))
        rows.append(
            {
                "way": label,
                "seconds": round(secs, 2),
                "speedup": round(base_s / secs, 2),
                "same_tokens": f"{same}/{len(out)}",
                "max_first_logit_diff": round(
                    max(float(np.abs(x - y).max()) for x, y in zip(first, base_first, strict=True)),
                    4,
                ),
                "kv_cells": n_ctx if unified else n_ctx * (len(queries) + 1),
            }
        )
        del ctx
    head = f"{len(queries)} requests, shared prefix {shared} tokens, {a.generate} tokens each"
    if a.json:
        print(json.dumps({"setup": head, "rows": rows}, indent=1))
    else:
        print(head)
        for row in rows:
            print("  " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
