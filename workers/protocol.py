"""Length-prefixed orjson frames between the supervisor and a worker process.

Each frame is a 4-byte big-endian length followed by that many bytes of JSON. The
worker speaks on a private duplicate of its original stdout; fd 1 itself is pointed
at stderr so that stray C-level prints from llama.cpp cannot corrupt the stream.
"""

from __future__ import annotations

import struct
from typing import IO, Any

import orjson

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = orjson.dumps(message)
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    message = orjson.loads(body)
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """Blocking read of one frame; None at a clean end of stream."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit")
    body = _read_exactly(stream, length)
    if body is None:
        raise ProtocolError("stream ended inside a frame")
    return decode_body(body)


def write_frame(stream: IO[bytes], message: dict[str, Any]) -> None:
    stream.write(encode_frame(message))
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return None
            raise ProtocolError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
