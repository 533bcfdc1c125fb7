"""The reader: input lines become pending requests (for the pool) or error lines.

Every request it lets through takes a window slot first, so the window bounds all
that is in flight; lines an earlier run already answered are skipped (resume).
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from opentelemetry.trace import Tracer

from pipeline.batchinput import batch_id, build_batch_request
from pipeline.config import FatalRunError
from pipeline.formats import LineFormats
from pipeline.idset import IdSet
from pipeline.outcomes import Outcomes
from pipeline.requests import (
    InputError,
    Request,
    RequestId,
    ToolCache,
    build_request,
    decode_line,
    read_id,
)
from pipeline.sink import ResumeState
from pipeline.source import JsonlSource, RawLine
from pipeline.tables import TableColumns, TableError, TableSource, table_format
from pipeline.work import Pending
from workers.telemetry.attributes import inject_trace_context


class Reader:
    def __init__(
        self,
        input_path: str,
        max_line_bytes: int,
        default_tools: list[Any] | None,
        resume: ResumeState,
        window: anyio.Semaphore,
        outcomes: Outcomes,
        tracer: Tracer,
        formats: LineFormats | None = None,
        chat: bool = False,  # the chat prompt format: Batch lines may carry earlier turns
        table: TableColumns | None = None,  # CSV/Parquet input: which columns are what
        keep_columns: tuple[str, ...] = (),  # input fields copied to the output line
    ) -> None:
        self.chat = chat
        self.table = table
        self.keep_columns = keep_columns
        self.input_path = input_path
        self.formats = formats if formats is not None else LineFormats("native", "native")
        self.max_line_bytes = max_line_bytes
        self.default_tools = default_tools
        self.resume = resume
        self.window = window
        self.outcomes = outcomes
        self.tracer = tracer
        self._seen = IdSet()
        self._tools = ToolCache()
        self._seq = 0

    async def run(self, job_tx: MemoryObjectSendStream[Pending]) -> None:
        """Read to the end of the input (or until cancelled), then close ``job_tx``."""
        kind = table_format(self.input_path)
        source: JsonlSource | TableSource = (
            JsonlSource(self.input_path, self.max_line_bytes)
            if kind is None
            else TableSource(self.input_path, kind, self.table or TableColumns())
        )
        async with job_tx:
            try:
                if isinstance(source, TableSource):
                    await anyio.to_thread.run_sync(source.open)
                    self._seen.reserve(source.rows or 0)
                async with aclosing(source.batches()) as batches:
                    async for batch in batches:
                        for raw in batch:
                            await self._read_line(raw, job_tx)
            except TableError as exc:  # a missing column, an unreadable file
                raise FatalRunError(str(exc)) from None
            finally:
                source.close()

    async def _read_line(self, raw: RawLine, job_tx: MemoryObjectSendStream[Pending]) -> None:
        error, request_id, request, kept = self._parse(raw)
        if request_id is None:  # answered by an earlier run
            self.outcomes.skipped()
            return
        await self.window.acquire()
        pending = self._new_pending(raw.number, request_id, request)
        pending.columns = raw.columns if raw.columns is not None else kept
        if error is not None:
            pending.span.set_attribute("needle.error.type", error.error_type)
            self.outcomes.failed(pending, error.error_type, error.message)
        elif not self.outcomes.answered_before(pending):
            self.outcomes.queued()
            job_tx.send_nowait(pending)  # room: the stream holds a whole window

    def _parse(
        self, raw: RawLine
    ) -> tuple[InputError | None, RequestId | None, Request | None, dict[str, Any] | None]:
        """(error, id, request, the JSONL line's --keep-columns fields); the id is None for
        a line to skip."""
        line = raw.number
        request_id: RequestId = line
        kept: dict[str, Any] | None = None
        if not self.formats.settled:
            self.formats.settle(raw.data)
        batch = self.formats.input == "openai"
        try:
            if raw.too_long:
                raise InputError(line, "line_too_long", f"longer than {self.max_line_bytes} bytes")
            if raw.problem is not None:
                raise InputError(line, "invalid_row", raw.problem)
            document = decode_line(raw.data, line)
            if self.keep_columns:
                kept = {k: document[k] for k in self.keep_columns if k in document}
            request_id = batch_id(document, line) if batch else read_id(document, line)
            # Only lines with a usable id take part in duplicate detection: a line that
            # is not even JSON must not make a later line's id look used.
            if not self._seen.add(request_id):
                # Its error line must not pass for the first line's: it gets an id of its
                # own, the id and its line ("a (line 7)").
                raise InputError(
                    line,
                    "duplicate_id",
                    f"id {request_id!r} was already used by an earlier line",
                    f"{request_id} (line {line})",
                )
            if request_id in self.resume.done_ids:
                return None, None, None, None
            if batch:
                request = build_batch_request(
                    document, line, request_id, self.default_tools, self._tools, self.chat
                )
            else:
                request = build_request(document, line, request_id, self.default_tools, self._tools)
            return None, request_id, request, kept
        except InputError as exc:
            error = exc
        except Exception as exc:  # no input line may take the run down
            error = InputError(
                line, "invalid_request", f"cannot be read: {type(exc).__name__}: {exc}", request_id
            )
        if error.error_type.by_line and line in self.resume.done_lines:
            return None, None, None, None
        return error, error.id, None, kept

    def _new_pending(self, line: int, request_id: RequestId, request: Request | None) -> Pending:
        self._seq += 1
        attributes: dict[str, Any] = {
            "openinference.span.kind": "CHAIN",
            "needle.request.id": str(request_id),
            "needle.input.line": line,
        }
        if request is not None:
            attributes["needle.tools.count"] = len(request.tools)
            if self.outcomes.capture_content:
                attributes["input.value"] = request.query
        span = self.tracer.start_span("process_request", attributes=attributes)
        trace = inject_trace_context(span) if request is not None else {}
        return Pending(self._seq, line, request_id, span, time.perf_counter(), request, trace)
