"""No span lost when a worker is replaced or the pipeline is stopped; sampling decided at
the root and honoured by the workers. These runs use the OTLP/JSON file exporter (every
process appends to one file), which is what an offline batch job would use."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from typing import Any

import fault_engine
import orjson
from conftest import (
    PROJECT_ROOT,
    SAMPLE_QUERIES,
    cli_env,
    exported_spans,
    read_jsonl,
    write_jsonl,
)

HANG_MARKER = "zz-hang-here-zz"
# Spans leave a process only when it flushes on its way out (no 0.5 s batches), so these
# tests see exactly what the exit paths deliver.
FLUSH_ONLY_AT_EXIT = {"OTEL_BSP_SCHEDULE_DELAY": "600000"}


def traces_of(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for span in spans:
        traces[span["traceId"]].append(span)
    return traces


def assert_complete(trace: list[dict[str, Any]], status: str) -> None:
    """A whole request: its root, and the worker's prompt and inference spans at least
    (parse and validate too when it succeeded), all parented inside the trace."""
    ids = {span["spanId"] for span in trace}
    roots = [span for span in trace if not span.get("parentSpanId")]
    assert len(roots) == 1
    assert all(span["parentSpanId"] in ids for span in trace if span is not roots[0])
    names = {span["name"] for span in trace}
    assert {"process_request", "prompt"} <= names
    assert any(name.startswith("text_completion ") for name in names)
    if status == "ok":
        assert {"parse", "validate"} <= names


def sample_rows(count: int) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in SAMPLE_QUERIES.read_bytes().splitlines()[:count]]


def test_replaced_worker_flushes_its_spans(run_cli, tmp_path):
    """A hung worker is replaced (SIGTERM, then SIGKILL after a grace period): the spans
    of the requests it had already answered still reach the exporter."""
    rows = sample_rows(12)
    rows.insert(8, {**rows[0], "id": "hangs", "query": f"{HANG_MARKER} set a timer"})
    requests = write_jsonl(tmp_path / "requests.jsonl", rows)
    trace_file = tmp_path / "spans.jsonl"
    run = run_cli(
        requests,
        "--workers",
        "1",
        "--timeout",
        "8",
        "--traces",
        "file",
        "--traces-file",
        str(trace_file),
        "--engine",
        fault_engine.SPEC,
        env={fault_engine.HANG_MARKER_ENV: HANG_MARKER, **FLUSH_ONLY_AT_EXIT},
        timeout=180,
    )
    assert run.returncode == 1, run.stderr
    results = {r["id"]: r for r in run.results()}
    assert len(results) == len(rows)
    assert results["hangs"]["error"]["type"] == "timeout"
    traces = traces_of(exported_spans(trace_file))
    replaced_pids = set()
    for result in results.values():
        trace = traces[result["trace_id"]]
        if result["id"] == "hangs":
            # The root, and the prompt stage it hung in (ended as the worker was stopped).
            (root,) = [span for span in trace if not span.get("parentSpanId")]
            assert root["status"]["code"] == "STATUS_CODE_ERROR"
            assert [span["name"] for span in trace if span is not root] in ([], ["prompt"])
            assert any(e["name"] == "exception" for e in root.get("events", []))
            continue
        assert_complete(trace, result["status"])
        root = next(span for span in trace if not span.get("parentSpanId"))
        replaced_pids.add(root["attrs"]["needle.worker.pid"])
    # Requests before the hang ran on the worker that was replaced, the rest on another.
    assert len(replaced_pids) == 2


def test_sigterm_of_the_pipeline_loses_no_span(test_model, tmp_path):
    """SIGTERM mid-run: every written result has its whole trace, and the request that was
    still running is exported too, as cancelled."""
    rows = sample_rows(6)
    rows.append({**rows[0], "id": "stuck", "query": f"{HANG_MARKER} set a timer"})
    rows += [{**row, "id": f"after-{row['id']}"} for row in sample_rows(3)]
    requests = write_jsonl(tmp_path / "requests.jsonl", rows)
    output = tmp_path / "results.jsonl"
    trace_file = tmp_path / "spans.jsonl"
    command = [sys.executable, "-m", "pipeline", str(requests), "-o", str(output)]
    command += ["--model", str(test_model), "--workers", "1", "--grace", "1"]
    command += ["--timeout", "300", "--traces", "file", "--traces-file", str(trace_file)]
    command += ["--engine", fault_engine.SPEC]
    command += ["--no-answer-cache"]  # the "after-" repeats must wait for the worker too
    hangs = tmp_path / "hangs"
    hangs.mkdir()
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=cli_env(
            {
                fault_engine.HANG_MARKER_ENV: HANG_MARKER,
                fault_engine.HANG_DIR_ENV: str(hangs),
                **FLUSH_ONLY_AT_EXIT,
            }
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until it is stuck on the hanging line
            if fault_engine.hung_workers(hangs) and len(read_jsonl(output)) >= 6:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        else:
            raise AssertionError("the run never reached the hanging request")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 143, stderr
    results = read_jsonl(output)
    assert len(results) == 6
    traces = traces_of(exported_spans(trace_file))
    for result in results:
        assert_complete(traces[result["trace_id"]], result["status"])
    cancelled = [
        span
        for span in exported_spans(trace_file)
        if span["name"] == "process_request" and span["attrs"].get("needle.status") == "cancelled"
    ]
    # The running request, and any read after it, end as cancelled (a resume redoes them).
    cancelled_ids = [span["attrs"]["needle.request.id"] for span in cancelled]
    assert "stuck" in cancelled_ids
    assert set(cancelled_ids) <= {row["id"] for row in rows[6:]}
    assert len(cancelled_ids) == len(set(cancelled_ids))


def test_sampling_is_decided_at_the_root(run_cli, tmp_path):
    """With a 50% ratio sampler, each request's trace is exported whole or not at all:
    the workers follow the root's decision from the traceparent."""
    trace_file = tmp_path / "spans.jsonl"
    run = run_cli(
        SAMPLE_QUERIES,
        "--workers",
        "2",
        "--traces",
        "file",
        "--traces-file",
        str(trace_file),
        env={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr
    results = run.results()
    # Mostly answered (the random test model truncates a few): the sampled traces below
    # must include whole successful requests, not only error lines.
    assert sum(r["status"] == "ok" for r in results) >= len(results) * 3 // 4
    traces = traces_of(exported_spans(trace_file))
    sampled = [r for r in results if r["trace_id"] in traces]
    assert 0 < len(sampled) < len(results)
    assert any(r["status"] == "ok" for r in sampled)
    assert any(r["status"] == "ok" for r in results if r["trace_id"] not in traces)
    assert set(traces) == {r["trace_id"] for r in sampled}
    for result in sampled:
        assert_complete(traces[result["trace_id"]], result["status"])
    assert all(len(r["trace_id"]) == 32 for r in results)  # ids even when not sampled


def test_console_traces_show_every_process_on_stderr(run_cli, tmp_path):
    """``--traces console``: the supervisor's and the workers' spans, one JSON object per
    line on stderr (stdout may carry the results)."""
    requests = write_jsonl(tmp_path / "requests.jsonl", sample_rows(4))
    run = run_cli(requests, "--workers", "1", "--traces", "console", "-o", "-", timeout=120)
    assert run.returncode in (0, 1), run.stderr
    results = [orjson.loads(line) for line in run.stdout.splitlines()]
    assert len(results) == 4
    spans = [orjson.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    names = collections.Counter(span["name"] for span in spans)
    assert names["process_request"] == 4
    assert names["prompt"] == 4
    trace_ids = {span["context"]["trace_id"][2:] for span in spans}
    assert trace_ids == {r["trace_id"] for r in results}
