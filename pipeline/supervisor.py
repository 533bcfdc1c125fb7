"""The supervisor: joins the reader, a worker pool and the writer, and owns stopping.

Task ownership (all inside one task group, all stoppable):

- the reader (:mod:`pipeline.reader`) turns input lines into jobs or error lines and
  holds a window slot for each; the window bounds everything in flight;
- the pool (:class:`pipeline.pool.WorkerPool`) runs the jobs;
- the writer (:mod:`pipeline.writer`) writes results, ends each request's root span
  and frees its window slot;
- the signal watcher turns the first SIGINT/SIGTERM into a graceful drain and the
  second into an immediate exit.

Both streams hold a whole window, and every request holds a window slot from being
read to being written: sends never block, so a stop cannot catch a request between
two owners (it is always in a stream or with one task).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from opentelemetry.sdk.trace import TracerProvider

from pipeline.answercache import AnswerCache
from pipeline.config import RunConfig, RunSummary
from pipeline.failures import first_failure
from pipeline.formats import LineFormats
from pipeline.metrics import PipelineMetrics
from pipeline.outcomes import Outcomes
from pipeline.pool import WorkerPool
from pipeline.progress import ProgressBar
from pipeline.reader import Reader
from pipeline.sink import JsonlSink, OutputError, ResumeState
from pipeline.tables import TableColumns
from pipeline.work import Outcome, Pending, take_waiting
from pipeline.writer import Writer
from workers.telemetry.providers import create_tracer_provider, shutdown_within
from workers.telemetry.settings import INSTRUMENTATION_NAME, SUPERVISOR_SHUTDOWN_S

WRITER_GRACE_S = 2.0  # after the grace period, for results still being written
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Supervisor:
    def __init__(self, config: RunConfig, pool: WorkerPool) -> None:
        self.config = config
        self.pool = pool  # pipeline.executor.make_pool(config)
        self.summary = RunSummary()
        self.sink = JsonlSink(config.output_path)
        self._started = 0.0

    async def run(self) -> RunSummary:
        config = self.config
        self._started = time.perf_counter()
        resource = {"process.pid": os.getpid(), "needle.process.role": "supervisor"}
        tracer_provider = create_tracer_provider(config.telemetry, resource)
        metrics = PipelineMetrics(config.telemetry, resource)
        try:
            # The model's sha256 and the resume scan read whole files: off the loop.
            resume = await anyio.to_thread.run_sync(self._open_sink)
            self.summary.earlier_errors = resume.errors
            self.summary.retried = resume.retried
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._watch_signals, outer)
                if config.progress:
                    outer.start_soon(self._show_progress, resume.lines)
                await self._run_pipeline(resume, tracer_provider, metrics)
                outer.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise first_failure(group) from None
        finally:
            failing = sys.exc_info()[1] is not None
            with anyio.CancelScope(shield=True):
                await self._close(failing, tracer_provider, metrics)
        return self.summary

    def _open_sink(self) -> ResumeState:
        config = self.config
        return self.sink.open(config.fingerprint(), config.overwrite, config.retry_errors)

    async def _close(
        self, failing: bool, tracer_provider: TracerProvider, metrics: PipelineMetrics
    ) -> None:
        """Close the output and flush telemetry (off the loop); a signal now exits at once."""
        previous: dict[int, Any] = {}
        if self.summary.signal is not None:  # stopping on a signal: another one ends it
            previous = {signum: signal.signal(signum, _exit_on_signal) for signum in EXIT_CODES}
        try:
            await anyio.to_thread.run_sync(self.sink.close)
        except OutputError:
            if not failing:  # else the failure in flight says more
                raise
        finally:
            self.summary.wall_s = time.perf_counter() - self._started
            await anyio.to_thread.run_sync(
                shutdown_within, SUPERVISOR_SHUTDOWN_S, tracer_provider, metrics.provider
            )
            for signum, handler in previous.items():  # as they were before the run
                signal.signal(signum, handler)

    async def _run_pipeline(
        self, resume: ResumeState, tracer_provider: TracerProvider, metrics: PipelineMetrics
    ) -> None:
        config = self.config
        size = config.window_size
        window = anyio.Semaphore(size)
        job_tx, job_rx = anyio.create_memory_object_stream[Pending](size)
        out_tx, out_rx = anyio.create_memory_object_stream[Outcome](size)
        leftovers = job_rx.clone()
        outcomes = Outcomes(
            out_tx,
            self.summary,
            metrics,
            config.telemetry.capture_content,
            review_below=config.review_below,
            cache=AnswerCache() if config.answer_cache and not config.dispatch else None,
        )
        tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME)
        formats = LineFormats(config.input_format, config.output_format)
        reader = Reader(
            config.input_path,
            config.max_line_bytes,
            config.default_tools,
            resume,
            window,
            outcomes,
            tracer,
            formats,
            chat=config.prompt_format == "chat",
            table=TableColumns(config.query_column, config.id_column, config.keep_columns),
            keep_columns=config.keep_columns,
        )
        writer = Writer(
            self.sink,
            outcomes,
            window,
            ordered=config.ordered,
            started=self._started,
            formats=formats,
        )
        self._reader_scope = anyio.CancelScope()
        self._pool_scope = anyio.CancelScope()
        self._writer_scope = anyio.CancelScope()
        async with anyio.create_task_group() as group:
            group.start_soon(self._produce, reader, job_tx, job_rx, outcomes, out_tx)
            group.start_soon(self._scoped, self._writer_scope, writer.run, out_rx)
        async with leftovers:  # jobs queued but never started (the run was stopped)
            for pending in take_waiting(leftovers):
                outcomes.abandon(pending)

    async def _produce(
        self,
        reader: Reader,
        job_tx: MemoryObjectSendStream[Pending],
        job_rx: MemoryObjectReceiveStream[Pending],
        outcomes: Outcomes,
        out_tx: MemoryObjectSendStream[Outcome],
    ) -> None:
        """The reader and the pool; the writer's stream ends when both are done."""
        async with out_tx, anyio.create_task_group() as producers:
            producers.start_soon(self._scoped, self._reader_scope, reader.run, job_tx)
            producers.start_soon(self._scoped, self._pool_scope, self.pool.serve, job_rx, outcomes)

    @staticmethod
    async def _scoped(scope: anyio.CancelScope, function: Any, *args: Any) -> None:
        with scope:
            await function(*args)

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
        self.pool.drain()
        self._reader_scope.cancel()
        self._pool_scope.deadline = anyio.current_time() + self.config.grace_s
        # Writing the last results takes moments; longer means the output is blocked.
        self._writer_scope.deadline = self._pool_scope.deadline + WRITER_GRACE_S

    def _exit_now(self, signum: int) -> None:
        self.pool.kill_now()  # those still loading the model too
        try:
            self.sink.close()
        finally:
            os._exit(EXIT_CODES.get(signal.Signals(signum), 1))

    async def _show_progress(self, resumed: int) -> None:
        bar = ProgressBar(self.config.input_path, resumed)
        try:
            while True:
                await anyio.sleep(0.25)
                bar.update(self.summary)
        finally:
            bar.close()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    """A second signal while output and telemetry are flushed: exit at once."""
    os._exit(EXIT_CODES.get(signal.Signals(signum), 1))
