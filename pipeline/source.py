"""Streaming JSONL input: lines are read in batches on a worker thread, never all at once.

A regular file is read in large batches on anyio's worker threads. A pipe or terminal
(stdin, a FIFO) can block for as long as its writer likes: it is read line by line on a
daemon thread of its own, so each line is handled as soon as it arrives, and a stopped
run never waits for (nor, at exit, joins) a thread blocked in a read.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

BATCH_LINES = 256
BATCH_BYTES = 1 << 20
DEFAULT_MAX_LINE_BYTES = 8 << 20
# What a reader thread meets once the run has stopped reading, or is over.
STOPPED_READING = (anyio.BrokenResourceError, anyio.ClosedResourceError, RuntimeError)


@dataclass(slots=True)
class RawLine:
    number: int  # 1-based
    data: bytes  # without the line ending; empty when ``too_long``
    too_long: bool = False
    columns: dict[str, Any] | None = None  # a table row's --keep-columns
    problem: str | None = None  # a table row that could not be read: why


class JsonlSource:
    """Reads a JSONL file (or ``-`` for stdin) as :class:`RawLine` batches; blank lines skipped."""

    def __init__(self, path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self._stream: IO[bytes] | None = None
        self._line_number = 0
        self._streaming = False

    def open(self) -> None:
        # stdin through a reader of our own: a daemon thread blocked in sys.stdin would
        # hold its lock while the interpreter shuts down, which aborts the process.
        source = os.dup(sys.stdin.fileno()) if self.path == "-" else self.path
        self._stream = open(source, "rb")  # noqa: SIM115
        self._streaming = not stat.S_ISREG(os.fstat(self._stream.fileno()).st_mode)

    def close(self) -> None:
        # A pipe's reader thread may be blocked in a read that holds the stream's lock;
        # that stream is left to the process exit.
        if self._stream is not None and not self._streaming:
            self._stream.close()
        self._stream = None

    async def batches(self) -> AsyncIterator[list[RawLine]]:
        if self._stream is None:
            self.open()
        if self._streaming:
            async for batch in self._stream_batches():
                yield batch
            return
        while True:
            batch = await anyio.to_thread.run_sync(self._read_batch, abandon_on_cancel=True)
            if batch is None:
                return
            if batch:
                yield batch

    async def _stream_batches(self) -> AsyncIterator[list[RawLine]]:
        """A pipe or terminal: one line at a time from a daemon thread."""
        send, receive = anyio.create_memory_object_stream[list[RawLine] | BaseException](1)
        token = anyio.lowlevel.current_token()

        def pump() -> None:
            try:
                while True:
                    batch = self._read_batch(max_lines=1)
                    if batch is None:
                        break
                    if batch:
                        anyio.from_thread.run(send.send, batch, token=token)
                anyio.from_thread.run(send.aclose, token=token)
            except STOPPED_READING:
                return
            except BaseException as exc:  # a read error: the run reports it
                with contextlib.suppress(*STOPPED_READING):
                    anyio.from_thread.run(send.send, exc, token=token)

        threading.Thread(target=pump, name="needle-input", daemon=True).start()
        async with receive:
            async for item in receive:
                if isinstance(item, BaseException):
                    raise item
                yield item

    def _read_batch(self, max_lines: int = BATCH_LINES) -> list[RawLine] | None:
        stream = self._stream
        assert stream is not None
        batch: list[RawLine] = []
        size = 0
        while len(batch) < max_lines and size < BATCH_BYTES:
            data = stream.readline(self.max_line_bytes + 1)
            if not data:
                return batch or None
            self._line_number += 1
            if len(data) > self.max_line_bytes and not data.endswith(b"\n"):
                self._skip_rest_of_line(stream)
                batch.append(RawLine(self._line_number, b"", too_long=True))
                continue
            data = data.rstrip(b"\r\n")
            if not data.strip():
                continue
            batch.append(RawLine(self._line_number, data))
            size += len(data)
        return batch

    def _skip_rest_of_line(self, stream: IO[bytes]) -> None:
        while True:
            chunk = stream.readline(1 << 20)
            if not chunk or chunk.endswith(b"\n"):
                return
