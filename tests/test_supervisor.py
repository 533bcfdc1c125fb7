"""The supervisor in-process: the reader, a pool and the writer joined, with an
in-memory pool (no model, no processes), and the real process pool against a worker
program that breaks the protocol on purpose."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import anyio
import garbage_worker
import orjson
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from conftest import PROJECT_ROOT, read_jsonl, write_jsonl

from pipeline.config import FatalRunError, RunConfig, RunSummary
from pipeline.models import ModelRef
from pipeline.outcomes import Outcomes
from pipeline.processpool import ProcessPool
from pipeline.sink import ResumeRefused
from pipeline.supervisor import Supervisor
from pipeline.work import Pending
from workers.messages import ErrorInfo, Result

TOOLS = [{"name": "echo", "description": "Say it back.", "parameters": {"type": "object"}}]


class MemoryPool:
    """Answers every job in memory: a call named ``echo`` with the query as argument, or
    an error for a query starting with ``fail``. Jobs run concurrently, each after a
    random short delay, so they finish out of order."""

    def __init__(self, seed: int = 0) -> None:
        self.random = random.Random(seed)
        self.in_flight = 0
        self.most_in_flight = 0
        self.served: list[Any] = []
        self.drained = False

    async def serve(self, jobs: MemoryObjectReceiveStream[Pending], outcomes: Outcomes) -> None:
        async with jobs, anyio.create_task_group() as group:
            async for pending in jobs:
                group.start_soon(self._run, pending, outcomes, self.random.random() / 200)

    async def _run(self, pending: Pending, outcomes: Outcomes, delay: float) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            pending.attempts += 1
            outcomes.started(pending)
            await anyio.sleep(delay)
            job = pending.job()
            self.served.append(job.id)
            if job.query.startswith("fail"):
                reply = Result(job.seq, 1, "error", [], ErrorInfo("inference_error", job.query))
            else:
                calls = [{"name": "echo", "arguments": {"text": job.query}}]
                reply = Result(job.seq, 1, "ok", calls, None)
            outcomes.replied(pending, reply, 0, 1)
        finally:
            self.in_flight -= 1

    def drain(self) -> None:
        self.drained = True

    def kill_now(self) -> None:
        pass


class BrokenPool(MemoryPool):
    async def serve(self, jobs: MemoryObjectReceiveStream[Pending], outcomes: Outcomes) -> None:
        async with jobs:
            raise FatalRunError("no worker can start")


@pytest.fixture
def model(tmp_path: Path) -> ModelRef:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGUF not really a model")
    return ModelRef(path, "fake")


def config(model: ModelRef, source: Path, output: Path, **options: Any) -> RunConfig:
    options = {"workers": 1, "threads_per_worker": 1, **options}
    return RunConfig(str(source), str(output), model, **options)


def run(config: RunConfig, pool: Any) -> RunSummary:
    return anyio.run(Supervisor(config, pool).run)


def rows(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "query": f"say {i}", "tools": TOOLS} for i in range(count)]


def test_every_line_is_written_once_and_bad_lines_become_error_lines(model, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [orjson.dumps(row) for row in rows(30)]
    lines[3] = b"{not json"
    lines[7] = orjson.dumps({"id": "r1", "query": "again", "tools": TOOLS})  # duplicate id
    lines[9] = orjson.dumps({"id": "f", "query": "fail here", "tools": TOOLS})
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    pool = MemoryPool()
    summary = run(config(model, source, output), pool)
    results = read_jsonl(output)
    assert len(results) == 30 == summary.total
    assert len({orjson.dumps(r["id"]) for r in results}) == 30  # the duplicate's: "r1 (line 8)"
    by_line = {r["line"]: r for r in results}
    assert by_line[4]["error"]["type"] == "invalid_json"
    assert by_line[8]["error"]["type"] == "duplicate_id"
    assert by_line[10]["error"] == {"type": "inference_error", "message": "fail here"}
    assert by_line[1]["calls"] == [{"name": "echo", "arguments": {"text": "say 0"}}]
    assert summary.ok == 27 and summary.errors == 3 and summary.cancelled == 0
    assert dict(summary.error_types) == {"invalid_json": 1, "duplicate_id": 1, "inference_error": 1}
    assert len(pool.served) == 28  # error lines never reach the pool


def test_ordered_output_follows_the_input_though_jobs_finish_out_of_order(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(60))
    unordered = tmp_path / "unordered.jsonl"
    pool = MemoryPool(seed=1)
    run(config(model, source, unordered, window=16), pool)
    served_order = [orjson.dumps(i) for i in pool.served]
    assert served_order != sorted(served_order, key=lambda k: int(k.strip(b'"r')))
    ordered = tmp_path / "ordered.jsonl"
    run(config(model, source, ordered, window=16, ordered=True), MemoryPool(seed=1))
    assert [r["line"] for r in read_jsonl(ordered)] == list(range(1, 61))


@pytest.mark.parametrize("window", [1, 3, 8])
def test_the_window_bounds_what_is_in_flight(model, tmp_path, window):
    source = write_jsonl(tmp_path / "in.jsonl", rows(40))
    pool = MemoryPool()
    run(config(model, source, tmp_path / "out.jsonl", window=window), pool)
    assert pool.most_in_flight == window


def test_resume_runs_only_what_is_left(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(10))
    output = tmp_path / "out.jsonl"
    run(config(model, source, output), MemoryPool())
    source = write_jsonl(tmp_path / "in.jsonl", rows(10) + rows(5, prefix="new"))
    pool = MemoryPool()
    summary = run(config(model, source, output), pool)
    assert summary.skipped == 10 and summary.total == 5
    assert sorted(pool.served) == [f"new{i}" for i in range(5)]
    assert len(read_jsonl(output)) == 15
    with pytest.raises(ResumeRefused, match="max_tokens"):
        from workers.engine import DecodingSettings

        run(config(model, source, output, decoding=DecodingSettings(max_tokens=9)), MemoryPool())


def test_a_pool_that_cannot_run_ends_the_run(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(5))
    output = tmp_path / "out.jsonl"
    with pytest.raises(FatalRunError, match="no worker can start"):
        run(config(model, source, output), BrokenPool())
    assert read_jsonl(output) == []


FAULTS = ["not-json", "not-an-object", "missing-fields", "bad-status", "wrong-type", "wrong-seq"]


def test_a_worker_that_sends_garbage_is_replaced_and_its_request_retried(
    model, tmp_path, monkeypatch
):
    """Every kind of broken answer is a failed worker: the request runs again on a fresh
    one (or, broken every time, ends as worker_crashed) and the run goes on."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(garbage_worker.DIR_ENV, str(markers))
    queries = ["fine", *FAULTS, "always-garbage", "fine too"]
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": q, "query": q, "tools": TOOLS} for q in queries]
    )
    output = tmp_path / "out.jsonl"
    settings = config(model, source, output, workers=2, max_attempts=2, timeout_s=30)
    pool = ProcessPool(
        2,
        settings.init_message,
        max_attempts=2,
        timeout_s=30,
        command=[sys.executable, str(PROJECT_ROOT / "tests" / "garbage_worker.py")],
    )
    summary = run(settings, pool)
    results = {r["id"]: r for r in read_jsonl(output)}
    assert sorted(results) == sorted(queries)
    for query in ["fine", *FAULTS, "fine too"]:
        assert results[query]["status"] == "ok", results[query]
        assert results[query]["calls"][0]["name"] == query
    crashed = results["always-garbage"]["error"]
    assert crashed["type"] == "worker_crashed"
    assert "broke the protocol" in crashed["message"]
    assert "gave up after 2 attempts" in crashed["message"]
    # Each fault was really sent (a marker file); a job sent ahead behind a broken
    # answer may have broken its worker too before it was replaced, so count at least
    # the two workers always-garbage broke.
    assert sorted(path.name for path in markers.iterdir()) == sorted([*FAULTS, "always-garbage"])
    assert summary.worker_restarts >= 2
    assert not pool.live  # every worker process was reaped
