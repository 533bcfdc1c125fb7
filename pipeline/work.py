"""A request in flight (:class:`Pending`) and how it ended (:class:`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from opentelemetry.trace import Span

from pipeline.requests import Request, RequestId
from pipeline.results import ResultLine
from workers.messages import Job

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Pending:
    """One request between being read and being written; it holds a window slot."""

    seq: int
    line: int
    id: RequestId
    span: Span
    read_at: float
    request: Request | None = None
    trace: dict[str, str] = field(default_factory=dict)  # the root span's traceparent
    attempts: int = 0
    columns: dict[str, Any] | None = None  # --keep-columns: input fields for the output

    def job(self) -> Job:
        request = self.request
        assert request is not None
        return Job(
            seq=self.seq,
            id=request.id,
            query=request.query,
            tools=request.tools,
            tools_key=request.tools_key,
            trace=self.trace,
            attempt=self.attempts,
            choice=request.choice,
            history=list(request.history),
        )


@dataclass(slots=True)
class Outcome:
    pending: Pending
    result: ResultLine


def take_waiting(stream: MemoryObjectReceiveStream[T]) -> list[T]:
    """Whatever is waiting in ``stream`` now, without waiting for more."""
    items: list[T] = []
    while True:
        try:
            items.append(stream.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return items
