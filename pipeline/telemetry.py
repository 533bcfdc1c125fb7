"""OpenTelemetry setup shared by the supervisor and the worker processes.

Each process builds its own ``TracerProvider`` from the same :class:`TelemetrySettings`
(the workers receive them in their init message) and from the standard ``OTEL_*``
environment variables, which the workers inherit.
"""

from __future__ import annotations

import logging
import os
import threading
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
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_EXPORTERS = ("none", "console", "otlp", "file")
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_SERVICE_NAME = "needle-pipeline"
INSTRUMENTATION_NAME = "needle_pipeline"

_propagator = TraceContextTextMapPropagator()
logger = logging.getLogger(__name__)


class TelemetryConfigError(ValueError):
    """The tracing options do not make sense together."""


@dataclass(frozen=True)
class TelemetrySettings:
    traces: str = "none"
    traces_file: str | None = None
    capture_content: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TelemetrySettings:
        return cls(**data)


def resolve_settings(
    traces: str | None,
    traces_file: str | None,
    capture_content: bool,
    environ: Mapping[str, str] = os.environ,
) -> TelemetrySettings:
    """Command-line options win over ``OTEL_TRACES_EXPORTER`` and the capture variable."""
    if traces is None:
        traces = environ.get("OTEL_TRACES_EXPORTER", "none").split(",")[0].strip() or "none"
    traces = traces.lower()
    if traces not in TRACE_EXPORTERS:
        raise TelemetryConfigError(
            f"unknown traces exporter {traces!r} (choose from {', '.join(TRACE_EXPORTERS)})"
        )
    if traces == "file" and not traces_file:
        raise TelemetryConfigError("--traces file needs --traces-file PATH")
    capture = capture_content or environ.get(CAPTURE_CONTENT_ENV, "").lower() == "true"
    path = os.path.abspath(traces_file) if traces_file else None
    return TelemetrySettings(traces=traces, traces_file=path, capture_content=capture)


def create_tracer_provider(
    settings: TelemetrySettings, resource_attributes: Mapping[str, Any]
) -> TracerProvider:
    """A provider with the chosen exporter; with ``none``, spans get ids but go nowhere."""
    attributes = dict(resource_attributes)
    if "OTEL_SERVICE_NAME" not in os.environ:
        attributes.setdefault("service.name", DEFAULT_SERVICE_NAME)
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = _create_exporter(settings)
    if exporter is not None:
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=500, max_export_batch_size=512)
        )
    return provider


def _create_exporter(settings: TelemetrySettings) -> SpanExporter | None:
    if settings.traces == "console":
        return ConsoleSpanExporter()
    if settings.traces == "file":
        assert settings.traces_file is not None
        return OtlpJsonFileSpanExporter(settings.traces_file)
    if settings.traces == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


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
