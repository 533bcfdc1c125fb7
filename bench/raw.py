"""Two in-process measurements for ``python -m bench``.

``raw``: llama.cpp with no grammar at all, as the floor the pipeline is held to. For each
request, the same prompt the pipeline built (same format, same tokens, the common prefix
with the previous prompt kept in the KV cache), then as many greedy tokens as the pipeline
wrote for it, one ``llama_decode`` each. Reports tokens per second over the whole loop,
model load included (the pipeline's wall time includes its start-up too).

``share``: the engine (fast-forward on) over an input, once: how many answer tokens the
grammar forced, how many ``llama_decode`` calls the answers took, and how fast, with
``--saved-mb`` of memory for saved prompt states and ``--n-ctx`` tokens of context (the
engine's defaults, or others, to compare); also how many prompt tokens it decoded (not
reused) and the process's RSS after loading and at its peak (``VmHWM``): a worker's memory.

``python -m bench.raw raw REQUESTS PIPELINE_RESULTS --model M --threads N`` or
``python -m bench.raw share REQUESTS --model M [--saved-mb N] [--n-ctx N] [--threads N]``
prints one JSON line; ``M`` is a GGUF file or a model name of the pipeline
(``needle-smol``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.baseline import load_bench_llama
from bench.runs import status_kb
from workers.engine import DecodingSettings, LlamaEngine, install_llama_log_handler
from workers.nullable import model_tools
from workers.prompts import make_prompt_format
from workers.toolset import ToolSet, normalize_tools


def _rows(path: str | Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]


def raw_run(
    requests: str, results: str, model: str, threads: int, prompt_format: str
) -> dict[str, Any]:
    install_llama_log_handler(False)
    import llama_cpp
    import numpy as np

    started = time.perf_counter()
    llm = load_bench_llama(model, threads)
    ctx, n_vocab = llm._ctx.ctx, llm.n_vocab()
    memory = llama_cpp.llama_get_memory(ctx)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"
    fmt = make_prompt_format(prompt_format, llm.metadata)
    written = {row["id"]: row["usage"]["completion_tokens"] for row in _rows(results)}
    held: list[int] = []
    prompt_tokens = completion_tokens = 0

    def decode(tokens: list[int]) -> None:
        for start in range(0, len(tokens), 512):
            chunk = tokens[start : start + 512]
            array = (llama_cpp.llama_token * len(chunk))(*chunk)
            if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(array, len(chunk))):
                raise RuntimeError("llama_decode failed")
            held.extend(chunk)

    for row in _rows(requests):
        tools = model_tools(normalize_tools(row["tools"]))
        text = fmt.render(tools, row["query"])
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
        common = 0
        while common < min(len(held), len(tokens) - 2) and held[common] == tokens[common]:
            common += 1
        del held[common:]
        llama_cpp.llama_memory_seq_rm(memory, 0, common, -1)
        decode(tokens[common:])
        for _ in range(written.get(row["id"], 0)):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), (n_vocab,))
            decode([int(logits.argmax())])
        prompt_tokens += len(tokens)
        completion_tokens += written.get(row["id"], 0)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "tokens_per_s": (prompt_tokens + completion_tokens) / wall,
        "threads": threads,
    }


def _status_mib(key: str) -> float:
    return round((status_kb(os.getpid(), key) or 0) / 1024, 1)


def forced_share(
    requests: str,
    model: str,
    prompt_format: str,
    saved_mb: int | None = None,
    n_ctx: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    started = time.perf_counter()
    saved = {} if saved_mb is None else {"saved_bytes": saved_mb << 20}
    engine = LlamaEngine(model, n_threads=threads, n_ctx=n_ctx, **saved)
    loaded_mib = _status_mib("VmRSS")
    fmt = make_prompt_format(prompt_format, engine.metadata)
    settings = DecodingSettings()
    grammars: dict[bytes, tuple[ToolSet, Any]] = {}
    totals = {"requests": 0, "tokens": 0, "forced": 0, "decode_calls": 0, "grammar_ms": 0.0}
    totals |= {"prompt_tokens": 0, "prompt_tokens_decoded": 0}
    for row in _rows(requests):
        tools = normalize_tools(row["tools"])
        key = orjson.dumps(tools)
        if key not in grammars:
            toolset = ToolSet(tools)
            schema = toolset.answer_schema(settings.max_calls, settings.max_string_length)
            grammars[key] = (toolset, engine.compile_grammar(schema))
        toolset, grammar = grammars[key]
        tokens = engine.tokenize(fmt.render(toolset.model_tools, row["query"]))
        completion = engine.complete(tokens, grammar, settings)
        totals["requests"] += 1
        totals["tokens"] += completion.completion_tokens
        totals["forced"] += completion.forced_tokens
        totals["decode_calls"] += completion.decode_calls
        totals["grammar_ms"] += completion.grammar_ms
        totals["prompt_tokens"] += completion.prompt_tokens
        totals["prompt_tokens_decoded"] += (
            completion.prompt_tokens - completion.reused_prefix_tokens
        )
    wall = time.perf_counter() - started
    totals |= {
        "wall_s": round(wall, 2),
        "requests_per_s": round(totals["requests"] / wall, 2),
        "saved_prefix_hits": engine.saved_prefix_hits,
        "saved_mb": saved_mb,
        "n_ctx": engine.n_ctx,
        "rss_after_load_mib": loaded_mib,
        "peak_rss_mib": _status_mib("VmHWM"),
    }
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw", description=__doc__)
    parser.add_argument("mode", choices=["raw", "share"])
    parser.add_argument("requests")
    parser.add_argument("results", nargs="?", help="raw: the pipeline's results (token counts)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompt-format", default="needle")
    parser.add_argument("--saved-mb", type=int, help="share: memory for saved prompt states")
    parser.add_argument("--n-ctx", type=int, default=0, help="share: context (0: the model's)")
    args = parser.parse_args(argv)
    if not Path(args.model).exists():
        from pipeline.models import resolve_model

        args.model = str(resolve_model(args.model).path)
    if args.mode == "raw":
        stats = raw_run(args.requests, args.results, args.model, args.threads, args.prompt_format)
    else:
        stats = forced_share(
            args.requests, args.model, args.prompt_format, args.saved_mb, args.n_ctx, args.threads
        )
    sys.stdout.write(json.dumps(stats) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
