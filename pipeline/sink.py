"""JSONL result output: whole-line appends, periodic fsync, and resume of an earlier run.

Beside the output file lives ``<output>.meta.json`` with the fingerprint of the
settings that produced it; a resume with other settings is refused.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson

from pipeline.batchoutput import decode_any_line
from pipeline.idset import IdSet
from pipeline.results import ResultLineError
from workers.errors import found_by_line

META_SUFFIX = ".meta.json"


class OutputError(Exception):
    """The output cannot be opened or written; the message says why."""


class ResumeRefused(Exception):
    """The existing output was made with other settings, or is not ours."""


@dataclass
class ResumeState:
    done_ids: IdSet = field(default_factory=IdSet)
    # Input lines whose error line a resume finds by line number (workers.errors).
    done_lines: set[int] = field(default_factory=set)
    lines: int = 0
    errors: int = 0  # error lines among them
    retried: int = 0  # error lines taken out for --retry-errors
    dropped_torn_bytes: int = 0


class JsonlSink:
    """Appends result lines to a file (or ``-``, stdout); each batch is one ``write``."""

    def __init__(self, path: str, fsync_interval_s: float = 2.0) -> None:
        self.path = path
        self.fsync_interval_s = fsync_interval_s
        self._fd = -1
        self._last_sync = time.monotonic()
        self._dirty = False
        self._end: int | None = None  # size of the file after the last whole write
        self._streaming = False  # stdout, a pipe or a device: no resume, no fsync

    @property
    def is_stdout(self) -> bool:
        return self.path == "-"

    @property
    def meta_path(self) -> Path:
        return Path(self.path + META_SUFFIX)

    def open(
        self, fingerprint: dict[str, Any], overwrite: bool, retry_errors: bool = False
    ) -> ResumeState:
        """Open for appending; returns what an earlier run already wrote (``retry_errors``:
        its error lines are taken out first, so their requests run again)."""
        if self.is_stdout:
            self._fd = self._open_stdout()
            self._streaming = True
            return ResumeState()
        path = Path(self.path)
        try:
            if path.exists() and not path.is_file():
                # A FIFO or a device: write to it as it is, never replace it.
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                self._streaming = True
                if stat.S_ISFIFO(os.fstat(self._fd).st_mode):
                    os.set_blocking(self._fd, False)
                return ResumeState()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot open output {self.path}: {_why(path, exc)}") from None
        try:
            state = self._claim(fd, path, fingerprint, overwrite, retry_errors)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._end = os.fstat(fd).st_size
        return state

    def _open_stdout(self) -> int:
        """Standard output; a pipe gets an open file description of its own, non-blocking,
        so a reader that stops reading cannot block the event loop (and with it signals).
        The flag is not set on the shared description: the shell and other processes
        writing to the same pipe or terminal keep blocking writes."""
        try:
            if stat.S_ISFIFO(os.fstat(1).st_mode):
                fd = os.open("/proc/self/fd/1", os.O_WRONLY)
                os.set_blocking(fd, False)
                return fd
        except OSError:
            pass  # no /proc: a blocking duplicate
        return os.dup(1)

    def _claim(
        self,
        fd: int,
        path: Path,
        fingerprint: dict[str, Any],
        overwrite: bool,
        retry_errors: bool = False,
    ) -> ResumeState:
        """Lock the output against a second run, then resume it or start it afresh."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"{self.path} is being written by another run; two runs on one output "
                f"would duplicate results (wait for it, or use another -o path)"
            ) from None
        except OSError:
            pass  # a file system without locks: carry on unguarded
        try:
            state = ResumeState()
            if os.fstat(fd).st_size > 0:
                if overwrite:
                    os.ftruncate(fd, 0)
                else:
                    self._check_fingerprint(fingerprint)
                    state = scan_existing_output(path, drop_errors=retry_errors)
        except OSError as exc:
            raise OutputError(f"cannot open output {self.path}: {_why(path, exc)}") from None
        try:
            self._write_meta(fingerprint)
        except OSError as exc:
            raise OutputError(
                f"cannot write {self.meta_path}, the record of the run kept beside the output "
                f"(for a resume): {_why(self.meta_path, exc)}"
            ) from None
        return state

    def _check_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        if not self.meta_path.exists():
            raise ResumeRefused(
                f"{self.path} exists but was not written by needle-pipeline "
                f"(no {self.meta_path.name}); pass --overwrite to replace it"
            )
        try:
            previous = orjson.loads(self.meta_path.read_bytes()).get("fingerprint", {})
        except (orjson.JSONDecodeError, AttributeError):
            raise ResumeRefused(f"{self.meta_path} is unreadable; pass --overwrite") from None
        if previous != fingerprint:
            changed = sorted(
                key
                for key in previous.keys() | fingerprint.keys()
                if previous.get(key) != fingerprint.get(key)
            )
            details = ", ".join(
                f"{key}: {previous.get(key)!r} -> {fingerprint.get(key)!r}" for key in changed
            )
            raise ResumeRefused(
                f"{self.path} was produced with other settings ({details}); resuming would "
                f"mix results. Pass --overwrite to start afresh, or use another -o path"
            )

    def _write_meta(self, fingerprint: dict[str, Any]) -> None:
        temporary = self.meta_path.with_name(self.meta_path.name + ".tmp")
        temporary.write_bytes(
            orjson.dumps({"fingerprint": fingerprint}, option=orjson.OPT_INDENT_2)
        )
        os.replace(temporary, self.meta_path)

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        data = b"".join(lines)
        self._write_some(memoryview(data))  # blocking: takes it all (pipes use write_async)
        if self._wrote(len(data)):
            self.sync()

    async def write_async(self, lines: list[bytes]) -> None:
        """:meth:`write`, waiting in the event loop while a non-blocking pipe is full.
        Cancelled while waiting, the pipe may end in part of a line (its reader had
        stopped reading)."""
        if not lines:
            return
        data = b"".join(lines)
        rest = self._write_some(memoryview(data))
        while rest:
            await anyio.wait_writable(self._fd)
            rest = self._write_some(rest)
        if self._wrote(len(data)):  # an fsync can take long on a busy disk: off the loop
            await anyio.to_thread.run_sync(self.sync)

    def _write_some(self, view: memoryview) -> memoryview:
        """Write until done or until a non-blocking pipe is full; returns what is left."""
        try:
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    return view
                view = view[written:]
        except OSError as exc:
            self._cut_partial_write()
            raise OutputError(f"cannot write output {self.path}: {exc.strerror or exc}") from None
        return view

    def _wrote(self, size: int) -> bool:
        """Count a whole write; returns whether an fsync is due."""
        if self._end is not None:
            self._end += size
        self._dirty = True
        return time.monotonic() - self._last_sync >= self.fsync_interval_s

    def _cut_partial_write(self) -> None:
        """After a failed write (disk full): the file ends at the last whole line again."""
        if self._end is None:
            return
        try:
            if os.fstat(self._fd).st_size > self._end:
                os.ftruncate(self._fd, self._end)
        except OSError:
            pass  # a resume drops a torn last line anyway

    def sync(self) -> None:
        if self._fd < 0 or not self._dirty:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if not self._streaming:  # pipes and terminals cannot be fsynced
                raise OutputError(f"cannot sync output {self.path}: {exc.strerror}") from None
        self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1


