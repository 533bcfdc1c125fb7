"""Length-prefixed JSON frames between the supervisor and a worker process.

Each frame is a 4-byte big-endian length followed by that many bytes of JSON (encoded
and decoded by msgspec). The worker speaks on a private duplicate of its original
stdout; fd 1 itself is pointed at stderr so that stray C-level prints from llama.cpp
cannot corrupt the stream. Frames are read here only: blocking (:func:`read_frame`, the
worker) or awaited (:func:`receive_frame`, the supervisor).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import IO, Any

import msgspec

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


def encode_frame(message: Any) -> bytes:
    """The frame of ``message``: a JSON object as a dict, or a message struct itself
    (:mod:`workers.messages`). A TypeError when it cannot be encoded."""
    try:
        body = _encoder.encode(message)
    except (ValueError, msgspec.EncodeError) as exc:  # e.g. a lone surrogate in a string
        raise TypeError(f"cannot be encoded as JSON: {exc}") from None
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """The JSON object a frame holds (a ValueError when it is not JSON)."""
    message = _decoder.decode(body)
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def body_length(header: bytes) -> int:
    """The body's length that ``header`` gives; a ProtocolError past the limit."""
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit")
    return int(length)


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """Blocking read of one frame; None at a clean end of stream."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    body = _read_exactly(stream, body_length(header))
    if body is None:
        raise ProtocolError("stream ended inside a frame")
    return decode_body(body)


async def receive_frame(receive_exactly: Callable[[int], Awaitable[bytes]]) -> dict[str, Any]:
    """One frame through ``receive_exactly`` (e.g. anyio's
    ``BufferedByteReceiveStream.receive_exactly``, whose errors pass through)."""
    header = await receive_exactly(HEADER.size)
    return decode_body(await receive_exactly(body_length(header)))


def write_frame(stream: IO[bytes], message: Any) -> None:
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
