"""``python -m bench``: the straightforward loop against the pipeline, side by side.

Both run on the same model and the same requests (by default ``inputs/queries.jsonl``
repeated, with fresh ids, to a few hundred lines), each in its own process, one after the
other (``--rounds`` alternates which goes first). The baseline is :mod:`bench.baseline`;
the pipeline is the real CLI (``python -m pipeline``, with ``--traces file`` on). A
watcher thread samples ``/proc`` for peak RSS (``VmHWM``) of every process and the time
the first result line appears. Worker model time comes from the trace file's LLM spans.

``--memory`` instead measures the supervisor's peak RSS on generated 10,000- and
1,000,000-request inputs (one tiny tool, ``--max-tokens 1`` so the workers are quick).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.memory import run_memory
from bench.runs import (
    DEFAULT_INPUT,
    PROJECT_ROOT,
    _env,
    _percentile,
    compare_outputs,
    expand_requests,
    load_line,
    run_baseline,
    run_pipeline,
)

# -- the table ---------------------------------------------------------------------------


def summarize(run: dict) -> dict[str, Any]:
    rows = run["rows"]
    latencies = [float(r.get("latency_ms", 0.0)) for r in rows]
    prompt = sum(r["usage"]["prompt_tokens"] for r in rows)
    completion = sum(r["usage"]["completion_tokens"] for r in rows)
    wall = run["wall_s"]
    return {
        "requests": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "wall_s": wall,
        "rps": len(rows) / wall if wall else 0.0,
        "p50": _percentile(latencies, 0.5),
        "p95": _percentile(latencies, 0.95),
        "prompt_tps": prompt / wall,
        "completion_tps": completion / wall,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "reused": run["reused"],
        "first_line_s": run["first_line_s"],
        "load_ms": run["load_ms"],
        "model_s": run["model_s"],
    }


def _fmt_ms(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in sorted(values)) if values else "n/a"


def format_table(base: dict, pipe: dict, model: Path, args: argparse.Namespace) -> str:
    b, p = summarize(base), summarize(pipe)
    match = compare_outputs(base["rows"], pipe["rows"])
    model_mb = model.stat().st_size / 2**20
    workers_rss = [kb / 1024 for kb in pipe["rss_kb"]["workers"]]
    n_workers = max(1, pipe["workers"])
    overhead_window = (pipe["busy_window_s"] - p["model_s"]) / p["model_s"] if p["model_s"] else 0
    overhead_wall = (p["wall_s"] * n_workers - p["model_s"]) / p["model_s"] if p["model_s"] else 0

    answer_tokens = max(1, pipe["span_completion_tokens"])
    grammar_per_token_us = pipe["grammar_s"] / answer_tokens * 1e6
    grammar_share = pipe["grammar_s"] / p["model_s"] if p["model_s"] else 0.0
    forced_share = pipe["forced_tokens"] / answer_tokens

    def ratio(x: float, y: float) -> str:
        return f"{y / x:.2f}x" if x else "n/a"

    lines = [
        f"model {model} ({model_mb:.1f} MiB); {b['requests']} requests; "
        f"baseline: 1 process x {base['threads']} threads; "
        f"pipeline: {n_workers} workers"
        + (f" x {args.threads} threads" if args.threads else "")
        + f"; prompt format {args.prompt_format}; baseline grammar: GBNF (LlamaGrammar), "
        "pipeline grammar: llguidance",
        f"{'':34} {'baseline':>12} {'pipeline':>12} {'ratio':>8}",
        f"{'requests/s':34} {b['rps']:12.2f} {p['rps']:12.2f} {ratio(b['rps'], p['rps']):>8}",
        f"{'wall time (s)':34} {b['wall_s']:12.2f} {p['wall_s']:12.2f}",
        f"{'ok / requests':34} {b['ok']:>6}/{b['requests']:<5} {p['ok']:>6}/{p['requests']:<5}",
        f"{'latency p50 (ms)':34} {b['p50']:12.1f} {p['p50']:12.1f}",
        f"{'latency p95 (ms)':34} {b['p95']:12.1f} {p['p95']:12.1f}",
        f"{'prompt tokens/s':34} {b['prompt_tps']:12.0f} {p['prompt_tps']:12.0f}",
        f"{'completion tokens/s':34} {b['completion_tps']:12.1f} {p['completion_tps']:12.1f}",
        f"{'reused prefix tokens (of prompt)':34} {b['reused']:12d} {p['reused']:12d}"
        f"   of {b['prompt_tokens']}",
        f"{'time to first result line (s)':34} {b['first_line_s'] or 0:12.2f} "
        f"{p['first_line_s'] or 0:12.2f}",
        f"{'model load (ms)':34} {_fmt_ms(b['load_ms']):>12} {'':12}  (baseline: Llama())",
        f"{'worker start to first job (ms)':34} {'':12} {_fmt_ms(p['load_ms']):>12}"
        "  (spawn + imports + load)",
        f"{'time in the model (s)':34} {b['model_s']:12.2f} {p['model_s']:12.2f}"
        "  (pipeline: sum over workers)",
        f"{'peak RSS baseline (MiB)':34} {base['rss_kb']['process'] / 1024:12.1f}",
        f"{'peak RSS supervisor (MiB)':34} {'':12} {pipe['rss_kb']['supervisor'] / 1024:12.1f}",
        f"{'peak RSS per worker (MiB)':34} {'':12} "
        f"{', '.join(f'{v:.1f}' for v in workers_rss):>12}"
        f"  (model file {model_mb:.1f}; max over file "
        f"{(max(workers_rss) - model_mb) if workers_rss else 0:+.1f})",
        f"{'grammar time per token (us)':34} {'':12} {grammar_per_token_us:12.1f}"
        "  (llguidance: token checks, masks, forced tokens)",
        f"{'grammar time / model time':34} {'':12} {grammar_share * 100:11.2f}%",
        f"{'steps fast-forwarded':34} {'':12} {forced_share * 100:11.1f}%"
        f"  ({pipe['forced_tokens']} of {pipe['span_completion_tokens']} answer tokens; "
        f"{pipe['decode_calls']} llama_decode calls)",
        f"{'pipeline overhead / model time':34} {'':12} {overhead_window * 100:11.1f}%"
        "  (worker busy windows minus model time)",
        f"{'  incl. startup and tail':34} {'':12} {overhead_wall * 100:11.1f}%"
        "  (wall x workers minus model time)",
        f"{'outputs identical (status+calls)':34} {match['exact']:>6}/{match['total']:<5}"
        + (
            f" + {match['fffd_only']} differ only in U+FFFD (invalid UTF-8 bytes)"
            if match["fffd_only"]
            else ""
        )
        + (f"; DIFFER: {match['differ'][:5]}" if match["differ"] else ""),
    ]
    return "\n".join(lines)


def resolve_bench_model(spec: str | None, workdir: Path) -> Path:
    """``--model`` as the pipeline resolves it (the default model when none is given)."""
    del workdir
    from pipeline.models import resolve_model

    return resolve_model(spec).path


def run_raw(
    args: argparse.Namespace, requests: Path, model: Path, workdir: Path, round_index: int
) -> dict[str, Any]:
    """Raw llama.cpp on the pipeline's prompts and answer lengths (see bench.raw)."""
    results = workdir / f"pipeline-{round_index}.results.jsonl"
    threads = args.threads or args.baseline_threads
    command = [sys.executable, "-m", "bench.raw", "raw", str(requests), str(results)]
    command += ["--model", str(model), "--threads", str(threads)]
    command += ["--prompt-format", args.prompt_format]
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, env=_env(), capture_output=True, check=True
    )
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])


