"""The typed messages across the process boundary: each one survives its codec, and a
frame that is not a message is always a MessageError (the supervisor's cue to replace
the worker), never another exception."""

from __future__ import annotations

import anyio
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.results import ResultLine, ResultLineError, decode_line, encode_line
from workers.engine import DecodingSettings
from workers.errors import ErrorType
from workers.messages import (
    ErrorInfo,
    Fatal,
    Init,
    Job,
    MessageError,
    Ready,
    Result,
    Shutdown,
    Usage,
    expect,
    from_wire,
    to_wire,
)
from workers.protocol import HEADER, decode_body, encode_frame, receive_frame
from workers.toolset import ToolChoice

MESSAGES = [
    Init(3, "/m.gguf", "chat", 2, DecodingSettings(9, 0.5, 7, 2, 0), {"traces": "file"}),
    Init(0, "/m.gguf", "needle", 1, dispatch="a:b", engine="c:d", verbose=True),
    Ready(123, "needle-tools", 2048, 12.5),
    Fatal("ValueError: no"),
    Job(1, "r1", "set a timer", [{"name": "t", "parameters": {}}], "k", {"traceparent": "x"}),
    Job(2, 17, "q", [], "k2"),
    Result(1, 9, "ok", [{"name": "t", "arguments": {}}], None, Usage(5, 6), None, 3, 1.0, 2.0),
    Result(2, 9, "error", [], ErrorInfo("truncated", "too long"), inference_ms=4.0),
    Result(3, 9, "error", [{"name": "t", "arguments": {}}], ErrorInfo("tool_error", "x"),
           results=[{"name": "t", "error": {"type": "E", "message": "m"}}]),
    Shutdown(),
]  # fmt: skip


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_its_frame(message):
    frame = encode_frame(to_wire(message))
    assert from_wire(decode_body(frame[HEADER.size :])) == message


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_frames_as_its_wire_dict(message):
    assert encode_frame(message) == encode_frame(to_wire(message))


def test_an_error_type_is_a_plain_string_on_the_wire():
    result = Result(1, 9, "error", [], ErrorInfo(ErrorType.TRUNCATED, "too long"))
    assert type(to_wire(result)["error"]["type"]) is str
    decoded = from_wire(decode_body(encode_frame(result)[HEADER.size :]))
    assert decoded == result and type(decoded.error.type) is str


def test_a_job_carries_its_tool_choice():
    named = Job(1, "r1", "q", [], "k", choice=ToolChoice("function", "t", False))
    assert to_wire(named)["choice"] == {"mode": "function", "name": "t", "parallel": False}
    assert from_wire(decode_body(encode_frame(named)[HEADER.size :])).choice == named.choice
    assert Job(2, "r2", "q", [], "k").choice == ToolChoice()
    partial = to_wire(named)
    del partial["choice"]["name"]
    with pytest.raises(MessageError):
        from_wire(partial)


def test_a_missing_field_of_any_message_is_a_message_error():
    ready = to_wire(Ready(1, "m", 2048, 0.0))
    del ready["n_ctx"]
    with pytest.raises(MessageError, match="ready message without 'n_ctx'"):
        from_wire(ready)


def test_frames_are_received_through_the_protocol():
    frames = encode_frame(MESSAGES[4]) + encode_frame(MESSAGES[6])
    buffer = memoryview(frames)

    async def receive_exactly(size: int) -> bytes:
        nonlocal buffer
        chunk, buffer = bytes(buffer[:size]), buffer[size:]
        return chunk

    async def both():
        return [expect(await receive_frame(receive_exactly), Job, Result) for _ in range(2)]

    assert anyio.run(both) == [MESSAGES[4], MESSAGES[6]]


def test_a_frame_that_cannot_be_encoded_is_a_type_error():
    with pytest.raises(TypeError):
        encode_frame(Job(1, "r1", "\ud800", [], "k"))  # a lone surrogate


def test_expect_refuses_another_message_type():
    with pytest.raises(MessageError, match="expected a result message, got ready"):
        expect(to_wire(Ready(1, "m", 0, 0.0)), Result)


@pytest.mark.parametrize(
    "change",
    [
        {"seq": "1"},
        {"seq": True},
        {"status": "maybe"},
        {"calls": {"name": "t"}},
        {"calls": [1]},
        {"error": "boom"},
        {"error": {"type": "x"}},
        {"usage": {"prompt_tokens": 1}},
        {"model_ms": "fast"},
        {"type": "nonsense"},
    ],
)
def test_a_wrong_field_is_a_message_error(change):
    good = to_wire(MESSAGES[6])
    with pytest.raises(MessageError):
        from_wire({**good, **change})
    missing = {key: value for key, value in good.items() if key != next(iter(change))}
    if next(iter(change)) not in ("type", "error"):
        with pytest.raises(MessageError):
            from_wire(missing)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
FIELDS = st.sampled_from(
    ["type", "seq", "worker_pid", "status", "calls", "error", "usage", "id", "query", "tools",
     "tools_key", "trace", "pid", "model", "n_ctx", "load_ms", "message", "results"]
)  # fmt: skip


@settings(deadline=None)  # a test of what decodes, not of how fast: no time limit
@given(
    st.sampled_from(["result", "job", "ready", "init", "fatal", "shutdown", "other"]),
    st.dictionaries(FIELDS, JSON, max_size=12),
)
def test_any_json_object_decodes_or_is_a_message_error(kind, fields):
    try:
        message = from_wire({"type": kind, **fields} if "type" not in fields else fields)
    except MessageError:
        return
    assert from_wire(to_wire(message)) == message


def test_result_lines_survive_their_codec():
    line = ResultLine("r1", 4, "error", [], ErrorInfo("timeout", "late"), "ab" * 16, "m")
    assert decode_line(encode_line(line)) == line
    data = orjson.loads(encode_line(line))
    assert list(data) == [
        "id", "line", "status", "calls", "error", "trace_id", "model", "usage", "latency_ms",
    ]  # fmt: skip
    with pytest.raises(ResultLineError):
        decode_line(b'{"id": "r1"}')  # no line number
    with pytest.raises(ResultLineError):
        decode_line(b'{"id": "r1", "line": 1, "usage": {"prompt_tokens": "many"}}')
