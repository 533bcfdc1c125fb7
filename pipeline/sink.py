"""JSONL result output: whole-line appends, periodic fsync, and resume of an earlier run.

Beside the output file lives ``<output>.meta.json`` with the fingerprint of the
settings that produced it; a resume with other settings is refused.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.idset import IdSet

META_SUFFIX = ".meta.json"


class OutputError(Exception):
    """The output cannot be opened or written; the message says why."""


class ResumeRefused(Exception):
    """The existing output was made with other settings, or is not ours."""


@dataclass
class ResumeState:
    done_ids: IdSet = field(default_factory=IdSet)
    done_duplicate_lines: set[int] = field(default_factory=set)
    lines: int = 0
    dropped_torn_bytes: int = 0

    def is_done(self, request_id: Any, line: int) -> bool:
        return line in self.done_duplicate_lines or request_id in self.done_ids


class JsonlSink:
    """Appends result lines to a file (or ``-``, stdout); each batch is one ``write``."""

    def __init__(self, path: str, fsync_interval_s: float = 2.0) -> None:
        self.path = path
        self.fsync_interval_s = fsync_interval_s
        self._fd = -1
        self._last_sync = time.monotonic()
        self._dirty = False

    @property
    def is_stdout(self) -> bool:
        return self.path == "-"

    @property
    def meta_path(self) -> Path:
        return Path(self.path + META_SUFFIX)

    def open(self, fingerprint: dict[str, Any], overwrite: bool) -> ResumeState:
        """Open for appending; returns what an earlier run already wrote."""
        if self.is_stdout:
            self._fd = os.dup(1)
            return ResumeState()
        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            state = ResumeState()
            if path.exists() and not overwrite and path.stat().st_size > 0:
                self._check_fingerprint(fingerprint)
                state = scan_existing_output(path)
            elif path.exists():
                path.unlink()
            self._write_meta(fingerprint)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot open output {self.path}: {exc.strerror or exc}") from None
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
        view = memoryview(b"".join(lines))
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise OutputError(f"cannot write output {self.path}: {exc.strerror or exc}") from None
        self._dirty = True
        if time.monotonic() - self._last_sync >= self.fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        if self._fd < 0 or not self._dirty:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if not self.is_stdout:  # pipes and terminals cannot be fsynced
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


def scan_existing_output(path: Path) -> ResumeState:
    """Ids already written; a torn last line (a crash mid-write) is cut off the file."""
    state = ResumeState()
    good_end = 0
    with open(path, "rb") as stream:
        for raw in stream:
            if not raw.endswith(b"\n"):
                break
            try:
                result = orjson.loads(raw)
            except orjson.JSONDecodeError:
                break
            if not isinstance(result, dict) or "id" not in result:
                break
            error = result.get("error") or {}
            if isinstance(error, dict) and error.get("type") == "duplicate_id":
                state.done_duplicate_lines.add(int(result.get("line", 0)))
            else:
                state.done_ids.add(result["id"])
            state.lines += 1
            good_end += len(raw)
    size = path.stat().st_size
    if size > good_end:
        state.dropped_torn_bytes = size - good_end
        with open(path, "r+b") as stream:
            stream.truncate(good_end)
    return state
