"""The progress bar, looked at as a person would: the CLI runs in a tmux pane, and the
pane is captured mid-run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, SAMPLE_QUERIES, read_jsonl, write_jsonl

import pipeline.progress as progress

pytestmark = pytest.mark.slow
LINES = 2000
BAR = re.compile(
    r"needle: +(?P<percent>\d+)%\|.*\| (?P<done>\d+)/(?P<total>\d+) "
    r"\[\d\d:\d\d<(?P<eta>[\d:?]+), +(?P<rate>[\d.?]+)req/s, "
    r"ok=(?P<ok>\d+) errors=(?P<errors>\d+)(?: resumed=(?P<resumed>\d+))?\]"
)


class Pane:
    """A detached 120x20 tmux session on a server of its own."""

    def __init__(self) -> None:
        self.socket = f"needle-test-{uuid.uuid4().hex[:8]}"
        self.tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "20")

    def tmux(self, *args: str) -> str:
        command = ["tmux", "-L", self.socket, *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", "t", line, "Enter")

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "t")  # wrapped lines joined

    def wait_for(
        self,
        pattern: re.Pattern[str] | str,
        timeout: float = 60,
        until: Callable[[re.Match[str]], bool] = lambda _: True,
    ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [match for match in re.finditer(pattern, self.capture()) if until(match)]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never showed; the pane:\n{self.capture()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def pane() -> Iterator[Pane]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    opened = Pane()
    try:
        yield opened
    finally:
        opened.close()


# the fast model: these tests are about the bar, and want many requests done in seconds
PIPELINE = [sys.executable, "-m", "pipeline", "--model", "needle-tiny"]


def many_requests(path: Path) -> Path:
    samples = read_jsonl(SAMPLE_QUERIES)
    rows = [samples[i % len(samples)] | {"id": i} for i in range(LINES)]
    write_jsonl(path, rows)
    with open(path, "ab") as stream:
        stream.write(b"\n   \n")  # blank lines: no request, not counted
    return path


def test_the_bar_mid_run_and_on_resume(pane: Pane, tmp_path: Path) -> None:
    source, output = many_requests(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    # The lines repeat the sample requests: every one goes to a worker, so the run lasts.
    command = shlex.join(
        [*PIPELINE, str(source), "-o", str(output), "-w", "2", "--no-answer-cache"]
    )
    pane.type(f"cd {shlex.quote(str(PROJECT_ROOT))} && {command}")
    first = pane.wait_for(BAR)
    # mid-run, once the count is in and the rate known: a total, a rate and an ETA
    mid = pane.wait_for(BAR, until=lambda bar: bar["rate"] != "?" and int(bar["done"]) >= 150)
    assert re.fullmatch(r"\d\d:\d\d", mid["eta"]) and float(mid["rate"]) > 0
    assert int(mid["total"]) == LINES  # the first pass counted the requests
    assert 0 < int(mid["done"]) < LINES and int(mid["percent"]) < 100
    assert int(mid["ok"]) + int(mid["errors"]) == int(mid["done"])
    assert int(mid["done"]) >= int(first["done"])
    pane.tmux("send-keys", "-t", "t", "C-c")
    summary = pane.wait_for(r"needle-pipeline: (\d+) requests: .* output")
    written = int(summary[1])
    assert 0 < written < LINES

    pane.type("clear && " + command)  # the same command resumes
    bar = pane.wait_for(BAR, until=lambda bar: bar["resumed"] is not None and bar["rate"] != "?")
    assert int(bar["resumed"]) == written
    assert int(bar["done"]) >= written  # resumed lines count as done
    assert int(bar["done"]) == written + int(bar["ok"]) + int(bar["errors"])
    pane.tmux("send-keys", "-t", "t", "C-c")  # (stopped again: a resume redoes the rest)
    second = pane.wait_for(r"needle-pipeline: (\d+) requests: .* output")
    ids = [line["id"] for line in read_jsonl(output)]
    assert len(ids) == len(set(ids)) == written + int(second[1])


def test_the_bar_is_cleared_for_the_summary_at_the_end(pane: Pane, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", read_jsonl(SAMPLE_QUERIES)[:20])
    command = shlex.join([*PIPELINE, str(source), "-o", str(tmp_path / "o.jsonl")])
    pane.type(f"cd {shlex.quote(str(PROJECT_ROOT))} && {command}; echo EXIT=$?")
    pane.wait_for(r"EXIT=\d")
    assert "needle-pipeline: 20 requests: " in pane.capture()
    assert BAR.search(pane.capture()) is None


def test_no_bar_with_quiet(pane: Pane, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", read_jsonl(SAMPLE_QUERIES)[:20])
    command = shlex.join([*PIPELINE, str(source), "-o", str(tmp_path / "o.jsonl"), "-q"])
    pane.type(f"cd {shlex.quote(str(PROJECT_ROOT))} && {command}; echo EXIT=$?")
    pane.wait_for(r"EXIT=\d")
    assert "needle" not in pane.capture().replace(command, "")


def test_count_requests_in_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n\n  \n{"b": "' + b"x" * 50 + b'"}\r\n \t\n{"c": 3}')
    assert progress.count_requests(str(path)) == 3
    monkeypatch.setattr(progress, "CHUNK_BYTES", 4)  # lines across chunk boundaries
    assert progress.count_requests(str(path)) == 3
    path.write_bytes(b"")
    assert progress.count_requests(str(path)) == 0
    assert not progress.is_regular_file("-")
