"""Faults the pipeline survives: killed and crashing workers, hangs, signals, full disks.

Every test runs the real CLI with real worker processes and the generated test model,
and checks afterwards that no worker process outlived its run.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import test_reliability_support as support
from conftest import exported_spans, write_jsonl
from test_reliability_support import Cli, comparable, read_output

pytestmark = pytest.mark.slow


def input_ids(rows: list[dict]) -> list[str]:
    return [row["id"] for row in rows]


def test_workers_killed_with_sigkill_lose_nothing(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows = support.many_requests(400, samples)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    cli = start_cli(source, output, "-w", "2", "--timeout", "120")
    killed = []
    for checkpoint in (40, 120, 200):
        cli.wait_for_lines(checkpoint)
        workers = support.worker_pids(cli.pid)
        assert workers, "no worker processes found under the supervisor"
        victim = workers[len(killed) % len(workers)]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
    code = cli.wait()
    assert code in (0, 1), cli.stderr
    results = read_output(output)
    assert sorted(r["id"] for r in results) == sorted(input_ids(rows))
    assert len(results) == len(rows)  # each exactly once
    assert "worker restart" in cli.stderr
    # A kill hits at most one request per worker; only a request hit twice may fail.
    failed = [r for r in results if r["status"] != "ok"]
    assert len(failed) <= len(killed), failed
    assert all(r["error"]["type"] == "worker_crashed" for r in failed)


def test_request_that_always_crashes_its_worker_becomes_worker_crashed(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    marker = f"CRASH-{uuid.uuid4().hex[:8]}"
    rows = support.many_requests(40, samples)
    rows[17]["query"] = f"{rows[17]['query']} {marker}"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    cli = start_cli(source, output, "-w", "2", env={support.CRASH_MARKER_ENV: marker})
    assert cli.wait() == 1, cli.stderr
    results = {r["id"]: r for r in read_output(output)}
    assert sorted(results) == sorted(input_ids(rows))
    crashed = results.pop(rows[17]["id"])
    assert crashed["status"] == "error"
    assert crashed["error"]["type"] == "worker_crashed"
    assert "SIGSEGV" in crashed["error"]["message"]
    assert "2 attempts" in crashed["error"]["message"]
    assert all(r["status"] == "ok" for r in results.values())
    assert "worker_crashed 1" in cli.stderr
    assert "2 worker restarts" in cli.stderr


def test_production_workers_have_no_crash_switch(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    """Faults come only from the test engine: the marker variable alone does nothing."""
    rows = support.many_requests(5, samples)
    rows[2]["query"] += " CRASH-ME"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    env = {support.CRASH_MARKER_ENV: "CRASH-ME"}
    cli = start_cli(source, tmp_path / "out.jsonl", "-w", "1", env=env, inject_faults=False)
    assert cli.wait() == 0, cli.stderr
    assert all(r["status"] == "ok" for r in read_output(tmp_path / "out.jsonl"))


def test_hanging_request_times_out_and_the_run_goes_on(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    marker = f"HANG-{uuid.uuid4().hex[:8]}"
    rows = support.many_requests(30, samples)
    rows[5]["query"] += f" {marker}"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    cli = start_cli(
        source, output, "-w", "2", "--timeout", "6", env={support.HANG_MARKER_ENV: marker}
    )
    assert cli.wait() == 1, cli.stderr
    results = {r["id"]: r for r in read_output(output)}
    assert sorted(results) == sorted(input_ids(rows))
    hung = results.pop(rows[5]["id"])
    assert hung["error"]["type"] == "timeout"
    assert "no answer within 6s" in hung["error"]["message"]
    assert all(r["status"] == "ok" for r in results.values())


def test_prompt_longer_than_the_context_is_an_error_line(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows = support.many_requests(12, samples)
    rows[4]["query"] = "please " * 1500
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    cli = start_cli(source, output, "-w", "1", "--n-ctx", "1024")
    assert cli.wait() == 1, cli.stderr
    results = {r["id"]: r for r in read_output(output)}
    assert sorted(results) == sorted(input_ids(rows))
    long = results.pop(rows[4]["id"])
    assert long["error"]["type"] == "context_overflow"
    assert long["usage"]["completion_tokens"] == 0
    assert all(r["status"] == "ok" for r in results.values())


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_the_run_and_the_same_command_finishes_it(
    tmp_path: Path,
    start_cli: Callable[..., Cli],
    samples: tuple[dict, ...],
    signum: int,
    exit_code: int,
) -> None:
    rows = support.many_requests(300 if signum == signal.SIGTERM else 150, samples)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    args = ("-w", "2")
    reference = start_cli(source, tmp_path / "reference.jsonl", *args)
    assert reference.wait() == 0, reference.stderr
    expected = comparable(read_output(tmp_path / "reference.jsonl"))

    output = tmp_path / "out.jsonl"
    first = start_cli(source, output, *args)
    first.wait_for_lines(30)
    first.signal(signum)
    assert first.wait() == exit_code, first.stderr
    assert signal.Signals(signum).name in first.stderr
    partial = read_output(output)  # whole lines only
    assert 30 <= len(partial) < len(rows), "the run was not interrupted"
    assert len({r["id"] for r in partial}) == len(partial)

    second = start_cli(source, output, *args)
    assert second.wait() == 0, second.stderr
    assert "already done (resumed)" in second.stderr
    assert comparable(read_output(output)) == expected


def test_second_signal_exits_at_once_with_valid_output(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    marker = f"HANG-{uuid.uuid4().hex[:8]}"
    rows = support.many_requests(60, samples)
    # Rows 20 to 29 all hang: more than the two workers can hold (each holds at most two
    # jobs), so both hang and nothing after row 19 is written.
    for index in range(20, 30):
        rows[index]["query"] += f" {marker}"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    hangs = tmp_path / "hangs"
    hangs.mkdir()
    env = {support.HANG_MARKER_ENV: marker, support.HANG_DIR_ENV: str(hangs)}
    cli = start_cli(source, output, "-w", "2", "--timeout", "600", "--grace", "600", env=env)
    support.wait_for(lambda: support.hung_workers(hangs) == 2, 180, "both workers to hang")
    cli.signal(signal.SIGTERM)
    time.sleep(1.0)
    assert cli.process.poll() is None, "the graceful stop should still wait for the hung requests"
    sent = time.monotonic()
    cli.signal(signal.SIGTERM)
    assert cli.wait(timeout=60) == 143, cli.stderr
    assert time.monotonic() - sent < 30
    partial = read_output(output)
    assert len(partial) == 20
    assert all(r["status"] == "ok" for r in partial)

    # The same command (without the hang switch) finishes the run.
    again = start_cli(source, output, "-w", "2")
    assert again.wait() == 0, again.stderr
    results = read_output(output)
    assert sorted(r["id"] for r in results) == sorted(input_ids(rows))


def test_requests_still_running_after_the_grace_period_are_left_for_a_resume(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    marker = f"HANG-{uuid.uuid4().hex[:8]}"
    rows = support.many_requests(40, samples)
    rows[10]["query"] += f" {marker}"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    hangs = tmp_path / "hangs"
    hangs.mkdir()
    env = {support.HANG_MARKER_ENV: marker, support.HANG_DIR_ENV: str(hangs)}
    cli = start_cli(source, output, "-w", "1", "--timeout", "600", "--grace", "2", env=env)
    support.wait_for(lambda: support.hung_workers(hangs) == 1, 180, "the worker to hang")
    cli.wait_for_lines(10)
    sent = time.monotonic()
    cli.signal(signal.SIGTERM)
    assert cli.wait(timeout=120) == 143, cli.stderr
    assert time.monotonic() - sent < 60
    assert "Traceback" not in cli.stderr
    assert "left for a resume" in cli.stderr
    partial = read_output(output)
    assert [r["id"] for r in partial] == input_ids(rows)[:10]

    again = start_cli(source, output, "-w", "1")
    assert again.wait() == 0, again.stderr
    results = read_output(output)
    assert sorted(r["id"] for r in results) == sorted(input_ids(rows))


def test_input_from_a_pipe_is_handled_as_it_arrives_and_a_signal_stops_at_once(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows = support.many_requests(5, samples)
    output = tmp_path / "out.jsonl"
    cli = start_cli(Path("-"), output, "-w", "1", stdin=subprocess.PIPE)
    assert cli.process.stdin is not None
    cli.process.stdin.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    cli.process.stdin.flush()  # and the pipe stays open: more input may come
    cli.wait_for_lines(len(rows))
    sent = time.monotonic()
    cli.signal(signal.SIGTERM)
    assert cli.wait(timeout=60) == 143, cli.stderr
    assert time.monotonic() - sent < 30
    assert "Fatal Python error" not in cli.stderr
    assert [r["id"] for r in read_output(output)] == input_ids(rows)


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_output_that_cannot_be_written_stops_cleanly_and_stays_whole(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows = support.many_requests(150, samples)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    # Files may grow to 10 kB (writes beyond fail with EFBIG, as on a full disk); the
    # limit falls inside a line, so the failing write is a partial one.
    cli = start_cli(source, output, "-w", "2", preexec_fn=_limit_file_size(10_000 + 77))
    assert cli.wait() == 1, cli.stderr
    assert "cannot write output" in cli.stderr
    assert "Traceback" not in cli.stderr
    partial = read_output(output)  # whole lines only: the torn write was cut off
    assert 0 < len(partial) < len(rows)
    assert len({r["id"] for r in partial}) == len(partial)

    again = start_cli(source, output, "-w", "2")
    assert again.wait() == 0, again.stderr
    results = read_output(output)
    assert sorted(r["id"] for r in results) == sorted(input_ids(rows))


def test_output_path_that_cannot_be_created_is_a_clean_error(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", support.many_requests(3, samples))
    (tmp_path / "a-file").write_text("not a directory\n")
    cli = start_cli(source, tmp_path / "a-file" / "out.jsonl", "-w", "1")
    assert cli.wait() == 1
    assert "cannot open output" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_ordered_output_follows_input_order(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    rows: list[object] = list(support.many_requests(60, samples))
    lines = [orjson.dumps(row) for row in rows]
    lines[3] = b"{not json"
    lines[40] = b'{"id": "missing-query"}'
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    cli = start_cli(source, output, "-w", "3", "--ordered")
    assert cli.wait() == 1, cli.stderr
    results = read_output(output)
    assert [r["line"] for r in results] == list(range(1, 61))
    assert results[3]["error"]["type"] == "invalid_json"
    assert results[40]["error"]["type"] == "missing_query"


def test_ordered_output_stays_in_input_order_across_an_interruption(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    marker = f"HANG-{uuid.uuid4().hex[:8]}"
    rows: list[dict] = support.many_requests(40, samples)
    rows[10]["query"] += f" {marker}"
    lines = [orjson.dumps(row) for row in rows]
    lines[14] = b"[not an object]"  # error lines are ready at once, far ahead of their turn
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    args = ("-w", "2", "--ordered", "--timeout", "600")
    env = {support.HANG_MARKER_ENV: marker}
    traces = tmp_path / "spans.jsonl"
    tracing = ("--traces", "file", "--traces-file", str(traces))
    first = start_cli(source, output, *args, *tracing, "--grace", "1", env=env)
    first.wait_for_lines(10)

    def validated() -> int:
        spans = exported_spans(traces) if traces.exists() else []
        return sum(span["name"] == "validate" for span in spans)

    # Requests after the hanging one finish (their worker spans are exported) and wait
    # for their turn: the window holds lines 11 to 18; line 15 is an error line, and line
    # 12 may be queued behind the hanging one.
    support.wait_for(lambda: validated() >= 10 + 5, 120, "requests after the hang to finish")
    first.signal(signal.SIGTERM)
    assert first.wait() == 143, first.stderr
    assert [r["line"] for r in read_output(output)] == list(range(1, 11))

    second = start_cli(source, output, *args)  # without the hang switch
    assert second.wait() == 1, second.stderr  # line 15 is an error line
    assert [r["line"] for r in read_output(output)] == list(range(1, 41))


def test_a_reader_that_stops_reading_cannot_block_a_stop(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...]
) -> None:
    """``-o -`` into a pipe nobody reads: once the pipe is full the run waits for its reader,
    but a signal still stops it within the grace period (the event loop is never blocked)."""
    import fcntl
    import termios

    rows = support.many_requests(2000, samples)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    cli = start_cli(source, Path("-"), "-w", "2", "--grace", "1")
    assert cli.process.stdout is not None
    reader = cli.process.stdout.fileno()

    def pipe_full() -> bool:
        assert cli.process.poll() is None, "the run should wait for its reader"
        queued = bytearray(4)
        fcntl.ioctl(reader, termios.FIONREAD, queued)
        return int.from_bytes(queued, "little") >= 60_000  # of a 64 KiB pipe

    support.wait_for(pipe_full, 180, "a full output pipe")
    time.sleep(0.5)
    sent = time.monotonic()
    cli.signal(signal.SIGTERM)
    try:
        code = cli.process.wait(timeout=30)  # nothing reads the pipe meanwhile
    except subprocess.TimeoutExpired:
        raise AssertionError("a blocked output kept the run from stopping") from None
    assert code == 143
    assert time.monotonic() - sent < 15
    cli.wait()
    assert "SIGTERM" in cli.stderr
    lines = cli.stdout.splitlines()
    whole = [orjson.loads(line) for line in lines[:-1]]  # the last one may be cut short
    assert len(whole) < len(rows)
    assert len({r["id"] for r in whole}) == len(whole)
