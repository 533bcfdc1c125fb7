"""The messages that cross the process boundary, as typed values with one codec.

The supervisor sends :class:`Init`, then :class:`Job` frames and finally
:class:`Shutdown`; the worker answers :class:`Ready` (or :class:`Fatal`) once and then
one :class:`Result` per job, in the order the jobs came. On the wire each message is a
JSON object with a ``type`` (see :mod:`workers.protocol` for the framing).

Each message is a frozen :class:`msgspec.Struct`, one member of a union tagged by
``type``; msgspec encodes them and checks every field's type on the way in. A field a
frame may leave out is marked :data:`Omittable` (its default fills in); every other
field must be there, default or not, so a truncated or foreign frame is not mistaken
for a message. A frame that does not decode is a :class:`MessageError`, which the
supervisor treats as a failed worker, never as a reason to end the run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from workers.engine import N_BATCH, DecodingSettings
from workers.protocol import ProtocolError
from workers.toolset import ToolChoice

RequestId = str | int
JsonObject = dict[str, Any]
Status = Literal["ok", "error"]

T = TypeVar("T")


class _MayBeOmitted:
    """The :data:`Omittable` marker (msgspec ignores it; :class:`_Presence` reads it)."""


Omittable = Annotated[T, _MayBeOmitted()]
"""A field a frame may leave out; any other missing field is a :class:`MessageError`."""


class MessageError(ProtocolError):
    """A frame that is valid JSON but not the message it should be."""


class _Message(msgspec.Struct, frozen=True, tag_field="type"):
    """A message: on the wire, a JSON object whose ``type`` is the subclass's tag."""


class Init(_Message, frozen=True, tag="init"):
    worker_index: int
    model_path: str
    prompt_format: str
    n_threads: int
    decoding: DecodingSettings = msgspec.field(default_factory=DecodingSettings)
    telemetry: JsonObject = msgspec.field(default_factory=dict)  # TelemetrySettings.to_dict()
    n_ctx: Omittable[int] = 0
    n_batch: Omittable[int] = N_BATCH
    verbose: Omittable[bool] = False
    dispatch: Omittable[str | None] = None  # MODULE:FUNCTION run on each valid call
    engine: Omittable[str | None] = None  # MODULE:FUNCTION building the engine (else llama.cpp)


class Ready(_Message, frozen=True, tag="ready"):
    pid: int
    model: str
    n_ctx: int
    load_ms: float


class Fatal(_Message, frozen=True, tag="fatal"):
    message: str


class Job(_Message, frozen=True, tag="job"):
    seq: int
    id: RequestId
    query: str
    tools: list[JsonObject]
    tools_key: str
    trace: Omittable[dict[str, str]] = msgspec.field(default_factory=dict)  # W3C traceparent
    attempt: Omittable[int] = 1
    # OpenAI's tool_choice and parallel_tool_calls, as the answer grammar takes them.
    choice: Omittable[ToolChoice] = msgspec.field(default_factory=ToolChoice)
    history: Omittable[list[JsonObject]] = msgspec.field(default_factory=list)  # chat format


class ErrorInfo(msgspec.Struct, frozen=True):
    type: str  # an ErrorType (a str) where built here; a plain string once decoded
    message: str

    def to_dict(self) -> JsonObject:
        return {"type": self.type, "message": self.message}


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> JsonObject:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


class Result(_Message, frozen=True, tag="result"):
    seq: int
    worker_pid: int
    status: Status
    calls: list[JsonObject]
    error: ErrorInfo | None
    usage: Usage = msgspec.field(default_factory=Usage)
    results: Omittable[list[JsonObject] | None] = None  # --dispatch: what each call returned
    reused_prefix_tokens: int = 0
    model_ms: float = 0.0
    worker_ms: float = 0.0
    operation: str = "text_completion"  # for the gen_ai.client.* metrics
    inference_ms: Omittable[float | None] = None  # the model call alone, when it was made
    # How sure the model was (workers/confidence.py), for an ok answer of an engine that
    # reports token probabilities: the line's, each call's; the strings it did not copy;
    # the values it gave more arguments than the request gives them (workers/repeats.py).
    confidence: Omittable[float | None] = None
    call_confidence: Omittable[list[float] | None] = None
    ungrounded: Omittable[list[JsonObject] | None] = None
    repeated: Omittable[list[JsonObject] | None] = None
    # The strings put in the form their parameter asks (workers/reformat.py), for an ok answer.
    reformatted: Omittable[list[JsonObject] | None] = None
    # The numbers converted to their parameter's unit (workers/units.py), for an ok answer.
    converted: Omittable[list[JsonObject] | None] = None
    # The arguments left out and filled in from the request (workers/enumfill.py,
    # workers/flagfill.py, workers/datefill.py).
    filled: Omittable[list[JsonObject] | None] = None


