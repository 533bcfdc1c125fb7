"""How each request ends: a result line, an error line, or abandoned for a resume.

The reader and the pool report every request here exactly once, and the writer reports
each line it wrote; this is where the output line is built
(:class:`pipeline.results.ResultLine`), the request's root span annotated and ended, and
the run's summary and metrics counted. Nothing else counts or ends a request.
"""

from __future__ import annotations

from anyio.streams.memory import MemoryObjectSendStream
from opentelemetry.trace import Status, StatusCode

from pipeline.answercache import AnswerCache
from pipeline.config import RunSummary
from pipeline.metrics import PipelineMetrics
from pipeline.results import ResultLine
from pipeline.work import Outcome, Pending
from workers.errors import ErrorType
from workers.messages import ErrorInfo, Ready, Result, Usage
from workers.telemetry.attributes import (
    annotate_root_result,
    record_error,
    redact_error_message,
    trace_id_hex,
)


class Outcomes:
    def __init__(
        self,
        out_tx: MemoryObjectSendStream[Outcome],
        summary: RunSummary,
        metrics: PipelineMetrics,
        capture_content: bool,
        review_below: float | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        # The stream holds a whole window, so sends never block: a stop cannot strike
        # between a request's end and its place in the stream.
        self.out_tx = out_tx
        self.summary = summary
        self.metrics = metrics
        self.capture_content = capture_content
        self.review_below = review_below  # --review-below: mark less sure lines for review
        self.cache = cache  # answers of this run, for the same request again
        self.ready_once = False  # some worker has loaded the model

    # -- from the reader --------------------------------------------------------------

    def skipped(self) -> None:
        """An input line an earlier run already answered (resume)."""
        self.summary.skipped += 1

    def queued(self) -> None:
        """A request went to the pool."""
        self.metrics.request_queued()

    def answered_before(self, pending: Pending) -> bool:
        """End ``pending`` with the answer an earlier line of the same request got in this
        run, if there is one (no worker, no tokens: its usage is zero)."""
        if self.cache is None or pending.request is None:
            return False
        answer = self.cache.get(pending.request)
        if answer is None:
            return False
        result = self._from_reply(pending, answer)
        result.usage = Usage()
        self.summary.cached += 1
        pending.span.set_attribute("needle.cached", True)
        self.out_tx.send_nowait(Outcome(pending, result))
        return True

    # -- from the pool ----------------------------------------------------------------

    def worker_ready(self, ready: Ready, restarted: bool) -> None:
        if restarted:
            self.summary.worker_restarts += 1
        self.ready_once = True
        self.summary.model_name = ready.model
        self.summary.worker_load_ms.append(ready.load_ms)

    def started(self, pending: Pending) -> None:
        """A worker is running ``pending`` (its attempt count is up to date)."""
        self.metrics.request_started(pending.attempts)

    def replied(self, pending: Pending, reply: Result, worker_index: int, pid: int) -> None:
        result = self._from_reply(pending, reply)
        if self.cache is not None and pending.request is not None:
            self.cache.put(pending.request, reply)
        summary = self.summary
        summary.model_ms += reply.model_ms
        summary.prompt_tokens += reply.usage.prompt_tokens
        summary.completion_tokens += reply.usage.completion_tokens
        summary.reused_prefix_tokens += reply.reused_prefix_tokens
        pending.span.set_attributes(
            {
                "needle.worker.index": worker_index,
                "needle.worker.pid": pid,
                "needle.attempts": pending.attempts,
                "needle.retries": pending.attempts - 1,
            }
        )
        self.metrics.record_reply(reply, worker_index, self.summary.model_name)
        self.out_tx.send_nowait(Outcome(pending, result))

    def _from_reply(self, pending: Pending, reply: Result) -> ResultLine:
        result = self._base(pending)
        result.status, result.calls, result.error = reply.status, reply.calls, reply.error
        result.results = reply.results
        result.usage = reply.usage
        result.confidence, result.call_confidence = reply.confidence, reply.call_confidence
        result.ungrounded, result.repeated = reply.ungrounded, reply.repeated
        result.reformatted = reply.reformatted
        result.converted, result.filled = reply.converted, reply.filled
        self._label(pending, result)
        return result

    def _label(self, pending: Pending, result: ResultLine) -> None:
        """The root span says how sure the answer is; with ``--review-below`` an ok line
        less sure than that, with a string the request does not hold, or with a value given
        to more arguments than the request says it, is for review."""
        if result.confidence is not None:
            pending.span.set_attribute("needle.confidence", result.confidence)
        if result.ungrounded is not None:
            pending.span.set_attribute("needle.ungrounded.count", len(result.ungrounded))
        if result.repeated is not None:
            pending.span.set_attribute("needle.repeated.count", len(result.repeated))
        if result.reformatted:
            pending.span.set_attribute("needle.reformatted.count", len(result.reformatted))
        if result.converted:
            pending.span.set_attribute("needle.converted.count", len(result.converted))
        if result.filled:
            pending.span.set_attribute("needle.filled.count", len(result.filled))
        if self.review_below is None or result.status != "ok":
            return
        unsure = result.confidence is not None and result.confidence < self.review_below
        result.review = unsure or bool(result.ungrounded) or bool(result.repeated)
        pending.span.set_attribute("needle.review", result.review)
        self.summary.review += result.review

    def failed(self, pending: Pending, error_type: str, message: str) -> None:
        """``pending`` ends as an error line (a bad input line, a timeout, a crash)."""
        result = self._base(pending)
        result.error = ErrorInfo(ErrorType(error_type), message)
        redacted = redact_error_message(error_type, message, self.capture_content)
        record_error(pending.span, error_type, redacted)
        self.out_tx.send_nowait(Outcome(pending, result))

    # -- from the writer --------------------------------------------------------------

    def written(self, outcomes: list[Outcome], at: float, run_started: float) -> None:
        """These lines are in the output (``at``: when): each request is counted, its root
        span annotated and ended."""
        summary = self.summary
        if summary.first_result_s is None:
            summary.first_result_s = at - run_started
        for outcome in outcomes:
            result, span = outcome.result, outcome.pending.span
            summary.total += 1
            annotate_root_result(
                span,
                result.status,
                result.calls,
                result.error_type,
                result.error.message if result.error else None,
                outcome.pending.attempts,
                self.capture_content,
            )
            self.metrics.record_request(result.status, result.error_type)
            if result.ok:
                summary.ok += 1
            else:
                summary.errors += 1
                error_type = result.error_type or "error"
                summary.error_types[error_type] += 1
                span.set_attribute("needle.error.type", error_type)
            span.end()

    def abandon(self, pending: Pending) -> None:
        """A request the run stopped before finishing: no output line; a resume redoes it."""
        self.summary.cancelled += 1
        self.metrics.record_cancelled()
        pending.span.set_attribute("needle.status", "cancelled")
        pending.span.set_status(
            Status(StatusCode.ERROR, "run stopped before this request finished")
        )
        pending.span.end()

    def _base(self, pending: Pending) -> ResultLine:
        return ResultLine(
            id=pending.id,
            line=pending.line,
            status="error",
            trace_id=trace_id_hex(pending.span),
            model=self.summary.model_name,
            columns=pending.columns,
        )
