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
lines. Export waits are bounded exactly like the spans' (see :mod:`telemetry.providers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from workers.messages import Result
from workers.telemetry.providers import create_meter_provider
from workers.telemetry.settings import INSTRUMENTATION_NAME, TelemetrySettings

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

    def record_reply(self, reply: Result, worker_index: int, model: str) -> None:
        if not self.enabled:
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": reply.operation or "text_completion",
            "gen_ai.provider.name": PROVIDER_NAME,
            "gen_ai.request.model": model,
        }
        usage = reply.usage
        if reply.inference_ms is not None:
            duration_attributes = dict(attributes)
            if reply.status != "ok" and reply.error is not None:
                duration_attributes["error.type"] = reply.error.type
            else:
                duration_attributes["gen_ai.response.model"] = model
            self.operation_duration.record(reply.inference_ms / 1000, duration_attributes)
        if usage.prompt_tokens or usage.completion_tokens:
            attributes["gen_ai.response.model"] = model
            self.token_usage.record(
                usage.prompt_tokens, {**attributes, "gen_ai.token.type": "input"}
            )
            self.token_usage.record(
                usage.completion_tokens, {**attributes, "gen_ai.token.type": "output"}
            )
        worker_attributes = {"needle.worker.index": worker_index}
        self.worker_requests.add(1, worker_attributes)
        self.worker_busy.add(reply.worker_ms / 1000, worker_attributes)

    def record_request(self, status: str, error_type: str | None) -> None:
        if not self.enabled:
            return
        attributes = {"needle.status": status}
        if error_type is not None:
            attributes["error.type"] = error_type
        self.requests.add(1, attributes)

    def record_cancelled(self) -> None:
        if self.enabled:
            self.requests.add(1, {"needle.status": "cancelled"})
