"""Streaming JSONL input: lines are read in batches on a worker thread, never all at once."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

import anyio.to_thread

BATCH_LINES = 256
BATCH_BYTES = 1 << 20
DEFAULT_MAX_LINE_BYTES = 8 << 20


@dataclass(slots=True)
class RawLine:
    number: int  # 1-based
    data: bytes  # without the line ending; empty when ``too_long``
    too_long: bool = False


class JsonlSource:
    """Reads a JSONL file (or ``-`` for stdin) as :class:`RawLine` batches; blank lines skipped."""

    def __init__(self, path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self._stream: IO[bytes] | None = None
        self._line_number = 0

    def open(self) -> None:
        self._stream = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")  # noqa: SIM115

    def close(self) -> None:
        if self._stream is not None and self.path != "-":
            self._stream.close()
        self._stream = None

    async def batches(self) -> AsyncIterator[list[RawLine]]:
        if self._stream is None:
            self.open()
        while True:
            batch = await anyio.to_thread.run_sync(self._read_batch, abandon_on_cancel=True)
            if batch is None:
                return
            if batch:
                yield batch

    def _read_batch(self) -> list[RawLine] | None:
        stream = self._stream
        assert stream is not None
        batch: list[RawLine] = []
        size = 0
        while len(batch) < BATCH_LINES and size < BATCH_BYTES:
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
