"""Exporters, and how export failures are kept from stalling or flooding a run.

Export never holds up the batch: exports run on the SDK's background threads, an OTLP
exporter that fails is skipped for a while instead of retrying on every batch, and its
error logs become one warning per process.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from workers.telemetry.settings import EXPORT_COOLDOWN_S

# Loggers whose export-failure messages are folded into one warning per process.
_EXPORT_LOGGERS = (
    "opentelemetry.exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk.trace.export",
)

logger = logging.getLogger(__name__)


class ExportGuard(logging.Handler):
    """Swallows the OTLP exporter's and batch processors' logs; the first warning or
    error becomes a single line on stderr for the whole process. It also keeps whether
    the latest news from a network exporter was a failure (then shutdown does not wait).

    There is one per process, attached to the export loggers (themselves process-wide):
    :func:`install_export_log_guard` finds it there, so this module holds no state."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warned = False
        self.last_failure = 0.0
        self.last_success = 0.0

    def failed(self) -> None:
        self.last_failure = time.monotonic()

    def succeeded(self) -> None:
        self.last_success = time.monotonic()

    @property
    def failing(self) -> bool:
        return self.last_failure > self.last_success

    def emit(self, record: logging.LogRecord) -> None:
        self.failed()
        if self.warned:
            return
        self.warned = True
        try:
            detail = record.getMessage().splitlines()[0][:300]
        except Exception:
            detail = record.msg if isinstance(record.msg, str) else "export failed"
        sys.stderr.write(
            f"needle-pipeline: warning: telemetry export failed ({detail}); the run goes on, "
            "and telemetry that cannot be delivered is dropped (no further warnings)\n"
        )
        sys.stderr.flush()


def installed_guard() -> ExportGuard | None:
    """The process's :class:`ExportGuard`, if a network exporter installed it."""
    for handler in logging.getLogger(_EXPORT_LOGGERS[0]).handlers:
        if isinstance(handler, ExportGuard):
            return handler
    return None


def export_failing() -> bool:
    """Whether the latest news from a network exporter of this process was a failure."""
    guard = installed_guard()
    return guard is not None and guard.failing


def install_export_log_guard() -> ExportGuard:
    """Idempotent: route the export loggers to the process's one :class:`ExportGuard`.
    (Called while providers are built, on the main thread.)"""
    guard = installed_guard()
    if guard is None:
        guard = ExportGuard()
        for name in _EXPORT_LOGGERS:
            export_logger = logging.getLogger(name)
            export_logger.addHandler(guard)
            export_logger.propagate = False
    return guard


class GuardedSpanExporter(SpanExporter):
    """Wraps a network exporter: after a failed export, batches are dropped at once for
    :data:`EXPORT_COOLDOWN_S` (then tried again), so an unreachable collector costs one
    bounded export attempt, not one per batch, and never a full queue of retries."""

    def __init__(
        self,
        inner: SpanExporter,
        cooldown_s: float = EXPORT_COOLDOWN_S,
        guard: ExportGuard | None = None,  # told of each success and failure
    ) -> None:
        self.inner = inner
        self.cooldown_s = cooldown_s
        self.guard = guard
        self._skip_until = 0.0
        self._closing = False
        self._inner_closed = False
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if (self._closing and self._skip_until) or time.monotonic() < self._skip_until:
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            logger.warning("span export raised %s: %s", type(exc).__name__, exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            if self.guard is not None:
                self.guard.failed()
            self._skip_until = time.monotonic() + self.cooldown_s
        else:
            if self.guard is not None:
                self.guard.succeeded()
            self._skip_until = 0.0
        return result

    def abort(self) -> None:
        """Stop waiting: the export in progress gives up its retries."""
        self._skip_until = self._skip_until or 1.0
        self.shutdown()

    def shutdown(self) -> None:
        self._closing = True
        with self._lock:
            if self._inner_closed:
                return
            self._inner_closed = True
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class OtlpJsonFileMetricExporter(MetricExporter):
    """Appends each collection as one OTLP/JSON ``ExportMetricsServiceRequest`` line."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        import orjson
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        line = orjson.dumps(MessageToDict(encode_metrics(metrics_data))) + b"\n"
        with self._lock:
            if self._fd < 0:
                return MetricExportResult.FAILURE
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class OtlpJsonFileSpanExporter(SpanExporter):
    """Appends each export batch as one OTLP/JSON ``ExportTraceServiceRequest`` line.

    The file is opened in append mode and every batch is a single ``write``, so the
    supervisor and all workers can share one file.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        import orjson
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        message = MessageToDict(encode_spans(spans))
        _hex_ids(message)
        line = orjson.dumps(message) + b"\n"
        with self._lock:
            if self._fd < 0:
                return SpanExportResult.FAILURE
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _hex_ids(message: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON uses base64."""
    import base64

    for resource_spans in message.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = base64.b64decode(link[key]).hex()