def scan_existing_output(path: Path, drop_errors: bool = False) -> ResumeState:
    """Ids already written; a torn last line (a crash mid-write) is cut off the file.

    ``drop_errors`` (``--retry-errors``): error lines are taken out of the file, which is
    compacted in place (the run holds a lock on this very file), so that their requests
    count as not done.
    """
    state = ResumeState()
    good_end = kept_end = 0
    with open(path, "rb") as stream, open(path, "r+b") as compacted:
        for raw in stream:
            if not raw.endswith(b"\n"):
                break
            try:
                result = decode_any_line(raw)
            except ResultLineError:
                break
            good_end += len(raw)
            if drop_errors and not result.ok:
                state.retried += 1
                continue
            if kept_end < good_end - len(raw):  # a line was taken out before this one
                compacted.seek(kept_end)
                compacted.write(raw)
            kept_end += len(raw)
            if not result.ok:
                state.errors += 1
            if found_by_line(result.error_type):
                state.done_lines.add(result.line)
            else:
                state.done_ids.add(result.id)
            state.lines += 1
    size = path.stat().st_size
    if size > good_end:
        state.dropped_torn_bytes = size - good_end
    if size > kept_end:
        with open(path, "r+b") as stream:
            stream.truncate(kept_end)
    return state


def _why(path: Path, exc: OSError) -> str:
    """What stands in the way of writing ``path``, in words (not just ``strerror``)."""
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                return f"{folder} is a file, not a folder"
            break
    if exc.errno == errno.EACCES:
        return f"permission denied ({exc.strerror})"
    return str(exc.strerror or exc)
