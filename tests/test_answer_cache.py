"""Repeated requests: a line that repeats an earlier line's request gets its answer without
a worker (``pipeline.answercache``), the same answer a worker gives, in a trace of its own."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import SAMPLE_QUERIES, exported_spans, read_jsonl, write_jsonl

from pipeline.answercache import AnswerCache
from pipeline.api import options_namespace
from pipeline.requests import Request
from workers.messages import ErrorInfo, Result
from workers.toolset import ToolChoice


def _repeated(tmp_path: Path, rounds: int = 3) -> tuple[Path, int]:
    """The sample requests ``rounds`` times over, each line its own id."""
    rows = read_jsonl(SAMPLE_QUERIES)[:12]
    lines = [{**row, "id": f"r{r}-{i}"} for r in range(rounds) for i, row in enumerate(rows)]
    return write_jsonl(tmp_path / "repeated.jsonl", lines), len(rows)


def _answers(results: list[dict]) -> dict[str, tuple]:
    return {
        r["id"]: (r["status"], orjson.dumps(r["calls"]), r["confidence"], str(r["ungrounded"]))
        for r in results
    }


def test_repeats_get_the_answer_a_worker_gives(run_cli, tmp_path):
    requests, unique = _repeated(tmp_path)
    trace_file = tmp_path / "spans.jsonl"
    cached = run_cli(
        requests,
        *("--workers", "1", "--traces", "file", "--traces-file", str(trace_file)),
        output=tmp_path / "cached.jsonl",
    )
    assert cached.returncode in (0, 1), cached.stderr
    plain = run_cli(
        requests, "--workers", "1", "--no-answer-cache", output=tmp_path / "plain.jsonl"
    )
    assert plain.returncode == cached.returncode, plain.stderr
    assert _answers(cached.results()) == _answers(plain.results())
    assert "repeats answered as before" not in plain.stderr

    by_id = {r["id"]: r for r in cached.results()}
    zero = {r["id"] for r in cached.results() if r["usage"]["prompt_tokens"] == 0}
    ok_first = {i for i in range(unique) if by_id[f"r0-{i}"]["status"] == "ok"}
    # Each ok request of the first round comes back twice; one worker answers in order,
    # so every repeat of an ok answer is already known when it is read, or in flight.
    assert zero and zero <= {f"r{r}-{i}" for r in (1, 2) for i in ok_first}
    assert f"{len(zero)} repeats answered as before" in cached.stderr

    spans = exported_spans(trace_file)
    roots = {s["attrs"]["needle.request.id"]: s for s in spans if s["name"] == "process_request"}
    assert set(roots) == set(by_id)  # one trace per request, repeats included
    assert len({s["traceId"] for s in roots.values()}) == len(roots)
    children = {s["traceId"] for s in spans if s.get("parentSpanId")}
    for request_id in zero:
        root = roots[request_id]
        assert root["attrs"]["needle.cached"] is True
        assert root["traceId"] not in children  # no worker touched it
        assert root["traceId"] == by_id[request_id]["trace_id"]


def _request(query: str = "hi", tools_key: str = "k", **options) -> Request:
    return Request(1, 1, query, [], tools_key, **options)


def _result(status: str = "ok") -> Result:
    error = None if status == "ok" else ErrorInfo("invalid_call", "no")  # type: ignore[arg-type]
    return Result(seq=1, worker_pid=1, status=status, calls=[], error=error)  # type: ignore[arg-type]


def test_the_cache_keys_on_all_that_decides_an_answer_and_keeps_ok_answers_only():
    cache = AnswerCache(size=2)
    cache.put(_request(), _result())
    assert cache.get(_request()) is not None
    assert cache.get(_request(query="hi!")) is None
    assert cache.get(_request(tools_key="other")) is None
    assert cache.get(_request(choice=ToolChoice("required"))) is None
    assert cache.get(_request(choice=ToolChoice(parallel=False))) is None
    assert cache.get(_request(history=[{"role": "user", "content": "x"}])) is None
    cache.put(_request(query="failed"), _result("error"))
    assert cache.get(_request(query="failed")) is None
    # At most ``size`` answers, the least recently used out first.
    cache.put(_request(query="b"), _result())
    assert cache.get(_request()) is not None  # used: "b" is now the oldest
    cache.put(_request(query="c"), _result())
    assert cache.get(_request(query="b")) is None
    assert cache.get(_request()) is not None and cache.get(_request(query="c")) is not None


def test_run_takes_answer_cache_as_a_keyword():
    """``run(..., answer_cache=False)`` is ``--no-answer-cache``."""
    assert options_namespace("in.jsonl", None, {}).answer_cache is True
    assert options_namespace("in.jsonl", None, {"answer_cache": False}).answer_cache is False
    with pytest.raises(ValueError, match="answer_cache must be True or False"):
        options_namespace("in.jsonl", None, {"answer_cache": "no"})