class Shutdown(_Message, frozen=True, tag="shutdown"):
    pass


Message = Init | Ready | Fatal | Job | Result | Shutdown
TYPE_NAMES: dict[type, str] = {
    cls: cls.__struct_config__.tag for cls in (Init, Ready, Fatal, Job, Result, Shutdown)
}
BY_NAME: dict[str, type] = {name: cls for cls, name in TYPE_NAMES.items()}

# Fields of nested types defined elsewhere (so unmarked) that a frame may leave out. (A
# dataclass msgspec decoded without one re-encodes without it: msgspec encodes its
# __dict__, and the class default stands in for the attribute. It decodes the same.)
OMITTABLE_ELSEWHERE: dict[type, frozenset[str]] = {
    DecodingSettings: frozenset({"none_threshold"}),
}


# -- encoding -------------------------------------------------------------------------


def to_wire(message: Message) -> JsonObject:
    """The JSON object for ``message`` (what :func:`workers.protocol.encode_frame` takes;
    that function also takes ``message`` itself, which skips this dict)."""
    data: JsonObject = msgspec.to_builtins(message)
    return data


# -- decoding -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Presence:
    """The keys an object of one type must hold, and the same for its nested objects.

    msgspec fills in any missing field that has a default; the wire is stricter (see
    :data:`Omittable`), so these keys are checked before msgspec decodes the rest."""

    what: str
    keys: frozenset[str]
    order: tuple[str, ...]
    nested: tuple[tuple[str, _Presence], ...]

    def check(self, data: Mapping[str, Any]) -> None:
        if not data.keys() >= self.keys:
            missing = next(key for key in self.order if key not in data)
            raise MessageError(f"{self.what} without {missing!r}")
        for key, inner in self.nested:
            value = data.get(key)
            if isinstance(value, dict):  # (anything else: msgspec says what is wrong)
                inner.check(value)

    @classmethod
    def of(cls, kind: type, what: str) -> _Presence:
        hints = typing.get_type_hints(kind, include_extras=True)
        if issubclass(kind, msgspec.Struct):
            names: tuple[str, ...] = kind.__struct_fields__
        else:
            names = tuple(item.name for item in dataclasses.fields(kind))
        omittable = OMITTABLE_ELSEWHERE.get(kind, frozenset())
        order = tuple(
            name
            for name in names
            if name not in omittable
            and not any(isinstance(meta, _MayBeOmitted) for meta in _metadata(hints[name]))
        )
        nested = tuple(
            (name, cls.of(inner, f"{what}: {name!r}"))
            for name in names
            for inner in _object_types(hints[name])
        )
        return cls(what, frozenset(order), order, nested)


def _metadata(hint: Any) -> tuple[Any, ...]:
    return getattr(hint, "__metadata__", ())


def _object_types(hint: Any) -> list[type]:
    """The struct and dataclass types ``hint`` may be (``ErrorInfo | None``: ErrorInfo)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    members = typing.get_args(hint) if union else (hint,)
    return [
        member
        for member in members
        if isinstance(member, type)
        and (issubclass(member, msgspec.Struct) or dataclasses.is_dataclass(member))
    ]


PRESENCE: dict[type, _Presence] = {
    cls: _Presence.of(cls, f"{name} message") for cls, name in TYPE_NAMES.items()
}


def from_wire(data: Mapping[str, Any]) -> Message:
    """The message a decoded frame holds; :class:`MessageError` when it holds none."""
    name = data.get("type")
    cls = BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise MessageError(f"unknown message type {data.get('type')!r}")
    PRESENCE[cls].check(data)
    try:
        message: Message = msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise MessageError(f"{TYPE_NAMES[cls]} message: {exc}") from None
    return message


def expect(data: Mapping[str, Any], *types: type) -> Any:
    """:func:`from_wire`, refusing any message type but ``types``."""
    message = from_wire(data)
    if not isinstance(message, types):
        names = " or ".join(TYPE_NAMES[cls] for cls in types)
        raise MessageError(f"expected a {names} message, got {TYPE_NAMES[type(message)]}")
    return message
