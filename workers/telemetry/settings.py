"""Telemetry settings: the command line's choices, completed from ``OTEL_*`` variables.

The supervisor resolves them once and hands them to every worker in its init message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

TRACE_EXPORTERS = ("none", "console", "otlp", "file")
METRIC_EXPORTERS = TRACE_EXPORTERS
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_SERVICE_NAME = "needle-pipeline"
INSTRUMENTATION_NAME = "needle_pipeline"
# The resource attribute Arize Phoenix files traces under (else its "default" project).
PROJECT_ATTRIBUTE = "openinference.project.name"
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


class TelemetryConfigError(ValueError):
    """The tracing options do not make sense together."""


@dataclass(frozen=True)
class TelemetrySettings:
    traces: str = "none"
    traces_file: str | None = None
    capture_content: bool = False
    metrics: str = "none"
    metrics_file: str | None = None
    project: str | None = None  # Phoenix project (openinference.project.name)

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
    project: str | None = None,
) -> TelemetrySettings:
    """Command-line options win over ``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER``
    and the capture variable; the project defaults to ``OTEL_SERVICE_NAME``."""
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
        project=project or environ.get("OTEL_SERVICE_NAME", "").strip() or None,
    )


def otlp_timeout(signal: str) -> float | None:
    """None when the environment sets the timeout (the exporter reads it itself)."""
    if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    ):
        return None
    return DEFAULT_EXPORT_TIMEOUT_S
