"""OpenTelemetry setup shared by the supervisor and the worker processes.

Each process builds its own ``TracerProvider`` (and the supervisor its ``MeterProvider``)
from the same :class:`TelemetrySettings` (the workers receive them in their init
message) and from the standard ``OTEL_*`` environment variables, which the workers
inherit.

Export never holds up the batch: exports run on the SDK's background threads, an OTLP
exporter that fails is skipped for a while instead of retrying on every batch, its
error logs become one warning per process, and shutdown waits are bounded.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_EXPORTERS = ("none", "console", "otlp", "file")
METRIC_EXPORTERS = TRACE_EXPORTERS
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_SERVICE_NAME = "needle-pipeline"
INSTRUMENTATION_NAME = "needle_pipeline"
# Seconds one OTLP export may take (all its retries included) unless
# OTEL_EXPORTER_OTLP[_TRACES|_METRICS]_TIMEOUT says otherwise; the SDK's default is 10.
DEFAULT_EXPORT_TIMEOUT_S = 5.0
# After a failed export, batches are dropped at once for this long, then tried again.
EXPORT_COOLDOWN_S = 30.0
# Longest a process waits at exit for its telemetry to go out.
SUPERVISOR_SHUTDOWN_S = 5.0
WORKER_SHUTDOWN_S = 1.5  # below the supervisor's SIGTERM-to-SIGKILL grace (2 s)
REDACTED = "[content not captured]"
# Worker stderr lines with this prefix are console telemetry, shown by the supervisor.
CONSOLE_TELEMETRY_PREFIX = "\x1e[needle-telemetry] "
# Loggers whose export-failure messages are folded into one warning per process.
_EXPORT_LOGGERS = (
    "opentelemetry.exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk.trace.export",
)

_propagator = TraceContextTextMapPropagator()
logger = logging.getLogger(__name__)


class TelemetryConfigError(ValueError):
    """The tracing options do not make sense together."""


@dataclass(frozen=True)
class TelemetrySettings:
    traces: str = "none"
    traces_file: str | None = None
    capture_content: bool = False
    metrics: str = "none"
    metrics_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TelemetrySettings:
        return cls(**data)


def _choose(option: str | None, variable: str, environ: Mapping[str, str], what: str) -> str:
    if option is None:
        option = environ.get(variable, "none").split(",")[0].strip() or "none"
    option = option.lower()
    if option not in TRACE_EXPORTERS:
        raise TelemetryConfigError(
            f"unknown {what} exporter {option!r} (choose from {', '.join(TRACE_EXPORTERS)})"
        )
    return option


def resolve_settings(
    traces: str | None,
    traces_file: str | None,
    capture_content: bool,
    environ: Mapping[str, str] = os.environ,
    metrics: str | None = None,
    metrics_file: str | None = None,
) -> TelemetrySettings:
    """Command-line options win over ``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER``
    and the capture variable."""
    traces = _choose(traces, "OTEL_TRACES_EXPORTER", environ, "traces")
    metrics = _choose(metrics, "OTEL_METRICS_EXPORTER", environ, "metrics")
    if traces == "file" and not traces_file:
        raise TelemetryConfigError("--traces file needs --traces-file PATH")
    if metrics == "file" and not metrics_file:
        raise TelemetryConfigError("--metrics file needs --metrics-file PATH")
    if "otlp" in (traces, metrics):
        protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").strip().lower()
        if protocol not in ("grpc", ""):
            raise TelemetryConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only grpc is supported "
                "(the collector's port 4317)"
            )
    capture = capture_content or environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"
    return TelemetrySettings(
        traces=traces,
        traces_file=os.path.abspath(traces_file) if traces_file else None,
        capture_content=capture,
        metrics=metrics,
        metrics_file=os.path.abspath(metrics_file) if metrics_file else None,
    )


def make_resource(attributes: Mapping[str, Any]) -> Resource:
    """Our attributes plus ``OTEL_RESOURCE_ATTRIBUTES``/``OTEL_SERVICE_NAME``; the service
    is called needle-pipeline unless the environment names it."""
    attributes = dict(attributes)
    service = Resource.create({}).attributes.get("service.name", "")
    if not service or str(service).startswith("unknown_service"):
        attributes["service.name"] = DEFAULT_SERVICE_NAME
    return Resource.create(attributes)


def create_tracer_provider(
    settings: TelemetrySettings,
    resource_attributes: Mapping[str, Any],
    *,
    root: bool = True,
) -> TracerProvider:
    """A provider with the chosen exporter.

    The supervisor (``root=True``) makes the sampling decision, once per request: the
    ``OTEL_TRACES_SAMPLER`` choice, or nothing recorded at all with ``none`` (spans
    still get ids, for the output's ``trace_id``). Workers follow the decision carried
    in each job's ``traceparent`` (parent-based, whatever their environment says).
    """
    sampler: Sampler | None
    if settings.traces == "none":
        sampler = ALWAYS_OFF
    elif root:
        sampler = None  # the SDK reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
    else:
        sampler = ParentBased(ALWAYS_ON)
    provider = TracerProvider(resource=make_resource(resource_attributes), sampler=sampler)
    exporter = _create_span_exporter(settings, root)
    if exporter is not None:
        # Half-second batches unless OTEL_BSP_SCHEDULE_DELAY / _MAX_EXPORT_BATCH_SIZE say so.
        environ = os.environ
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                schedule_delay_millis=None if environ.get("OTEL_BSP_SCHEDULE_DELAY") else 500,
                max_export_batch_size=(
                    None if environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else 512
                ),
            )
        )
    return provider


def otlp_timeout(signal: str) -> float | None:
    """None when the environment sets the timeout (the exporter reads it itself)."""
    if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    ):
        return None
    return DEFAULT_EXPORT_TIMEOUT_S


def _create_span_exporter(settings: TelemetrySettings, root: bool) -> SpanExporter | None:
    if settings.traces == "console":
        # One JSON object per line, on stderr (stdout may be the results: -o -). A
        # worker's stderr is read by the supervisor, which shows lines with the prefix.
        prefix = "" if root else CONSOLE_TELEMETRY_PREFIX
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: prefix + span.to_json(indent=None) + "\n"
        )
    if settings.traces == "file":
        assert settings.traces_file is not None
        return OtlpJsonFileSpanExporter(settings.traces_file)
    if settings.traces == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        install_export_log_guard()
        return GuardedSpanExporter(OTLPSpanExporter(timeout=otlp_timeout("TRACES")))
    return None


# -- export failures: one warning, no stalls -----------------------------------------


class _OneWarningHandler(logging.Handler):
    """Swallows the OTLP exporter's and batch processors' logs; the first warning or
    error becomes a single line on stderr for the whole process."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warned = False

    def emit(self, record: logging.LogRecord) -> None:
        _export_health.failed()
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


class _ExportHealth:
    """Whether the latest news from a network exporter was a failure."""

    def __init__(self) -> None:
        self.last_failure = 0.0
        self.last_success = 0.0

    def failed(self) -> None:
        self.last_failure = time.monotonic()

    def succeeded(self) -> None:
        self.last_success = time.monotonic()

    @property
    def failing(self) -> bool:
        return self.last_failure > self.last_success


_export_health = _ExportHealth()
_log_guard: _OneWarningHandler | None = None
_log_guard_lock = threading.Lock()


def install_export_log_guard() -> _OneWarningHandler:
    """Idempotent: route the export loggers to one shared :class:`_OneWarningHandler`."""
    global _log_guard
    with _log_guard_lock:
        if _log_guard is None:
            _log_guard = _OneWarningHandler()
            for name in _EXPORT_LOGGERS:
                export_logger = logging.getLogger(name)
                export_logger.addHandler(_log_guard)
                export_logger.propagate = False
        return _log_guard


class GuardedSpanExporter(SpanExporter):
    """Wraps a network exporter: after a failed export, batches are dropped at once for
    :data:`EXPORT_COOLDOWN_S` (then tried again), so an unreachable collector costs one
    bounded export attempt, not one per batch, and never a full queue of retries."""

    def __init__(self, inner: SpanExporter, cooldown_s: float = EXPORT_COOLDOWN_S) -> None:
        self.inner = inner
        self.cooldown_s = cooldown_s
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
            _export_health.failed()
            self._skip_until = time.monotonic() + self.cooldown_s
        else:
            _export_health.succeeded()
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


def _span_exporters(provider: TracerProvider) -> list[SpanExporter]:
    processors = getattr(provider._active_span_processor, "_span_processors", ())
    found = []
    for processor in processors:
        exporter = getattr(processor, "span_exporter", None) or getattr(
            processor, "_exporter", None
        )
        if exporter is not None:
            found.append(exporter)
    return found


def shutdown_within(timeout_s: float, *providers: Any) -> bool:
    """Flush and shut down ``providers`` (tracer or meter providers), waiting at most
    about ``timeout_s``. Whatever cannot be delivered by then is dropped: an export
    stuck on an unreachable collector is told to give up, and the process may exit.
    Returns whether everything finished in time."""
    providers = tuple(p for p in providers if p is not None)
    if not providers:
        return True

    def shut_all() -> None:
        for provider in providers:
            try:
                provider.shutdown()
            except Exception as exc:  # never fail a run at exit because of telemetry
                logger.warning("telemetry shutdown failed: %s", exc)

    thread = threading.Thread(target=shut_all, name="needle-telemetry-shutdown", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.05)
        if _export_health.failing:  # the collector is unreachable: do not wait for it
            break
    if not thread.is_alive():
        return True
    for provider in providers:
        if isinstance(provider, TracerProvider):
            for exporter in _span_exporters(provider):
                if isinstance(exporter, GuardedSpanExporter):
                    exporter.abort()
        else:
            abort = getattr(provider, "needle_abort", None)
            if abort is not None:
                abort()
    thread.join(min(1.0, timeout_s))
    return not thread.is_alive()


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


def inject_trace_context(span: Span) -> dict[str, str]:
    """The W3C ``traceparent`` (and ``tracestate``) of ``span``, for a job message."""
    carrier: dict[str, str] = {}
    from opentelemetry import trace

    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def extract_trace_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return _propagator.extract(carrier)


def trace_id_hex(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


# -- span helpers ---------------------------------------------------------------------


def record_error(span: Span, error_type: str, message: str) -> None:
    """ERROR status plus an ``exception`` event, for a failure that is not a raised
    Python exception here (a timeout, a crashed worker, a bad input line)."""
    span.set_attribute("error.type", error_type)
    span.add_event("exception", {"exception.type": error_type, "exception.message": message})
    span.set_status(Status(StatusCode.ERROR, message))


def redact_error_message(error_type: str, message: str, capture_content: bool) -> str:
    """An error message fit for a span: with content capture off, the part of a
    validator's message that can quote argument values is left out (paths, tool
    names and the kind of failure stay)."""
    if capture_content or error_type != "invalid_arguments":
        return message
    marker = message.find(" arguments at ")
    if marker >= 0:
        colon = message.find(": ", marker)
        if colon >= 0:
            return message[:colon] + ": " + REDACTED
    return message


def tool_call_parts(calls: Any) -> list[dict[str, Any]] | None:
    """GenAI ``tool_call`` message parts for a parsed model answer, or None when the
    answer is not a list of calls."""
    if not isinstance(calls, list):
        return None
    parts = []
    for index, call in enumerate(calls):
        if not isinstance(call, dict):
            return None
        parts.append(
            {
                "type": "tool_call",
                "id": f"call_{index}",
                "name": call.get("name"),
                "arguments": call.get("arguments", {}),
            }
        )
    return parts


def call_names(calls: Any) -> list[str]:
    if not isinstance(calls, list):
        return []
    return [
        call["name"]
        for call in calls
        if isinstance(call, dict) and isinstance(call.get("name"), str)
    ]


def annotate_root_result(
    span: Span, record: Mapping[str, Any], attempts: int, capture_content: bool
) -> None:
    """The request's final state on its root span, just before it ends."""
    calls = record.get("calls") or []
    span.set_attribute("needle.status", record["status"])
    span.set_attribute("needle.calls.count", len(calls))
    span.set_attribute("needle.calls.names", call_names(calls))
    span.set_attribute("needle.attempts", attempts)
    span.set_attribute("needle.retries", max(0, attempts - 1))
    if capture_content and record["status"] == "ok":
        import orjson

        span.set_attribute("output.value", orjson.dumps(calls).decode())
        span.set_attribute("output.mime_type", "application/json")
    error = record.get("error")
    if record["status"] != "ok" and error:
        error_type = str(error.get("type"))
        span.set_attribute("error.type", error_type)
        message = redact_error_message(error_type, str(error.get("message")), capture_content)
        span.set_status(Status(StatusCode.ERROR, message))
