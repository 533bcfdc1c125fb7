"""The straightforward way to do the job, as the benchmark's baseline.

One process, one ``Llama`` using every core as a thread, and a plain loop: read a line,
build the same prompt the pipeline builds, complete it with llama-cpp-python's
``create_completion`` under the same answer schema and decoding settings (greedy, same
``max_tokens``), parse and validate the answer, append a line. The grammar is
llama-cpp-python's own (the schema converted to GBNF, ``LlamaGrammar``): what such a script
uses, and the only place the project still uses GBNF. Tool lists are normalised
and turned into a grammar once per distinct list (a dict), like any sensible script would.

``python -m bench.baseline INPUT OUTPUT --model M [--threads N]`` prints one JSON line
with its own timings on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from workers.engine import DecodingSettings, install_llama_log_handler
from workers.llama_load import load_llama
from workers.prompts import make_prompt_format
from workers.toolset import ToolSet, normalize_tools


def load_bench_llama(model_path: str, threads: int) -> Any:
    """The model as both bench loops load it: full context, ``threads`` threads, 512 batch."""
    return load_llama(
        model_path,
        n_ctx=0,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        n_ubatch=512,
        verbose=False,
    )


def parse_answer(text: str) -> Any:
    """The worker's parse: strict JSON, then JSON with raw control characters in strings."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, strict=False)


def run_baseline(
    input_path: str,
    output_path: str,
    model_path: str,
    threads: int,
    decoding: DecodingSettings,
    tools_path: str | None = None,
    prompt_format_name: str = "needle",
) -> dict[str, Any]:
    install_llama_log_handler(False)
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    started = time.perf_counter()
    llm = load_bench_llama(model_path, threads)
    load_s = time.perf_counter() - started
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"
    prompt_format = make_prompt_format(prompt_format_name, llm.metadata)
    default_tools = orjson.loads(Path(tools_path).read_bytes()) if tools_path else None
    prepared: dict[bytes, tuple[ToolSet, str]] = {}
    totals = {"requests": 0, "ok": 0, "prompt_tokens": 0, "completion_tokens": 0, "reused": 0}
    model_s = 0.0
    first_result_s: float | None = None
    loop_started = time.perf_counter()
    with open(input_path, "rb") as source, open(output_path, "wb") as sink:
        for line in source:
            if not line.strip():
                continue
            request_started = time.perf_counter()
            document = orjson.loads(line)
            raw_tools = document.get("tools", default_tools)
            key = orjson.dumps(raw_tools)
            if key not in prepared:
                toolset = ToolSet(normalize_tools(raw_tools))
                schema = toolset.answer_schema(decoding.max_calls, decoding.max_string_length)
                prepared[key] = (toolset, json_schema_to_gbnf(json.dumps(schema)))
            toolset, gbnf = prepared[key]
            text = prompt_format.render(toolset.model_tools, document["query"])
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
            cached = llm.input_ids[: llm.n_tokens].tolist()
            reused = next(
                (i for i, (a, b) in enumerate(zip(cached, tokens, strict=False)) if a != b),
                min(len(cached), len(tokens)),
            )
            model_started = time.perf_counter()
            completion = llm.create_completion(
                tokens,
                grammar=LlamaGrammar.from_string(gbnf, verbose=False),
                temperature=decoding.temperature,
                max_tokens=decoding.max_tokens,
                seed=decoding.seed,
            )
            model_s += time.perf_counter() - model_started
            choice = completion["choices"][0]
            usage = completion["usage"]
            record: dict[str, Any] = {"id": document.get("id"), "status": "ok", "calls": []}
            try:
                if choice["finish_reason"] != "stop":
                    raise ValueError("truncated")
                record["calls"] = toolset.validate_calls(parse_answer(choice["text"]))
            except Exception as exc:  # any failure is an error line
                record["status"] = "error"
                record["error"] = f"{type(exc).__name__}: {exc}"
            record["usage"] = {
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
            }
            record["latency_ms"] = round((time.perf_counter() - request_started) * 1000, 3)
            sink.write(orjson.dumps(record) + b"\n")
            sink.flush()
            if first_result_s is None:
                first_result_s = time.perf_counter() - started
            totals["requests"] += 1
            totals["ok"] += record["status"] == "ok"
            totals["prompt_tokens"] += usage["prompt_tokens"]
            totals["completion_tokens"] += usage["completion_tokens"]
            totals["reused"] += min(reused, len(tokens) - 1)
    finished = time.perf_counter()
    return {
        **totals,
        "wall_s": finished - started,
        "loop_s": finished - loop_started,
        "load_s": load_s,
        "model_s": model_s,
        "first_result_s": first_result_s,
        "threads": threads,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--max-tokens", type=int, default=DecodingSettings.max_tokens)
    parser.add_argument("--tools", help="tools for lines without 'tools'")
    parser.add_argument("--prompt-format", default="needle", choices=["needle", "chat"])
    args = parser.parse_args(argv)
    decoding = DecodingSettings(max_tokens=args.max_tokens)
    stats = run_baseline(
        args.input, args.output, args.model, args.threads, decoding, args.tools, args.prompt_format
    )
    sys.stdout.write(json.dumps(stats) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
