"""Fast checks of the telemetry building blocks: settings, content rules, the worker's
spans for each kind of failure, and export that can neither stall nor flood."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from workers.engine import Completion, DecodingSettings
from workers.handler import JobHandler
from workers.messages import Job, Result
from workers.prompts import make_prompt_format
from workers.telemetry.attributes import inject_trace_context, redact_error_message, tool_call_parts
from workers.telemetry.export import GuardedSpanExporter
from workers.telemetry.providers import create_tracer_provider, shutdown_within
from workers.telemetry.settings import REDACTED, TelemetryConfigError, resolve_settings

TOOLS = [
    {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {"duration_seconds": {"type": "integer"}},
            "required": ["duration_seconds"],
        },
    }
]
SECRET = "secret-argument-value"
QUERY = "please time my private thing"


# -- settings -------------------------------------------------------------------------


def test_settings_options_win_over_environment():
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "TRUE",
    }
    settings = resolve_settings(None, None, False, env)
    assert (settings.traces, settings.metrics, settings.capture_content) == (
        "console",
        "otlp",
        True,
    )
    settings = resolve_settings("none", None, False, env, metrics="none")
    assert (settings.traces, settings.metrics) == ("none", "none")
    assert not resolve_settings(None, None, False, {}).capture_content
    assert resolve_settings(None, None, False, {}).traces == "none"


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"traces": "file"}, {}, "--traces-file"),
        ({"traces": "none", "metrics": "file"}, {}, "--metrics-file"),
        ({"traces": "jaeger"}, {}, "unknown traces exporter"),
        ({"traces": "otlp"}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "grpc"),
    ],
)
def test_settings_errors(kwargs, env, message):
    traces = kwargs.pop("traces")
    with pytest.raises(TelemetryConfigError, match=message):
        resolve_settings(traces, None, False, env, **kwargs)


# -- content rules ----------------------------------------------------------------------


def test_validator_messages_lose_argument_values_without_capture():
    message = f"calls[0] (set_timer) arguments at duration_seconds: '{SECRET}' is not of type"
    redacted = redact_error_message("invalid_arguments", message, capture_content=False)
    assert SECRET not in redacted
    assert redacted.startswith("calls[0] (set_timer) arguments at duration_seconds: ")
    assert redacted.endswith(REDACTED)
    assert redact_error_message("invalid_arguments", message, capture_content=True) == message
    assert redact_error_message("timeout", "no answer", capture_content=False) == "no answer"


def test_tool_call_parts():
    calls = [{"name": "set_timer", "arguments": {"duration_seconds": 5}}]
    assert tool_call_parts(calls) == [
        {
            "type": "tool_call",
            "id": "call_0",
            "name": "set_timer",
            "arguments": {"duration_seconds": 5},
        }
    ]
    assert tool_call_parts({"name": "x"}) is None
    assert tool_call_parts(["x"]) is None
    assert tool_call_parts([]) == []


# -- the worker's spans -------------------------------------------------------------------


class FakeEngine:
    model_name = "fake-model"
    n_ctx = 4096
    metadata: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, text: str, finish_reason: str = "stop") -> None:
        self.text = text
        self.finish_reason = finish_reason

    def tokenize(self, text: str) -> list[int]:
        return list(range(len(text) // 4))

    def compile_grammar(self, gbnf: str) -> Any:
        return None

    def complete(self, tokens: Sequence[int], grammar: Any, settings: Any) -> Completion:
        return Completion(self.text, len(tokens), 7, 0, self.finish_reason, 1.5, 2.5)


def handle(text: str, capture: bool, finish_reason: str = "stop") -> tuple[Result, list]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    handler = JobHandler(
        FakeEngine(text, finish_reason),
        make_prompt_format("needle", {}),
        DecodingSettings(),
        tracer,
        capture,
        0,
    )
    with tracer.start_as_current_span("process_request") as root:
        trace = inject_trace_context(root)
    job = Job(seq=1, id="r1", query=QUERY, tools=TOOLS, tools_key="k", trace=trace)
    result = handler.handle(job)
    spans = [s for s in exporter.get_finished_spans() if s.name != "process_request"]
    return result, spans


def everything(spans: list) -> str:
    return orjson.dumps(
        [
            {
                "attributes": dict(s.attributes),
                "events": [(e.name, dict(e.attributes)) for e in s.events],
                "status": s.status.description,
            }
            for s in spans
        ],
        default=str,
    ).decode()


def test_validation_failure_is_an_event_without_values_unless_captured():
    answer = orjson.dumps([{"name": "set_timer", "arguments": {"duration_seconds": SECRET}}])
    result, spans = handle(answer.decode(), capture=False)
    assert result.status == "error"
    assert result.error is not None and result.error.type == "invalid_arguments"
    assert SECRET in result.error.message  # the output line keeps the full message
    validate = next(s for s in spans if s.name == "validate")
    assert validate.status.status_code is StatusCode.ERROR
    (event,) = [e for e in validate.events if e.name == "validation_failed"]
    assert "duration_seconds" in event.attributes["message"]
    assert SECRET not in everything(spans)
    assert QUERY not in everything(spans)
    # Names are always there; values only with capture.
    inference = next(s for s in spans if s.name == "text_completion fake-model")
    assert inference.attributes["needle.calls.names"] == ("set_timer",)
    assert "gen_ai.output.messages" not in inference.attributes

    _, spans = handle(answer.decode(), capture=True)
    assert SECRET in everything(spans)
    assert QUERY in everything(spans)
    inference = next(s for s in spans if s.name == "text_completion fake-model")
    (message,) = orjson.loads(inference.attributes["gen_ai.output.messages"])
    assert message["parts"][0]["type"] == "tool_call"
    assert message["parts"][0]["arguments"] == {"duration_seconds": SECRET}
    assert message["finish_reason"] == "tool_call"


def test_each_failure_is_recorded_once_where_it_happened():
    result, spans = handle("not json", capture=False)
    assert result.error is not None and result.error.type == "invalid_output"
    failed = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert [s.name for s in failed] == ["parse"]
    assert [e.name for e in failed[0].events] == ["exception"]
    assert failed[0].attributes["error.type"] == "invalid_output"

    result, spans = handle("[", capture=False, finish_reason="length")
    assert result.error is not None and result.error.type == "truncated"
    assert result.usage.completion_tokens == 7  # a truncated answer still used tokens
    failed = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert [s.name for s in failed] == ["text_completion fake-model"]
    assert [e.name for e in failed[0].events] == ["exception"]
    assert {s.name for s in spans} == {"prompt", "text_completion fake-model"}


def test_worker_spans_follow_the_traceparent_and_carry_genai_attributes():
    result, spans = handle("[]", capture=False)
    assert result.status == "ok" and result.operation == "text_completion"
    assert result.inference_ms is not None and result.inference_ms >= 0
    assert [s.name for s in spans] == ["prompt", "text_completion fake-model", "parse", "validate"]
    assert len({s.context.trace_id for s in spans}) == 1
    assert len({s.parent.span_id for s in spans}) == 1
    inference = spans[1]
    attrs = inference.attributes
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert attrs["gen_ai.provider.name"] == "llama.cpp"
    assert attrs["gen_ai.request.model"] == "fake-model"
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["openinference.span.kind"] == "LLM"
    assert all(s.attributes["openinference.span.kind"] == "CHAIN" for s in spans if s != inference)


# -- export that cannot stall ---------------------------------------------------------------


class FailingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def export(self, spans):
        self.calls += 1
        return SpanExportResult.FAILURE

    def shutdown(self):
        self.closed = True


def test_guarded_exporter_skips_a_failing_collector_for_a_while():
    inner = FailingExporter()
    guarded = GuardedSpanExporter(inner, cooldown_s=3600)
    assert guarded.export([]) is SpanExportResult.FAILURE
    for _ in range(5):
        assert guarded.export([]) is SpanExportResult.FAILURE
    assert inner.calls == 1
    guarded.shutdown()
    guarded.shutdown()
    assert inner.closed


def test_shutdown_is_bounded_when_a_provider_hangs():
    release = threading.Event()

    class Stuck:
        def shutdown(self) -> None:
            release.wait(60)

    started = time.monotonic()
    assert shutdown_within(0.2, Stuck()) is False
    assert time.monotonic() - started < 30  # generous: only "it did not wait 60 s"
    release.set()
    provider = create_tracer_provider(resolve_settings("none", None, False, {}), {})
    assert shutdown_within(5, provider) is True


def test_traces_none_records_nothing_but_still_gives_trace_ids():
    provider = create_tracer_provider(resolve_settings("none", None, False, {}), {})
    span = provider.get_tracer("t").start_span("x")
    assert not span.is_recording()
    assert span.get_span_context().trace_id != 0
    flags = inject_trace_context(span)["traceparent"].rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0  # not sampled: the workers record nothing either


def test_resource_names_the_service_unless_the_environment_does(monkeypatch):
    from workers.telemetry.providers import make_resource

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    resource = make_resource({"needle.worker.index": 1, "process.pid": 42})
    assert resource.attributes["service.name"] == "needle-pipeline"
    assert resource.attributes["needle.worker.index"] == 1
    assert resource.attributes["process.pid"] == 42
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=batch-a,deployment.env=ci")
    resource = make_resource({})
    assert resource.attributes["service.name"] == "batch-a"
    assert resource.attributes["deployment.env"] == "ci"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "batch-b")
    assert make_resource({}).attributes["service.name"] == "batch-b"
