"""The benchmark's runs: inputs, watching processes (peak RSS, first line), the baseline
and the pipeline CLI, timed, and comparing their outputs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.results import read_results
from workers.telemetry.tracefile import read_spans

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


def status_kb(pid: int, field_name: str) -> int | None:
    """A kB field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), or None."""
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
                peak = status_kb(pid, "VmHWM")
                if peak is not None:
                    self.peak_kb[pid] = max(peak, self.peak_kb.get(pid, 0))
            if now - last_sample >= 1.0:
                rss = status_kb(self.pid, "VmRSS")
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
    if not path.exists():
        return []
    return [
        {
            "name": found.span["name"],
            "pid": int(found.resource.get("process.pid", 0)),
            "role": found.resource.get("needle.process.role"),
            "start": int(found.span["startTimeUnixNano"]) / 1e9,
            "end": int(found.span["endTimeUnixNano"]) / 1e9,
            "attributes": found.attributes,
        }
        for found in read_spans(path)
    ]


def pipeline_command(
    args: argparse.Namespace, requests: Path, out: Path, model: Path, *extra: str
) -> list[str]:
    """The pipeline CLI on ``requests``, quiet, fresh output, with --workers and any
    --pipeline-arg the benchmark was given. Every request goes to a worker, as in the
    baseline, unless the benchmark was given --answer-cache (repeats get the earlier
    answer: pipeline.answercache)."""
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
    if not args.answer_cache:
        command.append("--no-answer-cache")
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


def load_line() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""
