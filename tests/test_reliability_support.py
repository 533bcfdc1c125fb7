"""Helpers shared by the reliability, input-error and resume tests (no tests in here).

Every CLI run started through these helpers carries a unique token in its environment,
which its worker processes inherit; :func:`processes_with_token` finds any process that
still has it, so a test can prove that no worker outlived its run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import fault_engine
import orjson
from conftest import PROJECT_ROOT, SAMPLE_QUERIES, cli_env, read_jsonl

TOKEN_ENV = "NEEDLE_PIPELINE_TEST_RUN_TOKEN"
CRASH_MARKER_ENV = fault_engine.CRASH_MARKER_ENV
HANG_MARKER_ENV = fault_engine.HANG_MARKER_ENV
HANG_DIR_ENV = fault_engine.HANG_DIR_ENV
hung_workers = fault_engine.hung_workers


def sample_requests() -> list[dict[str, Any]]:
    return read_jsonl(SAMPLE_QUERIES)


@functools.cache
def good_samples(model: Path) -> tuple[dict[str, Any], ...]:
    """The sample requests that ``model`` answers with status ok (one calibration run).

    The test model's weights are random, so a few samples end in ``truncated``; tests
    that need "every other request succeeds" build their inputs from these.
    """
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "calibration.jsonl"
        command = [sys.executable, "-m", "pipeline", str(SAMPLE_QUERIES), "-o", str(output)]
        command += ["--model", str(model), "-w", "1", "-q"]
        subprocess.run(
            command, cwd=PROJECT_ROOT, env=cli_env(), timeout=300, check=False, capture_output=True
        )
        ok = {row["id"] for row in read_jsonl(output) if row["status"] == "ok"}
    samples = tuple(row for row in sample_requests() if row["id"] in ok)
    assert len(samples) >= 20, f"only {len(samples)} sample requests succeed with {model}"
    return samples


def many_requests(
    count: int, samples: Sequence[dict[str, Any]], prefix: str = "r"
) -> list[dict[str, Any]]:
    """``count`` requests cycling through ``samples``, each with its own id."""
    rows = []
    for index in range(count):
        sample = samples[index % len(samples)]
        request_id = f"{prefix}{index:05d}"
        rows.append({"id": request_id, "query": sample["query"], "tools": sample["tools"]})
    return rows


def read_output(path: Path) -> list[dict[str, Any]]:
    """Every line of the output must be a whole JSON object."""
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "the output ends in a torn line"
    rows = [orjson.loads(line) for line in data.splitlines()]
    assert all(isinstance(row, dict) for row in rows)
    return rows


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def comparable(rows: list[dict[str, Any]]) -> dict[Any, tuple[Any, ...]]:
    """id -> (line, status, calls, error type): what must not depend on how a run went."""
    result = {}
    for row in rows:
        error = row["error"]["type"] if row.get("error") else None
        key = orjson.dumps(row["id"])
        assert key not in result, f"id {row['id']!r} written twice"
        result[key] = (row["line"], row["status"], orjson.dumps(row["calls"]), error)
    return result


# -- processes -------------------------------------------------------------------


def _read_proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def child_pids(parent: int) -> list[int]:
    """Live (not zombie) children of ``parent``, from /proc."""
    children = []
    for pid in _pids():
        stat = _read_proc(pid, "stat")
        if not stat:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent and fields[0] != b"Z":
            children.append(pid)
    return children


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's ``python -m workers`` children."""
    return [pid for pid in child_pids(supervisor) if b"\0-m\0workers" in _read_proc(pid, "cmdline")]


def processes_with_token(token: str) -> list[int]:
    needle = f"{TOKEN_ENV}={token}".encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        status = _read_proc(pid, "stat")
        if status and status[status.rfind(b")") + 2 :].startswith(b"Z"):
            continue
        if needle in _read_proc(pid, "environ").split(b"\0"):
            found.append(pid)
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


def check_no_survivors(token: str, timeout: float = 15) -> None:
    """No process started with ``token`` may outlive its run (a worker, say)."""
    deadline = time.monotonic() + timeout
    while (left := processes_with_token(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # clean up before failing, so one failure does not leak into others
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived their run: {left}"


class Cli:
    """``python -m pipeline`` as a child process the test controls (signals, kills)."""

    def __init__(
        self,
        model: Path,
        token: str,
        input_path: Path,
        output: Path,
        *args: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        stdin: int = subprocess.DEVNULL,
        inject_faults: bool = True,  # with a marker in env: --engine tests.fault_engine:...
    ) -> None:
        self.output = output
        command = [sys.executable, "-m", "pipeline", str(input_path), "-o", str(output)]
        command += ["--model", str(model), *args]
        if inject_faults and env and (CRASH_MARKER_ENV in env or HANG_MARKER_ENV in env):
            command += ["--engine", fault_engine.SPEC]  # faults are injected by an engine
        self.command = command
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=cli_env({TOKEN_ENV: token, **(env or {})}),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=preexec_fn,
        )
        self.stdout = ""
        self.stderr = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 240) -> int:
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            raise AssertionError(
                f"the CLI did not finish within {timeout:g}s; stderr:\n{stderr.decode()[-3000:]}"
            ) from None
        self.stdout, self.stderr = stdout.decode(), stderr.decode()
        return self.process.returncode

    def wait_for_lines(self, count: int, timeout: float = 180) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the CLI exited ({self.process.returncode}) before writing {count} lines:\n"
                    + self.process.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
                )
            return count_lines(self.output) >= count

        wait_for(ready, timeout, f"{count} output lines")

    def kill_if_running(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def cli_starter(model: Path) -> Iterator[Callable[..., Cli]]:
    """Body of a ``start_cli`` fixture: start CLIs; afterwards kill leftovers, check orphans."""
    token = uuid.uuid4().hex
    started: list[Cli] = []

    def start(input_path: Path, output: Path, *args: str, **kwargs: Any) -> Cli:
        cli = Cli(model, token, input_path, output, *args, **kwargs)
        started.append(cli)
        return cli

    try:
        yield start
    finally:
        for cli in started:
            cli.kill_if_running()
    check_no_survivors(token)
