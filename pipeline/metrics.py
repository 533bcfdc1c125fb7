"""Run metrics through the OpenTelemetry metrics SDK, recorded in the supervisor.

The workers report token counts and model time in every result message, so the
supervisor records all metrics from one ``MeterProvider``: nothing is lost when a
worker is replaced, and a backend sees one stream per run. Instruments:

- ``gen_ai.client.token.usage`` (histogram, ``{token}``, by ``gen_ai.token.type``)
- ``gen_ai.client.operation.duration`` (histogram, ``s``; ``error.type`` on failures)
- ``needle.requests`` (counter, by ``needle.status`` and ``error.type``)
- ``needle.queue.depth`` (gauge: requests read and waiting for a worker)
- ``needle.worker.requests`` and ``needle.worker.busy_time`` (counters by
  ``needle.worker.index``: per-worker throughput and utilisation)

The exporter choice is the tracing one: ``--metrics console|otlp|file|none`` (or
``OTEL_METRICS_EXPORTER``); ``file`` appends OTLP/JSON ``ExportMetricsServiceRequest``
lines. Export waits are bounded exactly like the spans' (see :mod:`pipeline.telemetry`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)

from pipeline.telemetry import (
    DEFAULT_EXPORT_TIMEOUT_S,
    INSTRUMENTATION_NAME,
    TelemetrySettings,
    install_export_log_guard,
    make_resource,
    otlp_timeout,
)

# The GenAI semantic conventions' advisory bucket boundaries.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
PROVIDER_NAME = "llama.cpp"
DEFAULT_EXPORT_INTERVAL_MS = 10_000


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


def _create_metric_exporter(settings: TelemetrySettings) -> MetricExporter | None:
    if settings.metrics == "console":
        return ConsoleMetricExporter(out=sys.stderr)  # stdout may be the results (-o -)
    if settings.metrics == "file":
        assert settings.metrics_file is not None
        return OtlpJsonFileMetricExporter(settings.metrics_file)
    if settings.metrics == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        install_export_log_guard()
        return OTLPMetricExporter(timeout=otlp_timeout("METRICS"))
    return None


def create_meter_provider(
    settings: TelemetrySettings, resource_attributes: Mapping[str, Any]
) -> MeterProvider | None:
    exporter = _create_metric_exporter(settings)
    if exporter is None:
        return None
    interval = None if os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") else DEFAULT_EXPORT_INTERVAL_MS
    timeout = (
        None if os.environ.get("OTEL_METRIC_EXPORT_TIMEOUT") else DEFAULT_EXPORT_TIMEOUT_S * 1000
    )
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=interval, export_timeout_millis=timeout
    )
    provider = MeterProvider(metric_readers=[reader], resource=make_resource(resource_attributes))

    def abort() -> None:  # used by telemetry.shutdown_within when the wait runs out
        with contextlib.suppress(Exception):
            exporter.shutdown(timeout_millis=0)

    provider.needle_abort = abort  # type: ignore[attr-defined]
    return provider


class PipelineMetrics:
    """The supervisor's instruments; every method is a no-op when metrics are off."""

    def __init__(self, settings: TelemetrySettings, resource_attributes: Mapping[str, Any]):
        self.provider = create_meter_provider(settings, resource_attributes)
        self.enabled = self.provider is not None
        self._queued = 0
        if self.provider is None:
            return
        meter = self.provider.get_meter(INSTRUMENTATION_NAME)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration (the model call in the worker).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.requests = meter.create_counter(
            "needle.requests", unit="{request}", description="Requests finished, by status."
        )
        self.worker_requests = meter.create_counter(
            "needle.worker.requests",
            unit="{request}",
            description="Requests answered by each worker (its throughput is the rate).",
        )
        self.worker_busy = meter.create_counter(
            "needle.worker.busy_time",
            unit="s",
            description="Time each worker spent on requests.",
        )
        meter.create_observable_gauge(
            "needle.queue.depth",
            callbacks=[self._observe_queue],
            unit="{request}",
            description="Requests read and waiting for a worker.",
        )

    def _observe_queue(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(max(0, self._queued))]

    # -- hooks called by the supervisor ---------------------------------------------

    def request_queued(self) -> None:
        self._queued += 1

    def request_started(self, attempt: int) -> None:
        """A worker took the request; retries did not go through the queue again."""
        if attempt == 1:
            self._queued -= 1

    def record_reply(self, reply: Mapping[str, Any], worker_index: int, model: str) -> None:
        if not self.enabled:
            return
        operation = str(reply.get("operation") or "text_completion")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": PROVIDER_NAME,
            "gen_ai.request.model": model,
        }
        usage = reply.get("usage") or {}
        inference_ms = reply.get("inference_ms")
        if inference_ms is not None:
            duration_attributes = dict(attributes)
            error = reply.get("error")
            if reply.get("status") != "ok" and error:
                duration_attributes["error.type"] = str(error.get("type", "error"))
            else:
                duration_attributes["gen_ai.response.model"] = model
            self.operation_duration.record(float(inference_ms) / 1000, duration_attributes)
        if usage.get("prompt_tokens") or usage.get("completion_tokens"):
            attributes["gen_ai.response.model"] = model
            self.token_usage.record(
                int(usage.get("prompt_tokens", 0)), {**attributes, "gen_ai.token.type": "input"}
            )
            self.token_usage.record(
                int(usage.get("completion_tokens", 0)),
                {**attributes, "gen_ai.token.type": "output"},
            )
        worker_attributes = {"needle.worker.index": worker_index}
        self.worker_requests.add(1, worker_attributes)
        worker_ms = reply.get("worker_ms")
        if worker_ms is not None:
            self.worker_busy.add(float(worker_ms) / 1000, worker_attributes)

    def record_request(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        attributes = {"needle.status": str(record.get("status"))}
        error = record.get("error")
        if error:
            attributes["error.type"] = str(error.get("type"))
        self.requests.add(1, attributes)

    def record_cancelled(self) -> None:
        if self.enabled:
            self.requests.add(1, {"needle.status": "cancelled"})