def _pipeline_tokens_per_s(pipe: dict[str, Any]) -> float:
    rows = pipe["rows"]
    tokens = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in rows)
    return tokens / pipe["wall_s"]


def format_raw(raw: dict[str, Any], pipe: dict[str, Any]) -> str:
    ours = _pipeline_tokens_per_s(pipe)
    return (
        f"{'raw llama.cpp tokens/s':34} {raw['tokens_per_s']:12.1f} {ours:12.1f} "
        f"{ours / raw['tokens_per_s']:7.2f}x  (no grammar, {raw['threads']} threads, "
        f"same prompts and answer lengths, load included; pipeline: prompt+answer tokens "
        f"over its wall time)"
    )


def format_medians(measurements: list[dict[str, Any]]) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def per_round(fn: Any) -> list[float]:
        return [fn(m) for m in measurements]

    ratios = per_round(lambda m: m["pipeline"]["rps"] / m["baseline"]["rps"])
    grammar = per_round(lambda m: m["pipeline"]["grammar_s"] / m["pipeline"]["model_s"])
    per_token = per_round(
        lambda m: m["pipeline"]["grammar_s"] / max(1, m["pipeline"]["span_completion_tokens"])
    )
    overhead = per_round(
        lambda m: (
            (m["pipeline"]["busy_window_s"] - m["pipeline"]["model_s"]) / m["pipeline"]["model_s"]
        )
    )
    lines = [
        f"medians over {len(measurements)} round(s):",
        f"  throughput ratio {median(ratios):.2f}x ("
        + ", ".join(f"{r:.2f}x" for r in ratios)
        + ")",
        f"  grammar time / model time {median(grammar) * 100:.2f}%; "
        f"grammar time per answer token {median(per_token) * 1e6:.1f} us",
        f"  pipeline overhead / model time {median(overhead) * 100:.1f}%",
    ]
    raw = [m["raw"]["tokens_per_s"] for m in measurements if "raw" in m]
    if raw:
        ours = [
            m["pipeline"]["prompt_tokens"] + m["pipeline"]["completion_tokens"]
            for m in measurements
        ]
        walls = [m["pipeline"]["wall_s"] for m in measurements]
        ratio = median([t / w / r for t, w, r in zip(ours, walls, raw, strict=True)])
        lines.append(f"  pipeline tokens/s / raw llama.cpp tokens/s {ratio:.2f}")
    return "\n".join(lines)


