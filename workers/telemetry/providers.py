"""Tracer and meter providers, built explicitly per process (never set globally), and
their bounded shutdown.

Each process builds its own ``TracerProvider`` (and the supervisor its ``MeterProvider``)
from the same :class:`telemetry.settings.TelemetrySettings` and from the standard
``OTEL_*`` environment variables, which the workers inherit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler

from workers.telemetry.export import (
    GuardedSpanExporter,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    export_failing,
    install_export_log_guard,
)
from workers.telemetry.settings import (
    CONSOLE_TELEMETRY_PREFIX,
    DEFAULT_EXPORT_TIMEOUT_S,
    DEFAULT_SERVICE_NAME,
    PROJECT_ATTRIBUTE,
    TelemetrySettings,
    otlp_timeout,
)

DEFAULT_EXPORT_INTERVAL_MS = 10_000
logger = logging.getLogger(__name__)


@runtime_checkable
class Abortable(Protocol):
    def abort_export(self) -> None:
        """Stop waiting on an export in progress (the collector is unreachable)."""


class NeedleTracerProvider(TracerProvider):
    """A tracer provider that can tell its network exporter to give up at shutdown."""

    def __init__(self, *, abort: Callable[[], None] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._abort = abort

    def abort_export(self) -> None:
        if self._abort is not None:
            self._abort()


class NeedleMeterProvider(MeterProvider):
    """A meter provider whose exporter can be shut down at once when shutdown hangs."""

    def __init__(self, exporter: MetricExporter, **options: Any) -> None:
        super().__init__(**options)
        self._exporter = exporter

    def abort_export(self) -> None:
        with contextlib.suppress(Exception):
            self._exporter.shutdown(timeout_millis=0)


def make_resource(attributes: Mapping[str, Any], project: str | None = None) -> Resource:
    """Our attributes plus ``OTEL_RESOURCE_ATTRIBUTES``/``OTEL_SERVICE_NAME``; the service
    is called needle-pipeline unless the environment names it. ``project`` is the Phoenix
    project (``openinference.project.name``) the traces are filed under."""
    attributes = dict(attributes)
    if project:
        attributes[PROJECT_ATTRIBUTE] = project
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
    exporter = _create_span_exporter(settings, root)
    provider = NeedleTracerProvider(
        resource=make_resource(resource_attributes, settings.project),
        sampler=sampler,
        abort=exporter.abort if isinstance(exporter, GuardedSpanExporter) else None,
    )
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

        guard = install_export_log_guard()
        return GuardedSpanExporter(OTLPSpanExporter(timeout=otlp_timeout("TRACES")), guard=guard)
    return None


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
    """The supervisor's meter provider, or None when metrics are off."""
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
    return NeedleMeterProvider(
        exporter,
        metric_readers=[reader],
        resource=make_resource(resource_attributes, settings.project),
    )


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
        if export_failing():  # the collector is unreachable: do not wait for it
            break
    if not thread.is_alive():
        return True
    for provider in providers:
        if isinstance(provider, Abortable):
            provider.abort_export()
    thread.join(min(1.0, timeout_s))
    return not thread.is_alive()
