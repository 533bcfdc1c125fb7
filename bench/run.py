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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.results import read_results

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = PROJECT_ROOT / "inputs" / "queries.jsonl"


# -- inputs ------------------------------------------------------------------------------


def expand_requests(source: Path, count: int, target: Path) -> Path:
    """Repeat ``source``'s lines up to ``count`` lines, giving each copy a fresh id."""
    rows = [orjson.loads(line) for line in source.read_bytes().splitlines() if line.strip()]
    with target.open("wb") as out:
        for index in range(count):
            row = dict(rows[index % len(rows)])
            row["id"] = f"{row.get('id', index % len(rows))}#{index // len(rows)}"
            out.write(orjson.dumps(row) + b"\n")
    return target


# -- watching processes ------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
    except OSError:
        pass
    return found


@dataclass
class Watch:
    """Peak RSS of a process and its children, and when ``output`` first got a line."""

    pid: int
    output: Path
    started: float
    interval_s: float = 0.02
    peak_kb: dict[int, int] = field(default_factory=dict)
    first_seen: dict[int, float] = field(default_factory=dict)
    samples: list[tuple[float, int]] = field(default_factory=list)
    first_line_s: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self) -> None:
        last_sample = 0.0
        while not self._stop.is_set():
            now = time.perf_counter()
            for pid in [self.pid, *_children(self.pid)]:
                self.first_seen.setdefault(pid, now - self.started)
                peak = _status_kb(pid, "VmHWM")
                if peak is not None:
                    self.peak_kb[pid] = max(peak, self.peak_kb.get(pid, 0))
            if now - last_sample >= 1.0:
                rss = _status_kb(self.pid, "VmRSS")
                if rss is not None:
                    self.samples.append((now - self.started, rss))
                last_sample = now
            if self.first_line_s is None:
                try:
                    if self.output.stat().st_size > 0:
                        self.first_line_s = now - self.started
                except OSError:
                    pass
            self._stop.wait(self.interval_s)


