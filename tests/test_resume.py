"""Resume: the same command finishes an interrupted run; other settings are refused."""

from __future__ import annotations

import os
import resource
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import test_reliability_support as support
from conftest import SAMPLE_TOOLS, write_jsonl
from test_reliability_support import Cli, comparable, read_output
from testmodel import write_test_model

from pipeline.sink import JsonlSink, OutputError, scan_existing_output

pytestmark = pytest.mark.slow


def test_resume_with_other_settings_is_refused(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows = support.many_requests(8, samples)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    assert start_cli(source, output, "-w", "1").wait() == 0
    before = output.read_bytes()

    refused = start_cli(source, output, "-w", "1", "--max-tokens", "100")
    assert refused.wait() == 2
    assert "max_tokens: 256 -> 100" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert output.read_bytes() == before

    other_model = tmp_path / "other.gguf"
    write_test_model(other_model, seed=1)
    refused = Cli(other_model, "refused", source, output, "-w", "1")
    assert refused.wait() == 2
    assert "model_sha256" in refused.stderr
    assert output.read_bytes() == before

    refused = start_cli(source, output, "-w", "1", "--tools", str(SAMPLE_TOOLS))
    assert refused.wait() == 2
    assert "default_tools_sha256" in refused.stderr
    assert output.read_bytes() == before

    for option, value, change in [
        ("--prompt-format", "chat", "prompt_format: 'needle' -> 'chat'"),
        ("--temperature", "0.5", "temperature: 0.0 -> 0.5"),
        ("--seed", "7", "seed: 0 -> 7"),
        ("--dispatch", "json:dumps", "dispatch: None -> 'json:dumps'"),
        ("--max-calls", "2", "max_calls: 4 -> 2"),
        ("--max-string-length", "0", "max_string_length: 128 -> 0"),
        ("--n-ctx", "256", "n_ctx: 0 -> 256"),
    ]:
        refused = start_cli(source, output, "-w", "1", option, value)
        assert refused.wait() == 2, (option, refused.stderr)
        assert change in refused.stderr, (option, refused.stderr)
        assert output.read_bytes() == before

    # --overwrite starts afresh with the new settings, and a resume then accepts them.
    fresh = start_cli(source, output, "-w", "1", "--max-tokens", "100", "--overwrite")
    assert fresh.wait() in (0, 1), fresh.stderr
    assert "resumed" not in fresh.stderr
    results = read_output(output)
    assert sorted(r["id"] for r in results) == sorted(r["id"] for r in rows)
    meta = orjson.loads(output.with_name(output.name + ".meta.json").read_bytes())
    assert meta["fingerprint"]["max_tokens"] == 100
    again = start_cli(source, output, "-w", "1", "--max-tokens", "100")
    assert again.wait() == 0, again.stderr
    assert read_output(output) == results


def test_output_not_written_by_the_pipeline_is_not_resumed(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", support.many_requests(3, samples))
    output = tmp_path / "out.jsonl"
    output.write_text("precious data\n")
    cli = start_cli(source, output, "-w", "1")
    assert cli.wait() == 2
    assert "not written by needle-pipeline" in cli.stderr
    assert output.read_text() == "precious data\n"


def test_torn_last_line_is_dropped_and_redone(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows = support.many_requests(30, samples)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    assert start_cli(source, output, "-w", "2").wait() == 0
    complete = read_output(output)

    # A crash mid-write: the last two results are lost and the one before is torn.
    lines = output.read_bytes().splitlines(keepends=True)
    output.write_bytes(b"".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])
    resumed = start_cli(source, output, "-w", "2")
    assert resumed.wait() == 0, resumed.stderr
    assert f"{len(rows) - 3} already done (resumed)" in resumed.stderr
    assert "3 requests" in resumed.stderr
    results = read_output(output)
    assert comparable(results) == comparable(complete)
    assert [r["id"] for r in results[:-3]] == [r["id"] for r in complete[:-3]]

    # Once complete, the same command has nothing left to do.
    before = output.read_bytes()
    done = start_cli(source, output, "-w", "1")
    assert done.wait() == 0, done.stderr
    assert output.read_bytes() == before
    assert f"{len(rows)} already done (resumed)" in done.stderr


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    marker = f"HANG-{uuid.uuid4().hex[:8]}"
    rows = support.many_requests(10, samples)
    rows[3]["query"] += f" {marker}"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    env = {support.HANG_MARKER_ENV: marker}
    first = start_cli(source, output, "-w", "1", "--timeout", "600", "--grace", "0", env=env)
    first.wait_for_lines(3)
    before = output.read_bytes()

    for extra in ((), ("--overwrite",)):
        second = start_cli(source, output, "-w", "1", *extra)
        assert second.wait() == 1
        assert "is being written by another run" in second.stderr
        assert "Traceback" not in second.stderr
    assert output.read_bytes() == before

    first.signal(signal.SIGTERM)
    assert first.wait() == 143, first.stderr
    third = start_cli(source, output, "-w", "1")  # the lock went with the first run
    assert third.wait() == 0, third.stderr
    assert sorted(r["id"] for r in read_output(output)) == sorted(r["id"] for r in rows)


def _record(request_id: object, line: int, error_type: str | None = None) -> bytes:
    error = {"type": error_type, "message": f"line {line}: ..."} if error_type else None
    status = "error" if error_type else "ok"
    return orjson.dumps({"id": request_id, "line": line, "status": status, "error": error}) + b"\n"


def test_scan_finds_done_requests_by_id_and_id_less_error_lines_by_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(
        _record("a", 1)
        + _record(2, 2, "invalid_json")  # no id of its own: id is the line number
        + _record("a", 3, "duplicate_id")
        + _record(4, 4, "missing_query")  # a request id (the line number) all the same
        + _record(7, 5)
        + b'{"id": "torn", "line": 6, "sta'
    )
    state = scan_existing_output(path)
    assert state.lines == 5
    assert state.done_lines == {2, 3}
    assert "a" in state.done_ids and 4 in state.done_ids and 7 in state.done_ids
    assert 2 not in state.done_ids  # a later line with id 2 is still to do
    assert state.dropped_torn_bytes == len(b'{"id": "torn", "line": 6, "sta')
    assert path.read_bytes().endswith(_record(7, 5))


def test_a_failed_write_leaves_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(str(path))
    sink.open({"model_sha256": "x"}, overwrite=False)
    sink.write([_record("a", 1)])
    whole = path.stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (whole + 10, hard))
    try:
        with pytest.raises(OutputError, match="File too large"):
            sink.write([_record("b", 2), _record("c", 3)])  # 10 bytes fit, then EFBIG
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        sink.close()
    assert os.path.getsize(path) == whole
    assert read_output(path) == [orjson.loads(_record("a", 1))]


def test_exit_status_of_a_resume_counts_the_earlier_runs_errors(run_cli, tmp_path):
    from conftest import sample_tools

    source = write_jsonl(
        tmp_path / "in.jsonl",
        [{"id": "good", "query": "dim the lights", "tools": sample_tools()}, {"id": "bad"}],
    )
    first = run_cli(source, "--workers", "1")
    assert first.returncode == 1, first.stderr
    again = run_cli(source, "--workers", "1")
    assert again.returncode == 1, again.stderr
    assert "1 errors from the earlier run" in again.stderr
    assert len(again.results()) == 2


def test_retry_errors_redoes_only_the_error_lines(run_cli, tmp_path):
    from conftest import sample_tools

    rows = [
        {"id": "a", "query": "dim the lights", "tools": sample_tools()},
        {"id": "b"},  # no query: an error line
        {"id": "c", "query": "play jazz", "tools": sample_tools()},
        b"{not json",  # a line error (resumed by its line number)
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in rows))
    source.write_bytes(source.read_bytes().replace(b"}{", b"}\n{") + b"\n")
    first = run_cli(source, "--workers", "1")
    assert first.returncode == 1, first.stderr
    before = {line["id"]: line for line in first.results()}
    assert before["b"]["status"] == "error" and before[4]["status"] == "error"

    # The user fixes both lines and retries the errors: the ok lines stay as they were.
    fixed = [rows[0], {"id": "b", "query": "what time is it", "tools": sample_tools()}, rows[2]]
    write_jsonl(source, [*fixed, {"id": "d", "query": "hello", "tools": sample_tools()}])
    again = run_cli(source, "--workers", "1", "--retry-errors")
    assert again.returncode in (0, 1), again.stderr
    assert "2 errors of the earlier run retried" in again.stderr
    after = again.results()
    assert sorted(str(line["id"]) for line in after) == ["a", "b", "c", "d"]
    by_id = {line["id"]: line for line in after}
    assert by_id["a"] == before["a"] and by_id["c"] == before["c"]  # not redone
    # b was answered this time (the test model may still cut an answer short)
    assert by_id["b"]["line"] == 2 and (by_id["b"]["error"] or {}).get("type") != "missing_query"
