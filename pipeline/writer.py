"""The writer: result lines into the sink, in completion or input order.

Once a line is written, :meth:`pipeline.outcomes.Outcomes.written` counts the request
and ends its root span, and its window slot is freed; what the run stops before writing
is abandoned, for a resume to redo.
"""

from __future__ import annotations

import time

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from pipeline.formats import LineFormats
from pipeline.outcomes import Outcomes
from pipeline.sink import JsonlSink, OutputError
from pipeline.work import Outcome, take_waiting


class Writer:
    def __init__(
        self,
        sink: JsonlSink,
        outcomes: Outcomes,
        window: anyio.Semaphore,
        *,
        ordered: bool,
        started: float,
        formats: LineFormats | None = None,
    ) -> None:
        self.formats = formats if formats is not None else LineFormats("native", "native")
        self.sink = sink
        self.outcomes = outcomes
        self.window = window
        self.ordered = ordered
        self.started = started
        self._held: dict[int, Outcome] = {}  # ordered mode: results waiting for earlier ones
        self._next_seq = 1

    async def run(self, out_rx: MemoryObjectReceiveStream[Outcome]) -> None:
        async with out_rx:
            try:
                async for outcome in out_rx:
                    # whatever else is already waiting goes too: one write per batch
                    await self._emit(self._in_order([outcome, *take_waiting(out_rx)]))
            finally:
                self._abandon_unwritten(out_rx)

    def _in_order(self, ready: list[Outcome]) -> list[Outcome]:
        if not self.ordered:
            return ready
        for item in ready:
            self._held[item.pending.seq] = item
        ready = []
        while self._next_seq in self._held:
            ready.append(self._held.pop(self._next_seq))
            self._next_seq += 1
        return ready

    def _abandon_unwritten(self, out_rx: MemoryObjectReceiveStream[Outcome]) -> None:
        # Stopped while the output was blocked (a reader that stopped reading): what was
        # not written is left for a resume.
        for outcome in take_waiting(out_rx):
            self.outcomes.abandon(outcome.pending)
        # Ordered mode after a stop: results held behind a request that never finished
        # are dropped, not written out of order; the resume redoes them and appends in
        # order, so the file stays in input order across interruptions.
        for seq in sorted(self._held):
            self.outcomes.abandon(self._held.pop(seq).pending)

    async def _emit(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        now = time.perf_counter()
        lines = []
        for outcome in outcomes:
            outcome.result.latency_ms = round((now - outcome.pending.read_at) * 1000, 3)
            lines.append(self.formats.encode(outcome.result))
        try:
            # the file keeps whole lines only, even when this fails
            await self.sink.write_async(lines)
        except (OutputError, anyio.get_cancelled_exc_class()):  # a resume redoes these
            for outcome in outcomes:
                self.outcomes.abandon(outcome.pending)
            raise
        self.outcomes.written(outcomes, now, self.started)
        for _ in outcomes:
            self.window.release()
