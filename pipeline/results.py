"""The output line: one JSON object per request, and its codec.

This module is the one definition of the results file's schema; the supervisor writes
through :func:`encode_line`, and resume, evaluation and the benchmark read through
:func:`decode_line`. Keys come out in a fixed order: ``id, line, status, calls, error,
trace_id, model, usage, latency_ms`` and, with ``--dispatch``, ``results``; an ok line
of a model that reports token probabilities also has ``confidence``, ``call_confidence``,
``ungrounded`` and ``repeated`` after ``calls``; ``reformatted`` where a string was put in the
form its parameter asks, ``converted`` where a number was put in its parameter's unit,
``filled`` where an argument the model left out was filled in from the request; with
``--review-below``, ``review``; with ``--keep-columns``, ``columns`` comes last.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from workers.messages import ErrorInfo, RequestId, Usage

LABELS = (
    "confidence",
    "call_confidence",
    "ungrounded",
    "repeated",
    "reformatted",
    "converted",
    "filled",
    "review",
)  # after "calls", when known


class ResultLineError(ValueError):
    """A line that is not a result line."""


@dataclass(slots=True)
class ResultLine:
    id: RequestId
    line: int
    status: str  # "ok" or "error"
    calls: list[dict[str, Any]] = field(default_factory=list)
    error: ErrorInfo | None = None
    trace_id: str = ""
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    results: list[dict[str, Any]] | None = None  # --dispatch: what each call returned
    # How sure the model was and what it did not copy (ok lines, workers/confidence.py),
    # and, with --review-below, whether a person should check the line.
    confidence: float | None = None
    call_confidence: list[float] | None = None
    ungrounded: list[dict[str, Any]] | None = None
    repeated: list[dict[str, Any]] | None = None  # values given more often than said
    reformatted: list[dict[str, Any]] | None = None  # strings put in their parameter's form
    converted: list[dict[str, Any]] | None = None  # numbers put in their parameter's unit
    filled: list[dict[str, Any]] | None = None  # arguments left out, filled in from the request
    review: bool | None = None
    columns: dict[str, Any] | None = None  # --keep-columns: input fields, copied

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error_type(self) -> str | None:
        return self.error.type if self.error is not None else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "line": self.line,
            "status": self.status,
            "calls": self.calls,
        }
        for key in LABELS:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data |= {
            "error": self.error.to_dict() if self.error is not None else None,
            "trace_id": self.trace_id,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "latency_ms": self.latency_ms,
        }
        if self.results is not None:
            data["results"] = self.results
        if self.columns is not None:
            data["columns"] = self.columns
        return data


def encode_line(result: ResultLine) -> bytes:
    """One whole output line, newline included."""
    return orjson.dumps(result.to_dict()) + b"\n"


def decode_line(raw: bytes | str) -> ResultLine:
    """A result line read back; :class:`ResultLineError` when it is not one. Fields an
    earlier version did not write take their defaults."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ResultLineError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or "id" not in data:
        raise ResultLineError("not a result object")
    request_id, line = data["id"], data.get("line")
    if not isinstance(request_id, (str, int)) or not isinstance(line, int):
        raise ResultLineError("id or line missing or of the wrong type")
    try:
        return _from_dict(data, request_id, line)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ResultLineError(f"a field of the wrong type: {exc}") from None


def _from_dict(data: dict[str, Any], request_id: RequestId, line: int) -> ResultLine:
    error = data.get("error")
    usage = data.get("usage") or {}
    calls = data.get("calls") or []
    return ResultLine(
        id=request_id,
        line=line,
        status=str(data.get("status")),
        calls=calls if isinstance(calls, list) else [],
        error=ErrorInfo(str(error.get("type")), str(error.get("message", "")))
        if isinstance(error, dict)
        else None,
        trace_id=str(data.get("trace_id", "")),
        model=str(data.get("model", "")),
        usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
        if isinstance(usage, dict)
        else Usage(),
        latency_ms=float(data.get("latency_ms", 0.0)),
        results=data.get("results"),
        confidence=_number(data.get("confidence")),
        call_confidence=data.get("call_confidence"),
        ungrounded=data.get("ungrounded"),
        repeated=data.get("repeated"),
        reformatted=data.get("reformatted"),
        converted=data.get("converted"),
        filled=data.get("filled"),
        review=data.get("review") if isinstance(data.get("review"), bool) else None,
        columns=data.get("columns") if isinstance(data.get("columns"), dict) else None,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_results(path: str | Path) -> Iterator[ResultLine]:
    """Every result line of a results file (blank lines skipped)."""
    with open(path, "rb") as stream:
        for raw in stream:
            if raw.strip():
                yield decode_line(raw)
