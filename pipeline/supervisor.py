"""The anyio supervisor: reads requests, feeds a pool of worker processes, writes results.

Task ownership (all inside one task group, all stoppable):

- the reader turns input lines into jobs (or error results) and holds a window slot
  for each; the window bounds everything in flight, so memory stays flat;
- one slot task per worker owns that worker process, restarts it when it dies or
  hangs, and re-runs (up to ``max_attempts``) the request that was in flight;
- the writer writes results as they come (or in input order with ``ordered``),
  ends each request's root span and frees its window slot;
- the signal watcher turns the first SIGINT/SIGTERM into a graceful drain and the
  second into an immediate exit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import orjson
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from opentelemetry.trace import Span, Status, StatusCode

from pipeline.idset import IdSet
from pipeline.metrics import PipelineMetrics
from pipeline.models import ModelRef
from pipeline.requests import (
    RESUMED_BY_LINE,
    InputError,
    Request,
    RequestId,
    ToolCache,
    build_request,
    decode_line,
    read_id,
)
from pipeline.sink import JsonlSink, OutputError, ResumeState
from pipeline.source import JsonlSource, RawLine
from pipeline.telemetry import (
    INSTRUMENTATION_NAME,
    SUPERVISOR_SHUTDOWN_S,
    TelemetrySettings,
    annotate_root_result,
    create_tracer_provider,
    inject_trace_context,
    record_error,
    redact_error_message,
    shutdown_within,
    trace_id_hex,
)
from pipeline.workerproc import (
    WorkerDied,
    WorkerProcess,
    WorkerStartError,
    kill_all_workers_now,
)
from workers.engine import DecodingSettings

# Jobs sent to a worker ahead of its answers: the next is in its pipe when it finishes.
JOBS_AHEAD = 2
WRITER_GRACE_S = 2.0  # after the grace period, for results still being written
T = TypeVar("T")
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class FatalRunError(Exception):
    """The run cannot go on (the output cannot be written, workers cannot start)."""


@dataclass(frozen=True)
class RunConfig:
    input_path: str
    output_path: str
    model: ModelRef
    workers: int
    threads_per_worker: int
    prompt_format: str = "needle"
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    n_ctx: int = 0
    n_batch: int = 512
    timeout_s: float = 60.0
    max_attempts: int = 2
    ordered: bool = False
    overwrite: bool = False
    window: int = 0  # 0: chosen from the number of workers
    grace_s: float = 5.0
    start_timeout_s: float = 300.0
    max_line_bytes: int = 8 << 20
    default_tools: list[Any] | None = None
    dispatch: str | None = None  # MODULE:FUNCTION that runs each valid call
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    verbose: bool = False
    progress: bool = False

    def fingerprint(self) -> dict[str, Any]:
        """What decides the answers: a resume must use the same."""
        fingerprint: dict[str, Any] = {
            "model_sha256": self.model.digest(),
            "prompt_format": self.prompt_format,
            "max_tokens": self.decoding.max_tokens,
            "temperature": self.decoding.temperature,
            "seed": self.decoding.seed,
            "max_calls": self.decoding.max_calls,
            "max_string_length": self.decoding.max_string_length,
            "n_ctx": self.n_ctx,
            # --tools: the tools of every line that brings none of its own.
            "default_tools_sha256": (
                None
                if self.default_tools is None
                else hashlib.sha256(json.dumps(self.default_tools).encode()).hexdigest()
            ),
        }
        if self.dispatch:  # (absent otherwise: outputs of earlier versions still resume)
            fingerprint["dispatch"] = self.dispatch
        return fingerprint


@dataclass
class RunSummary:
    total: int = 0
    ok: int = 0
    errors: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    earlier_errors: int = 0  # error lines an earlier run of a resumed output wrote
    cancelled: int = 0
    wall_s: float = 0.0
    first_result_s: float | None = None
    model_name: str = ""
    worker_load_ms: list[float] = field(default_factory=list)
    worker_restarts: int = 0
    signal: int | None = None
    model_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reused_prefix_tokens: int = 0

    @property
    def requests_per_s(self) -> float:
        return (self.ok + self.errors) / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(slots=True, eq=False)
class Pending:
    """One request between being read and being written."""

    seq: int
    line: int
    id: RequestId
    span: Span
    read_at: float
    request: Request | None = None
    attempts: int = 0


@dataclass(slots=True)
class Outcome:
    pending: Pending
    record: dict[str, Any]


class Supervisor:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.summary = RunSummary()
        self.provider = create_tracer_provider(
            config.telemetry, {"process.pid": os.getpid(), "needle.process.role": "supervisor"}
        )
        self.tracer = self.provider.get_tracer(INSTRUMENTATION_NAME)
        self.metrics = PipelineMetrics(
            config.telemetry, {"process.pid": os.getpid(), "needle.process.role": "supervisor"}
        )
        self.sink = JsonlSink(config.output_path)
        self.workers: dict[int, WorkerProcess] = {}
        self._stopping = False
        self._started = 0.0
        self._seq = 0
        self._model_name = ""
        self._ready_once = False  # some worker has loaded the model
        # Created in run(): anyio primitives need the running event loop.
        self.window: anyio.Semaphore
        self._reader_scope: anyio.CancelScope
        self._slots_scope: anyio.CancelScope

    @property
    def _window_size(self) -> int:
        return self.config.window or max(4, self.config.workers * 4)

    # -- the run ---------------------------------------------------------------

    async def run(self) -> RunSummary:
        config = self.config
        self._started = time.perf_counter()
        self.window = anyio.Semaphore(self._window_size)
        self._reader_scope = anyio.CancelScope()
        self._slots_scope = anyio.CancelScope()
        self._writer_scope = anyio.CancelScope()
        self.summary.skipped = 0
        try:
            resume = self.sink.open(config.fingerprint(), config.overwrite)
            self.summary.earlier_errors = resume.errors
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._watch_signals, outer)
                if config.progress:
                    outer.start_soon(self._show_progress)
                await self._run_pipeline(resume)
                outer.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise first_failure(group) from None
        finally:
            failing = sys.exc_info()[1] is not None
            if self.summary.signal is not None:  # stopping on a signal: another one ends it
                for signum in EXIT_CODES:
                    signal.signal(signum, _exit_on_signal)
            try:
                self.sink.close()
            except OutputError:
                if not failing:  # else the failure in flight says more
                    raise
            finally:
                self.summary.wall_s = time.perf_counter() - self._started
                shutdown_within(SUPERVISOR_SHUTDOWN_S, self.provider, self.metrics.provider)
        return self.summary

    async def _run_pipeline(self, resume: ResumeState) -> None:
        # Both streams hold a whole window, and every request holds a window slot from
        # being read to being written: sends never block, so a stop cannot catch a
        # request between two owners (it is always in a stream or with one task).
        job_tx, job_rx = anyio.create_memory_object_stream[Pending](self._window_size)
        out_tx, out_rx = anyio.create_memory_object_stream[Outcome](self._window_size)
        leftovers = job_rx.clone()
        async with anyio.create_task_group() as group:
            group.start_soon(self._read, job_tx, out_tx.clone(), resume)
            group.start_soon(self._run_slots, job_rx, out_tx)
            group.start_soon(self._write, out_rx)
        async with leftovers:  # jobs queued but never started (the run was stopped)
            for pending in take_waiting(leftovers):
                self._abandon(pending)

    # -- reading ---------------------------------------------------------------

    async def _read(
        self,
        job_tx: MemoryObjectSendStream[Pending],
        out_tx: MemoryObjectSendStream[Outcome],
        resume: ResumeState,
    ) -> None:
        config = self.config
        source = JsonlSource(config.input_path, config.max_line_bytes)
        seen = IdSet()
        tools = ToolCache()
        async with job_tx, out_tx:
            with self._reader_scope:
                try:
                    async with aclosing(source.batches()) as batches:
                        async for batch in batches:
                            for raw in batch:
                                await self._read_line(raw, seen, tools, resume, job_tx, out_tx)
                finally:
                    source.close()

    async def _read_line(
        self,
        raw: RawLine,
        seen: IdSet,
        tools: ToolCache,
        resume: ResumeState,
        job_tx: MemoryObjectSendStream[Pending],
        out_tx: MemoryObjectSendStream[Outcome],
    ) -> None:
        line = raw.number
        error: InputError | None = None
        request: Request | None = None
        request_id: RequestId = line
        try:
            if raw.too_long:
                raise InputError(
                    line, "line_too_long", f"longer than {self.config.max_line_bytes} bytes"
                )
            document = decode_line(raw.data, line)
            request_id = read_id(document, line)
            # Only lines with a usable id take part in duplicate detection: a line that
            # is not even JSON must not make a later line's id look used.
            if not seen.add(request_id):
                raise InputError(
                    line,
                    "duplicate_id",
                    f"id {request_id!r} was already used by an earlier line",
                    request_id,
                )
            if request_id in resume.done_ids:  # an earlier run wrote its result
                self.summary.skipped += 1
                return
            request = build_request(document, line, request_id, self.config.default_tools, tools)
        except InputError as exc:
            error = exc
        except Exception as exc:  # no input line may take the run down
            error = InputError(
                line, "invalid_request", f"cannot be read: {type(exc).__name__}: {exc}", request_id
            )
        if error is not None and error.error_type in RESUMED_BY_LINE and line in resume.done_lines:
            self.summary.skipped += 1
            return
        await self.window.acquire()
        pending = self._new_pending(line, error.id if error else request_id, request)
        if error is not None:
            pending.span.set_attribute("needle.error.type", error.error_type)
            record = self._error_record(pending, error.error_type, error.message)
            out_tx.send_nowait(Outcome(pending, record))  # room: it holds a whole window
        else:
            self.metrics.request_queued()
            job_tx.send_nowait(pending)

    def _new_pending(self, line: int, request_id: RequestId, request: Request | None) -> Pending:
        self._seq += 1
        span = self.tracer.start_span(
            "process_request",
            attributes={
                "openinference.span.kind": "CHAIN",
                "needle.request.id": str(request_id),
                "needle.input.line": line,
            },
        )
        if request is not None:
            span.set_attribute("needle.tools.count", len(request.tools))
            if self.config.telemetry.capture_content:
                span.set_attribute("input.value", request.query)
        return Pending(self._seq, line, request_id, span, time.perf_counter(), request)

    # -- workers ---------------------------------------------------------------

    async def _run_slots(
        self, job_rx: MemoryObjectReceiveStream[Pending], out_tx: MemoryObjectSendStream[Outcome]
    ) -> None:
        async with job_rx, out_tx:
            with self._slots_scope:
                async with anyio.create_task_group() as slots:
                    for index in range(self.config.workers):
                        slots.start_soon(self._serve_slot, index, job_rx.clone(), out_tx.clone())

    async def _serve_slot(
        self,
        index: int,
        job_rx: MemoryObjectReceiveStream[Pending],
        out_tx: MemoryObjectSendStream[Outcome],
    ) -> None:
        """Own worker ``index`` for the whole run: start it, feed it, replace it when it fails."""
        retries: list[Pending] = []  # requests whose worker died, to run again
        failed_starts = 0
        first_start = True
        async with job_rx, out_tx:
            try:
                while True:
                    async with anyio.create_task_group() as pumps:
                        try:
                            worker = await WorkerProcess.start(
                                index,
                                self._init_message(index),
                                pumps,
                                verbose=self.config.verbose,
                                start_timeout_s=self.config.start_timeout_s,
                            )
                        except WorkerStartError as exc:
                            # Fatal when the model seems not to load at all (no worker ever
                            # got ready), or this slot keeps failing; else (a worker killed
                            # while loading) try again.
                            failed_starts += 1
                            if (first_start and not self._ready_once) or failed_starts >= 3:
                                raise FatalRunError(str(exc)) from None
                            pumps.cancel_scope.cancel()
                            continue
                        if not first_start:
                            self.summary.worker_restarts += 1
                        first_start = False
                        failed_starts = 0
                        self._ready_once = True
                        self.workers[index] = worker
                        self._model_name = worker.ready.get("model", "")
                        self.summary.model_name = self._model_name
                        self.summary.worker_load_ms.append(float(worker.ready.get("load_ms", 0.0)))
                        finished = False
                        try:
                            # _feed owns the retries from here on (it abandons them if stopped).
                            handed, retries = retries, []
                            retries, finished = await self._feed(worker, job_rx, out_tx, handed)
                        finally:
                            self.workers.pop(index, None)
                            with anyio.CancelScope(shield=True):
                                if finished:
                                    await worker.stop()
                                else:
                                    await worker.kill()
                            pumps.cancel_scope.cancel()
                    if finished:
                        return
                    if self._stopping:  # no replacement worker just to stop it again
                        for pending in retries:
                            self._abandon(pending)
                        return
            except BaseException:
                for pending in retries:  # stopped before a replacement worker could run them
                    self._abandon(pending)
                raise

    async def _feed(
        self,
        worker: WorkerProcess,
        job_rx: MemoryObjectReceiveStream[Pending],
        out_tx: MemoryObjectSendStream[Outcome],
        retries: list[Pending],
    ) -> tuple[list[Pending], bool]:
        """Run jobs on ``worker``; returns (jobs to run on a replacement, input finished).

        Up to :data:`JOBS_AHEAD` jobs are sent ahead, so the worker starts the next one
        the moment it answers instead of waiting for the supervisor. It answers in the
        order it was sent; the first job not yet answered (the head) is the one it is
        running, and only the head is charged with a timeout or a crash; the jobs queued
        behind it are run again on the replacement.
        """
        config = self.config
        sent: deque[Pending] = deque()
        input_done = False
        try:
            while True:
                while len(sent) < JOBS_AHEAD and not self._stopping:
                    if retries:
                        pending = retries.pop(0)
                    elif input_done:
                        break
                    else:
                        try:  # wait for work only when the worker has none
                            pending = job_rx.receive_nowait() if sent else await job_rx.receive()
                        except anyio.WouldBlock:
                            break
                        except anyio.EndOfStream:
                            input_done = True
                            break
                    sent.append(pending)
                    pending.span.set_attribute(
                        "needle.queue_wait_ms", (time.perf_counter() - pending.read_at) * 1000
                    )
                    try:
                        await worker.send(self._job_message(pending))
                    except TypeError as exc:  # the job cannot be encoded; nothing was sent
                        sent.pop()
                        message = f"cannot be sent to a worker: {exc}"
                        record = self._error_record(pending, "internal_error", message)
                        out_tx.send_nowait(Outcome(pending, record))
                    except WorkerDied:
                        break  # the head's receive below reports the death
                if not sent:
                    for pending in retries:  # stopping: left for a resume
                        self._abandon(pending)
                    return [], True
                head = sent[0]
                head.attempts += 1
                self.metrics.request_started(head.attempts)
                # Results go out with send_nowait: the stream holds a whole window, so it
                # never blocks, and a stop cannot strike between a result and its line.
                try:
                    with anyio.fail_after(config.timeout_s):
                        reply = await worker.receive()
                except TimeoutError:
                    sent.popleft()
                    message = (
                        f"no answer within {config.timeout_s:g}s; worker {worker.index} "
                        f"(pid {worker.pid}) was replaced"
                    )
                    out_tx.send_nowait(Outcome(head, self._error_record(head, "timeout", message)))
                    return [*sent, *retries], False
                except WorkerDied as died:
                    sent.popleft()
                    head.span.add_event("worker_died", {"message": str(died)})
                    if head.attempts >= config.max_attempts:
                        message = f"{died}; gave up after {head.attempts} attempts"
                        record = self._error_record(head, "worker_crashed", message)
                        out_tx.send_nowait(Outcome(head, record))
                        return [*sent, *retries], False
                    return [head, *sent, *retries], False
                sent.popleft()
                out_tx.send_nowait(Outcome(head, self._result_record(head, reply, worker)))
        except BaseException:
            for pending in [*sent, *retries]:
                self._abandon(pending)
            raise

    def _init_message(self, index: int) -> dict[str, Any]:
        config = self.config
        return {
            "type": "init",
            "worker_index": index,
            "model_path": str(config.model.path),
            "prompt_format": config.prompt_format,
            "n_ctx": config.n_ctx,
            "n_threads": config.threads_per_worker,
            "n_batch": config.n_batch,
            "decoding": config.decoding.__dict__,
            "telemetry": config.telemetry.to_dict(),
            "verbose": config.verbose,
            "dispatch": config.dispatch,
        }

    def _job_message(self, pending: Pending) -> dict[str, Any]:
        request = pending.request
        assert request is not None
        return {
            "type": "job",
            "seq": pending.seq,
            "id": request.id,
            "query": request.query,
            "tools": request.tools,
            "tools_key": request.tools_key,
            "trace": inject_trace_context(pending.span),
            "attempt": pending.attempts,
        }

    # -- results ---------------------------------------------------------------

    def _base_record(self, pending: Pending) -> dict[str, Any]:
        return {
            "id": pending.id,
            "line": pending.line,
            "status": "error",
            "calls": [],
            "error": None,
            "trace_id": trace_id_hex(pending.span),
            "model": self._model_name,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "latency_ms": 0.0,
        }

    def _error_record(self, pending: Pending, error_type: str, message: str) -> dict[str, Any]:
        record = self._base_record(pending)
        record["error"] = {"type": error_type, "message": message}
        capture = self.config.telemetry.capture_content
        record_error(pending.span, error_type, redact_error_message(error_type, message, capture))
        return record

    def _result_record(
        self, pending: Pending, reply: dict[str, Any], worker: WorkerProcess
    ) -> dict[str, Any]:
        record = self._base_record(pending)
        record["status"] = reply["status"]
        record["calls"] = reply["calls"]
        record["error"] = reply["error"]
        if "results" in reply:  # --dispatch: what each call returned, in call order
            record["results"] = reply["results"]
        record["usage"] = reply["usage"]
        summary = self.summary
        summary.model_ms += float(reply.get("model_ms", 0.0))
        summary.prompt_tokens += reply["usage"]["prompt_tokens"]
        summary.completion_tokens += reply["usage"]["completion_tokens"]
        summary.reused_prefix_tokens += int(reply.get("reused_prefix_tokens", 0))
        span = pending.span
        span.set_attribute("needle.worker.index", worker.index)
        span.set_attribute("needle.worker.pid", worker.pid)
        span.set_attribute("needle.attempts", pending.attempts)
        span.set_attribute("needle.retries", pending.attempts - 1)
        self.metrics.record_reply(reply, worker.index, self._model_name)
        return record

    async def _write(self, out_rx: MemoryObjectReceiveStream[Outcome]) -> None:
        ordered = self.config.ordered
        held: dict[int, Outcome] = {}
        next_seq = 1
        async with out_rx:
            with self._writer_scope:
                async for outcome in out_rx:
                    # whatever else is already waiting goes too: one write per batch
                    ready = [outcome, *take_waiting(out_rx)]
                    if ordered:
                        for item in ready:
                            held[item.pending.seq] = item
                        ready = []
                        while next_seq in held:
                            ready.append(held.pop(next_seq))
                            next_seq += 1
                    await self._emit(ready)
            # Stopped while the output was blocked (a reader that stopped reading): what
            # was not written is left for a resume.
            for outcome in take_waiting(out_rx):
                self._abandon(outcome.pending)
            # Ordered mode after a stop: results held behind a request that never finished
            # are dropped, not written out of order; the resume redoes them and appends
            # in order, so the file stays in input order across interruptions.
            for seq in sorted(held):
                self._abandon(held[seq].pending)

    async def _emit(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        now = time.perf_counter()
        lines = []
        for outcome in outcomes:
            outcome.record["latency_ms"] = round((now - outcome.pending.read_at) * 1000, 3)
            lines.append(orjson.dumps(outcome.record) + b"\n")
        try:
            # the file keeps whole lines only, even when this fails
            await self.sink.write_async(lines)
        except (OutputError, anyio.get_cancelled_exc_class()):  # a resume redoes these
            for outcome in outcomes:
                self._abandon(outcome.pending)
            raise
        if self.summary.first_result_s is None:
            self.summary.first_result_s = now - self._started
        for outcome in outcomes:
            self._finish(outcome)

    def _finish(self, outcome: Outcome) -> None:
        record = outcome.record
        span = outcome.pending.span
        summary = self.summary
        summary.total += 1
        annotate_root_result(
            span, record, outcome.pending.attempts, self.config.telemetry.capture_content
        )
        self.metrics.record_request(record)
        if record["status"] == "ok":
            summary.ok += 1
        else:
            summary.errors += 1
            error_type = record["error"]["type"]
            summary.error_types[error_type] += 1
            span.set_attribute("needle.error.type", error_type)
        span.end()
        self.window.release()

    def _abandon(self, pending: Pending) -> None:
        """A request the run stopped before finishing: no output line; a resume redoes it."""
        self.summary.cancelled += 1
        self.metrics.record_cancelled()
        pending.span.set_attribute("needle.status", "cancelled")
        pending.span.set_status(
            Status(StatusCode.ERROR, "run stopped before this request finished")
        )
        pending.span.end()

    # -- signals and progress --------------------------------------------------

    async def _watch_signals(self, outer: TaskGroup) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.summary.signal is None:
                    self.summary.signal = signum
                    self._begin_drain(signum)
                else:
                    self._exit_now(signum)

    def _begin_drain(self, signum: int) -> None:
        name = signal.Signals(signum).name
        sys.stderr.write(
            f"\nneedle-pipeline: {name}: stopping; finishing requests in flight "
            f"(up to {self.config.grace_s:g}s). Send it again to exit at once.\n"
        )
        self._stopping = True
        self._reader_scope.cancel()
        self._slots_scope.deadline = anyio.current_time() + self.config.grace_s
        # Writing the last results takes moments; longer means the output is blocked.
        self._writer_scope.deadline = self._slots_scope.deadline + WRITER_GRACE_S

    def _exit_now(self, signum: int) -> None:
        kill_all_workers_now()  # those still loading the model too
        try:
            self.sink.close()
        finally:
            os._exit(EXIT_CODES.get(signal.Signals(signum), 1))

    async def _show_progress(self) -> None:
        while True:
            await anyio.sleep(0.5)
            self._print_progress()

    def _print_progress(self) -> None:
        summary = self.summary
        elapsed = time.perf_counter() - self._started
        rate = summary.total / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(
            f"\r{summary.total} done ({summary.ok} ok, {summary.errors} errors"
            + (f", {summary.skipped} resumed" if summary.skipped else "")
            + f")  {rate:.1f} req/s  {elapsed:.0f}s\x1b[K"
        )
        sys.stderr.flush()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    """A second signal while output and telemetry are flushed: exit at once."""
    os._exit(EXIT_CODES.get(signal.Signals(signum), 1))


def first_failure(group: BaseExceptionGroup) -> BaseException:
    """The exception that stopped the run, out of the task groups' nesting.

    A known reason to stop (the output, the workers) wins over what it set off in other
    tasks (cancellation, a closed stream).
    """
    leaves = list(_leaves(group))
    for leaf in leaves:
        if isinstance(leaf, (OutputError, FatalRunError)):
            return leaf
    cancelled = anyio.get_cancelled_exc_class()
    for leaf in leaves:
        if not isinstance(leaf, cancelled):
            return leaf
    return leaves[0]


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def threads_per_worker(workers: int) -> int:
    """Split the cores this process may use between workers, so none is oversubscribed."""
    return max(1, math.floor(len(os.sched_getaffinity(0)) / workers))


def take_waiting(stream: MemoryObjectReceiveStream[T]) -> list[T]:
    """Whatever is waiting in ``stream`` now, without waiting for more."""
    items: list[T] = []
    while True:
        try:
            items.append(stream.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return items