# -- runs --------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    return env


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _results(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def run_baseline(args: argparse.Namespace, requests: Path, model: Path, out: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.baseline",
        str(requests),
        str(out),
        "--model",
        str(model),
        "--threads",
        str(args.baseline_threads),
        "--max-tokens",
        str(args.max_tokens),
        "--prompt-format",
        args.prompt_format,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=_env(), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    watch = Watch(process.pid, out, started).start()
    stdout, _ = process.communicate()
    wall = time.perf_counter() - started
    watch.stop()
    if process.returncode != 0:
        raise RuntimeError(f"baseline failed with status {process.returncode}")
    stats = json.loads(stdout.decode().strip().splitlines()[-1])
    rows = _results(out)
    return {
        "name": "baseline",
        "wall_s": wall,
        "rows": rows,
        "first_line_s": watch.first_line_s,
        "load_ms": [stats["load_s"] * 1000],
        "model_s": stats["model_s"],
        "reused": stats["reused"],
        "rss_kb": {"process": watch.peak_kb.get(process.pid, stats["peak_rss_kb"])},
        "threads": stats["threads"],
    }


def _trace_spans(path: Path) -> list[dict[str, Any]]:
    spans = []
    if not path.exists():
        return spans
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        for resource_spans in orjson.loads(line).get("resourceSpans", []):
            attributes = {
                a["key"]: next(iter(a["value"].values()))
                for a in resource_spans.get("resource", {}).get("attributes", [])
            }
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    span_attributes = {
                        a["key"]: next(iter(a["value"].values()))
                        for a in span.get("attributes", [])
                    }
                    spans.append(
                        {
                            "name": span["name"],
                            "pid": int(attributes.get("process.pid", 0)),
                            "role": attributes.get("needle.process.role"),
                            "start": int(span["startTimeUnixNano"]) / 1e9,
                            "end": int(span["endTimeUnixNano"]) / 1e9,
                            "attributes": span_attributes,
                        }
                    )
    return spans


def pipeline_command(
    args: argparse.Namespace, requests: Path, out: Path, model: Path, *extra: str
) -> list[str]:
    """The pipeline CLI on ``requests``, quiet, fresh output, with --workers and any
    --pipeline-arg the benchmark was given."""
    command = [
        sys.executable,
        "-m",
        "pipeline",
        str(requests),
        "-o",
        str(out),
        "--overwrite",
        "--model",
        str(model),
        "-q",
        "--prompt-format",
        args.prompt_format,
        *extra,
    ]
    if args.workers:
        command += ["--workers", str(args.workers)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return command + list(args.pipeline_arg)


def timed_pipeline(command: list[str], out: Path, env: dict[str, str]) -> tuple[float, Watch, int]:
    """Run the pipeline CLI, watched (peak RSS, first result line): wall s, watch, exit."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL)
    watch = Watch(process.pid, out, started).start()
    process.wait()
    wall = time.perf_counter() - started
    watch.stop()
    return wall, watch, process.returncode


def run_pipeline(args: argparse.Namespace, requests: Path, model: Path, out: Path) -> dict:
    traces = out.with_suffix(".traces.jsonl")
    traces.unlink(missing_ok=True)
    command = pipeline_command(
        args,
        requests,
        out,
        model,
        "--max-tokens",
        str(args.max_tokens),
        "--traces",
        "file",
        "--traces-file",
        str(traces),
    )
    if args.threads:
        command += ["--threads", str(args.threads)]
    started_unix = time.time()
    wall, watch, returncode = timed_pipeline(command, out, _env())
    if returncode not in (0, 1):
        raise RuntimeError(f"pipeline failed with status {returncode}")
    rows = [result.to_dict() for result in read_results(out)]  # the result-line codec
    spans = _trace_spans(traces)
    llm = [s for s in spans if s["attributes"].get("openinference.span.kind") == "LLM"]
    worker_spans: dict[int, list[dict[str, Any]]] = {}
    for span in spans:
        if span["role"] == "worker":
            worker_spans.setdefault(span["pid"], []).append(span)
    model_s = sum(s["end"] - s["start"] for s in llm)
    busy_window_s = sum(
        max(s["end"] for s in group) - min(s["start"] for s in group)
        for group in worker_spans.values()
    )
    load_ms = []
    for pid, group in worker_spans.items():
        seen = watch.first_seen.get(pid)
        if seen is not None:
            load_ms.append((min(s["start"] for s in group) - started_unix - seen) * 1000)
    worker_pids = [pid for pid in watch.peak_kb if pid != watch.pid]

    def total(key: str) -> float:
        return sum(float(s["attributes"].get(key, 0)) for s in llm)

    return {
        "name": "pipeline",
        "grammar_s": total("needle.grammar.ms") / 1000,
        "forced_tokens": int(total("needle.completion.forced_tokens")),
        "decode_calls": int(total("needle.completion.decode_calls")),
        "span_completion_tokens": int(total("gen_ai.usage.output_tokens")),
        "wall_s": wall,
        "rows": rows,
        "first_line_s": watch.first_line_s,
        "load_ms": load_ms,
        "model_s": model_s,
        "busy_window_s": busy_window_s,
        "workers": len(worker_spans),
        "reused": sum(
            int(s["attributes"].get("needle.prompt.reused_prefix_tokens", 0)) for s in llm
        ),
        "rss_kb": {
            "supervisor": watch.peak_kb.get(watch.pid, 0),
            "workers": [watch.peak_kb[pid] for pid in worker_pids],
        },
        "spans": len(spans),
    }


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


def _without_replacement_chars(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\ufffd", "")
    if isinstance(value, list):
        return [_without_replacement_chars(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_replacement_chars(v) for k, v in value.items()}
    return value


def compare_outputs(baseline: list[dict], pipeline: list[dict]) -> dict[str, Any]:
    """Requests whose status and calls are the same in both outputs.

    ``create_completion`` drops the bytes of invalid UTF-8 sequences from its text while the
    engine decodes them as U+FFFD; a random-weight test model emits such byte tokens, so
    answers that differ only by U+FFFD characters (same tokens) are counted separately.
    """

    def key(row: dict, loose: bool = False) -> Any:
        calls = _without_replacement_chars(row["calls"]) if loose else row["calls"]
        return (row["status"], orjson.dumps(calls, option=orjson.OPT_SORT_KEYS))

    theirs = {row["id"]: row for row in pipeline}
    exact = loose = 0
    differing = []
    for row in baseline:
        other = theirs.get(row["id"])
        if other is not None and key(other) == key(row):
            exact += 1
        elif other is not None and key(other, True) == key(row, True):
            loose += 1
        else:
            differing.append(row["id"])
    return {"total": len(baseline), "exact": exact, "fffd_only": loose, "differ": differing}


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


def load_line() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


# -- memory mode -------------------------------------------------------------------------

MEMORY_TOOLS = [
    {
        "name": "echo",
        "description": "Echo.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
]


MEMORY_QUERIES = [b"set a timer", b"turn off the lights", b"play jazz", b"weather in Paris"]


def write_memory_input(path: Path, count: int) -> None:
    """``count`` requests as JSONL, or as a Parquet table (``id``, ``query``) for a
    ``.parquet`` path, written 100,000 rows at a time."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("id", pa.string()), ("query", pa.string())])
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, count, 100_000):
                rows = range(start, min(count, start + 100_000))
                ids = [f"r{i}" for i in rows]
                texts = [f"{MEMORY_QUERIES[i % 4].decode()} {i}" for i in rows]
                writer.write_table(pa.table({"id": ids, "query": texts}, schema=schema))
        return
    with path.open("wb", buffering=1 << 20) as out:
        for index in range(count):
            query = MEMORY_QUERIES[index % len(MEMORY_QUERIES)]
            out.write(b'{"id":"r%d","query":"%s %d"}\n' % (index, query, index))


def run_memory(args: argparse.Namespace, model: Path, workdir: Path) -> int:
    tools = workdir / "tools.json"
    tools.write_bytes(orjson.dumps(MEMORY_TOOLS))
    results = []
    for count in args.memory_sizes:
        requests = workdir / f"memory-{count}.{args.memory_format}"
        write_memory_input(requests, count)
        out = workdir / f"memory-{count}.results.jsonl"
        command = pipeline_command(
            args,
            requests,
            out,
            model,
            "--tools",
            str(tools),
            "--max-tokens",
            str(args.memory_max_tokens),
            *(["--id-column", "id"] if args.memory_format == "parquet" else []),
        )
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=_env(), stdin=subprocess.DEVNULL)
        watch = Watch(process.pid, out, started, interval_s=0.2).start()
        process.wait()
        wall = time.perf_counter() - started
        watch.stop()
        lines = sum(1 for _ in out.open("rb"))
        peak = watch.peak_kb.get(process.pid, 0) / 1024
        print(
            f"{count:>9} requests: supervisor peak RSS {peak:7.1f} MiB; {lines} result lines; "
            f"{wall:.0f}s ({lines / wall:.0f} req/s); RSS samples (s, MiB): "
            + ", ".join(
                f"{t:.0f}:{kb / 1024:.0f}"
                for t, kb in watch.samples[:: max(1, len(watch.samples) // 8)]
            ),
            flush=True,
        )
        results.append((count, peak))
        requests.unlink()
        out.unlink()
    if len(results) >= 2:
        (small, small_mb), (large, large_mb) = results[0], results[-1]
        growth = large_mb - small_mb
        verdict = "within" if growth <= 50 else "NOT within"
        print(
            f"supervisor peak RSS {large} vs {small} requests: {growth:+.1f} MiB ({verdict} 50 MB)"
        )
    print(load_line())
    return 0


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
        print(load_line())
        if args.json:
            args.json.write_text(json.dumps(measurements, indent=2, default=str))
        return 0
    finally:
        if temp is not None:
            temp.cleanup()