def format_share(args: argparse.Namespace, requests: Path, model: Path) -> str:
    """Fast-forward share on the benchmark's requests and on the BFCL-like input."""
    lines = ["fast-forward (engine in one process, each input once):"]
    for path in (args.input, args.share_input):
        command = [sys.executable, "-m", "bench.raw", "share", str(path), "--model", str(model)]
        command += ["--prompt-format", args.prompt_format]
        completed = subprocess.run(
            command, cwd=PROJECT_ROOT, env=_env(), capture_output=True, check=True
        )
        share = json.loads(completed.stdout.decode().strip().splitlines()[-1])
        tokens = max(1, share["tokens"])
        lines.append(
            f"  {path.name}: {share['forced']} of {share['tokens']} answer tokens forced "
            f"({share['forced'] / tokens:.1%} of steps); {share['decode_calls']} llama_decode "
            f"calls for {share['requests']} answers; grammar "
            f"{share['grammar_ms'] / tokens * 1000:.1f} us per token"
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        help="a model as the pipeline's --model takes it: needle-smol, needle-tiny, smollm2, "
        "a GGUF path (default: the pipeline's default model, needle-smol)",
    )
    parser.add_argument(
        "--prompt-format",
        choices=["needle", "chat"],
        default="needle",
        help="prompt format for both runs (default: %(default)s)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="also run raw llama.cpp (no grammar, --threads or --baseline-threads threads) on "
        "the pipeline's prompts and token counts, and compare tokens/s",
    )
    parser.add_argument(
        "--share-input",
        type=Path,
        default=PROJECT_ROOT / "bench" / "bfcl_like.jsonl",
        help="second input for the fast-forward share (default: bench/bfcl_like.jsonl)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        default=DEFAULT_INPUT,
        help="requests to repeat (default: inputs/queries.jsonl)",
    )
    parser.add_argument(
        "-n",
        "--requests",
        type=int,
        default=308,
        help="requests per run: the input repeated with fresh ids (default: %(default)s)",
    )
    parser.add_argument(
        "-w", "--workers", type=int, help="pipeline workers (default: the pipeline's own)"
    )
    parser.add_argument(
        "--threads", type=int, help="pipeline threads per worker (default: the pipeline's own)"
    )
    parser.add_argument(
        "--baseline-threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="baseline llama.cpp threads (default: all cores, %(default)s)",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=256, help="answer length limit (default: %(default)s)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="baseline/pipeline pairs, alternating which runs first (default: %(default)s)",
    )
    parser.add_argument(
        "--pipeline-first", action="store_true", help="in round 1, run the pipeline first"
    )
    parser.add_argument(
        "--answer-cache",
        action="store_true",
        help="let the pipeline answer a repeated request as before, without a worker (off "
        "by default: the pipeline decodes every request, as the baseline does)",
    )
    parser.add_argument(
        "--pipeline-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for python -m pipeline (repeatable)",
    )
    parser.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="ray: instead of the baseline, compare the pipeline on Ray actors (a local Ray "
        "head on the same cores) with the pipeline on local processes (bench.executors)",
    )
    parser.add_argument(
        "--server-bin",
        metavar="PATH",
        help="also compare with llama.cpp's own server on the same requests (bench.server; "
        "with --bench-bin, llama-bench's prompt rate too)",
    )
    parser.add_argument("--bench-bin", metavar="PATH", help="llama-bench, with --server-bin")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument(
        "--keep", type=Path, help="keep inputs, outputs and traces in this directory"
    )
    memory = parser.add_argument_group("memory mode")
    memory.add_argument(
        "--memory",
        action="store_true",
        help="measure supervisor peak RSS on generated inputs of --memory-sizes requests",
    )
    memory.add_argument(
        "--memory-sizes",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[10_000, 1_000_000],
        help="comma-separated request counts (default: 10000,1000000)",
    )
    memory.add_argument(
        "--memory-max-tokens",
        type=int,
        default=1,
        help="--max-tokens for the memory runs: every answer is cut short, so workers "
        "are quick and the supervisor does the work (default: %(default)s)",
    )
    memory.add_argument(
        "--memory-format",
        choices=("jsonl", "parquet"),
        default="jsonl",
        help="the generated inputs' format (parquet: streamed by record batch; needs pyarrow)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    temp = None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = args.keep
    else:
        temp = tempfile.TemporaryDirectory(prefix="needle-bench-")
        workdir = Path(temp.name)
    try:
        model = resolve_bench_model(args.model, workdir)
        print(f"{load_line()}; {len(os.sched_getaffinity(0))} cores", flush=True)
        if args.memory:
            return run_memory(args, model, workdir)
        requests = expand_requests(args.input, args.requests, workdir / "requests.jsonl")
        if args.executor == "ray":
            from bench.executors import run_executors

            return run_executors(args, requests, model, workdir)
        measurements = []
        for round_index in range(args.rounds):
            pipeline_first = args.pipeline_first ^ (round_index % 2 == 1)
            order = ["pipeline", "baseline"] if pipeline_first else ["baseline", "pipeline"]
            done: dict[str, dict] = {}
            for name in order:
                out = workdir / f"{name}-{round_index}.results.jsonl"
                runner = run_pipeline if name == "pipeline" else run_baseline
                done[name] = runner(args, requests, model, out)
                print(
                    f"round {round_index + 1}: {name} {done[name]['wall_s']:.1f}s ({load_line()})",
                    flush=True,
                )
            print(format_table(done["baseline"], done["pipeline"], model, args), flush=True)
            if args.raw:
                done["raw"] = run_raw(args, requests, model, workdir, round_index)
                print(format_raw(done["raw"], done["pipeline"]), flush=True)
            measurements.append(
                {
                    name: {k: v for k, v in run.items() if k != "rows"} | summarize(run)
                    for name, run in done.items()
                    if name != "raw"
                }
                | ({"raw": done["raw"]} if "raw" in done else {})
                | {"outputs": compare_outputs(done["baseline"]["rows"], done["pipeline"]["rows"])}
            )
        print(format_medians(measurements), flush=True)
        print(format_share(args, requests, model), flush=True)
        if args.server_bin:
            from bench.server import main as server_main

            extra = ["--bench-bin", args.bench_bin] if args.bench_bin else []
            server_main(
                [str(requests), "--server-bin", args.server_bin, "--model", str(model), *extra]
            )
        print(load_line())
        if args.json:
            args.json.write_text(json.dumps(measurements, indent=2, default=str))
        return 0
    finally:
        if temp is not None:
            temp.cleanup()
