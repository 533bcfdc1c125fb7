"""``python -m bench --memory``: the supervisor's peak RSS on generated inputs of growing size."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import orjson

from bench.runs import PROJECT_ROOT, Watch, _env, load_line, pipeline_command

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
