"""The messages that cross the process boundary, as typed values with one codec each.

The supervisor sends :class:`Init`, then :class:`Job` frames and finally
:class:`Shutdown`; the worker answers :class:`Ready` (or :class:`Fatal`) once and then
one :class:`Result` per job, in the order the jobs came. On the wire each message is a
JSON object with a ``type`` (see :mod:`workers.protocol` for the framing).

Decoding checks every field's type: a frame that does not decode is a
:class:`MessageError`, which the supervisor treats as a failed worker, never as a
reason to end the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.engine import DecodingSettings
from workers.protocol import ProtocolError

RequestId = str | int
JsonObject = dict[str, Any]


class MessageError(ProtocolError):
    """A frame that is valid JSON but not the message it should be."""


@dataclass(frozen=True, slots=True)
class Init:
    worker_index: int
    model_path: str
    prompt_format: str
    n_threads: int
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    telemetry: JsonObject = field(default_factory=dict)  # TelemetrySettings.to_dict()
    n_ctx: int = 0
    n_batch: int = 512
    verbose: bool = False
    dispatch: str | None = None  # MODULE:FUNCTION run on each valid call
    engine: str | None = None  # MODULE:FUNCTION that builds the engine (default: llama.cpp)


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int
    model: str
    n_ctx: int
    load_ms: float


@dataclass(frozen=True, slots=True)
class Fatal:
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    seq: int
    id: RequestId
    query: str
    tools: list[JsonObject]
    tools_key: str
    trace: dict[str, str] = field(default_factory=dict)  # W3C traceparent/tracestate
    attempt: int = 1
    tool_choice: str = "auto"  # auto | none | required | function (see ToolChoice)
    tool_name: str = ""  # with tool_choice "function"
    parallel_tool_calls: bool = True
    history: list[JsonObject] = field(default_factory=list)  # earlier messages (chat format)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str
    message: str

    def to_dict(self) -> JsonObject:
        return {"type": self.type, "message": self.message}


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> JsonObject:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True, slots=True)
class Result:
    seq: int
    worker_pid: int
    status: str  # "ok" or "error"
    calls: list[JsonObject]
    error: ErrorInfo | None
    usage: Usage = field(default_factory=Usage)
    results: list[JsonObject] | None = None  # --dispatch: what each call returned
    reused_prefix_tokens: int = 0
    model_ms: float = 0.0
    worker_ms: float = 0.0
    operation: str = "text_completion"  # for the gen_ai.client.* metrics
    inference_ms: float | None = None  # the model call alone, when it was made
    # How sure the model was (workers/confidence.py), for an ok answer of an engine that
    # reports token probabilities: the line's, each call's; the strings it did not copy.
    confidence: float | None = None
    call_confidence: list[float] | None = None
    ungrounded: list[JsonObject] | None = None


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


Message = Init | Ready | Fatal | Job | Result | Shutdown
TYPE_NAMES: dict[type, str] = {
    Init: "init",
    Ready: "ready",
    Fatal: "fatal",
    Job: "job",
    Result: "result",
    Shutdown: "shutdown",
}


# -- encoding -------------------------------------------------------------------------


def to_wire(message: Message) -> JsonObject:
    """The JSON object for ``message`` (what :func:`workers.protocol.encode_frame` takes)."""
    data: JsonObject = {"type": TYPE_NAMES[type(message)]}
    for name in message.__slots__:  # type: ignore[union-attr]
        value = getattr(message, name)
        if isinstance(value, (ErrorInfo, Usage)):
            value = value.to_dict()
        elif isinstance(value, DecodingSettings):
            value = {
                "max_tokens": value.max_tokens,
                "temperature": value.temperature,
                "seed": value.seed,
                "max_calls": value.max_calls,
                "max_string_length": value.max_string_length,
                "none_threshold": value.none_threshold,
            }
        data[name] = value
    return data


# -- decoding -------------------------------------------------------------------------


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a number")
    return float(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("a boolean")
    return value


def _object(value: Any) -> JsonObject:
    if not isinstance(value, dict):
        raise TypeError("an object")
    return value


def _objects(value: Any) -> list[JsonObject]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TypeError("a list of objects")
    return value


def _floats(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("a list of numbers")
    return [_float(item) for item in value]


def _request_id(value: Any) -> RequestId:
    if isinstance(value, str):
        return value
    return _int(value)


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _trace(value: Any) -> dict[str, str]:
    carrier = _object(value)
    if not all(isinstance(item, str) for item in carrier.values()):
        raise TypeError("an object of strings")
    return carrier


def _error(value: Any) -> ErrorInfo:
    data = _object(value)
    return ErrorInfo(_str(data.get("type")), _str(data.get("message")))


def _usage(value: Any) -> Usage:
    data = _object(value)
    return Usage(_int(data.get("prompt_tokens")), _int(data.get("completion_tokens")))


def _decoding(value: Any) -> DecodingSettings:
    data = _object(value)
    return DecodingSettings(
        max_tokens=_int(data.get("max_tokens")),
        temperature=_float(data.get("temperature")),
        seed=_int(data.get("seed")),
        max_calls=_int(data.get("max_calls")),
        max_string_length=_int(data.get("max_string_length")),
        none_threshold=_optional(_float)(data.get("none_threshold")),
    )


FIELDS: dict[type, dict[str, Callable[[Any], Any]]] = {
    Init: {
        "worker_index": _int,
        "model_path": _str,
        "prompt_format": _str,
        "n_threads": _int,
        "decoding": _decoding,
        "telemetry": _object,
        "n_ctx": _int,
        "n_batch": _int,
        "verbose": _bool,
        "dispatch": _optional(_str),
        "engine": _optional(_str),
    },
    Ready: {"pid": _int, "model": _str, "n_ctx": _int, "load_ms": _float},
    Fatal: {"message": _str},
    Job: {
        "seq": _int,
        "id": _request_id,
        "query": _str,
        "tools": _objects,
        "tools_key": _str,
        "trace": _trace,
        "attempt": _int,
        "tool_choice": _str,
        "tool_name": _str,
        "parallel_tool_calls": _bool,
        "history": _objects,
    },
    Result: {
        "seq": _int,
        "worker_pid": _int,
        "status": _str,
        "calls": _objects,
        "error": _optional(_error),
        "usage": _usage,
        "results": _optional(_objects),
        "reused_prefix_tokens": _int,
        "model_ms": _float,
        "worker_ms": _float,
        "operation": _str,
        "inference_ms": _optional(_float),
        "confidence": _optional(_float),
        "call_confidence": _optional(_floats),
        "ungrounded": _optional(_objects),
    },
    Shutdown: {},
}
BY_NAME: dict[str, type] = {name: cls for cls, name in TYPE_NAMES.items()}
OPTIONAL = {
    "n_ctx",
    "n_batch",
    "verbose",
    "dispatch",
    "engine",
    "results",
    "inference_ms",
    "confidence",
    "call_confidence",
    "ungrounded",
    "tool_choice",
    "tool_name",
    "parallel_tool_calls",
    "history",
}


def from_wire(data: Mapping[str, Any]) -> Message:
    """The message a decoded frame holds; :class:`MessageError` when it holds none."""
    name = data.get("type")
    cls = BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise MessageError(f"unknown message type {data.get('type')!r}")
    values: dict[str, Any] = {}
    for name, check in FIELDS[cls].items():
        if name not in data:
            if name in OPTIONAL or (cls is Job and name in ("trace", "attempt")):
                continue
            raise MessageError(f"{TYPE_NAMES[cls]} message without {name!r}")
        try:
            values[name] = check(data[name])
        except TypeError as exc:
            raise MessageError(f"{TYPE_NAMES[cls]} message: {name!r} is not {exc}") from None
    if cls is Result and values["status"] not in ("ok", "error"):
        raise MessageError(f"result message: unknown status {values['status']!r}")
    return cls(**values)


def expect(data: Mapping[str, Any], *types: type) -> Any:
    """:func:`from_wire`, refusing any message type but ``types``."""
    message = from_wire(data)
    if not isinstance(message, types):
        names = " or ".join(TYPE_NAMES[cls] for cls in types)
        raise MessageError(f"expected a {names} message, got {TYPE_NAMES[type(message)]}")
    return message
