"""Observability end to end: the real CLI with real workers exporting to a real OTLP/gRPC
receiver on loopback (grpcio and the opentelemetry-proto service stubs, no mock exporter).

One run without content capture and one with it cover the span tree, the GenAI
attributes, the content rules and the metrics; a closed collector port must not stop
or slow a batch.
"""

from __future__ import annotations

import collections
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
import pytest
from conftest import SAMPLE_QUERIES, read_jsonl
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

WARNING = "telemetry export failed"


@dataclass
class Collector:
    """What the receiver got: OTLP requests as protobuf-JSON dicts."""

    endpoint: str
    trace_requests: list[dict[str, Any]] = field(default_factory=list)
    metric_requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            **extra,
        }

    def spans(self) -> list[dict[str, Any]]:
        """Every span, with its resource's attributes under ``resource``."""
        found = []
        with self.lock:
            requests = list(self.trace_requests)
        for request in requests:
            for resource_spans in request.get("resourceSpans", []):
                resource = attributes(resource_spans.get("resource", {}))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        found.append({**span, "resource": resource, "attrs": attributes(span)})
        return found

    def metrics(self) -> dict[str, dict[str, Any]]:
        """The latest export of each metric (they are cumulative) by name."""
        latest: dict[str, dict[str, Any]] = {}
        with self.lock:
            requests = list(self.metric_requests)
        for request in requests:
            for resource_metrics in request.get("resourceMetrics", []):
                for scope_metrics in resource_metrics.get("scopeMetrics", []):
                    for metric in scope_metrics.get("metrics", []):
                        latest[metric["name"]] = metric
        return latest


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def Export(self, request, context):
        data = MessageToDict(request)
        with self.collector.lock:
            self.collector.trace_requests.append(data)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def Export(self, request, context):
        data = MessageToDict(request)
        with self.collector.lock:
            self.collector.metric_requests.append(data)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    receiver = Collector(endpoint=f"http://127.0.0.1:{port}")
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(receiver), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(receiver), server)
    server.start()
    try:
        yield receiver
    finally:
        server.stop(grace=None)


def attributes(holder: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: any_value(a.get("value", {})) for a in holder.get("attributes", [])}


def any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def b64_to_hex(value: str) -> str:
    import base64

    return base64.b64decode(value).hex()


def by_trace(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for span in spans:
        traces[b64_to_hex(span["traceId"])].append(span)
    return traces


def sample_queries() -> list[str]:
    return [orjson.loads(line)["query"] for line in SAMPLE_QUERIES.read_bytes().splitlines()]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_trace_tree(results: list[dict[str, Any]], spans: list[dict[str, Any]]) -> None:
    """One trace per request, one root each, every parent in the trace, two processes."""
    traces = by_trace(spans)
    assert set(traces) == {r["trace_id"] for r in results}
    assert len(traces) == len(results)
    pids_seen = set()
    for result in results:
        trace = traces[result["trace_id"]]
        ids = {span["spanId"] for span in trace}
        roots = [span for span in trace if not span.get("parentSpanId")]
        assert len(roots) == 1, [s["name"] for s in roots]
        root = roots[0]
        assert root["name"] == "process_request"
        assert all(span["parentSpanId"] in ids for span in trace if span is not root)
        assert root["attrs"]["needle.request.id"] == str(result["id"])
        assert root["attrs"]["needle.input.line"] == result["line"]
        assert root["attrs"]["needle.status"] == result["status"]
        assert root["attrs"]["needle.retries"] == 0
        assert root["attrs"]["needle.queue_wait_ms"] >= 0
        assert root["attrs"]["openinference.span.kind"] == "CHAIN"
        assert root["resource"]["needle.process.role"] == "supervisor"
        names = collections.Counter(span["name"] for span in trace)
        expected = {"process_request": 1, "prompt": 1, f"text_completion {result['model']}": 1}
        if result["status"] == "ok":
            expected.update(parse=1, validate=1)
            assert "status" not in root or root["status"].get("code") != "STATUS_CODE_ERROR"
        else:
            # ERROR on the root, and the exception recorded on the span where it happened.
            assert root["status"]["code"] == "STATUS_CODE_ERROR"
            assert root["attrs"]["error.type"] == result["error"]["type"]
            failed = [
                span
                for span in trace
                if span is not root and span.get("status", {}).get("code") == "STATUS_CODE_ERROR"
            ]
            assert len(failed) == 1
            events = [e["name"] for e in failed[0].get("events", [])]
            assert "exception" in events or "validation_failed" in events
            if result["error"]["type"] == "truncated":
                assert failed[0]["name"].startswith("text_completion")
        assert names == expected, names
        pids = {span["resource"]["process.pid"] for span in trace}
        assert len(pids) >= 2  # the supervisor's root, the worker's children
        for span in trace:
            if span is not root:
                assert span["resource"]["needle.process.role"] == "worker"
                assert span["resource"]["needle.worker.index"] in (0, 1)
                assert span["resource"]["process.pid"] == root["attrs"]["needle.worker.pid"]
        pids_seen |= pids
    assert len(pids_seen) >= 2


def check_inference_spans(results: list[dict[str, Any]], spans: list[dict[str, Any]]) -> None:
    traces = by_trace(spans)
    for result in results:
        (span,) = [s for s in traces[result["trace_id"]] if s["name"].startswith("text_")]
        attrs = span["attrs"]
        assert span["kind"] == "SPAN_KIND_INTERNAL"
        assert span["name"] == f"{attrs['gen_ai.operation.name']} {attrs['gen_ai.request.model']}"
        assert attrs["gen_ai.operation.name"] == "text_completion"
        assert attrs["gen_ai.provider.name"] == "llama.cpp"
        assert attrs["gen_ai.request.model"] == result["model"]
        assert attrs["gen_ai.response.model"] == result["model"]
        assert attrs["gen_ai.request.max_tokens"] == 256
        assert attrs["gen_ai.request.temperature"] == 0.0
        assert attrs["gen_ai.usage.input_tokens"] == result["usage"]["prompt_tokens"] > 0
        assert attrs["gen_ai.usage.output_tokens"] == result["usage"]["completion_tokens"] > 0
        assert attrs["gen_ai.usage.output_tokens"] <= 256
        assert attrs["gen_ai.response.finish_reasons"] in (["stop"], ["length"])
        assert attrs["openinference.span.kind"] == "LLM"
        if result["status"] == "ok":
            assert attrs["needle.calls.names"] == [c["name"] for c in result["calls"]]
            assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
        prompt = next(s for s in traces[result["trace_id"]] if s["name"] == "prompt")["attrs"]
        assert prompt["needle.tools.count"] > 0
        assert prompt["needle.prompt.tokens"] == attrs["gen_ai.usage.input_tokens"]
        assert "needle.prompt.reused_prefix_tokens" in prompt


def test_otlp_traces_and_metrics_two_workers_no_content(run_cli, collector):
    run = run_cli(
        SAMPLE_QUERIES,
        "--workers",
        "2",
        "--traces",
        "otlp",
        "--metrics",
        "otlp",
        env=collector.env(),
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr  # 1: some requests failed (truncated)
    assert WARNING not in run.stderr
    results = run.results()
    assert len(results) == len(sample_queries())
    spans = collector.spans()
    check_trace_tree(results, spans)
    check_inference_spans(results, spans)

    # Content is off by default: no query text anywhere, no message attributes.
    exported = orjson.dumps(collector.trace_requests).decode()
    for query in sample_queries():
        assert query not in exported, query
    for span in spans:
        assert "gen_ai.input.messages" not in span["attrs"]
        assert "gen_ai.output.messages" not in span["attrs"]
        assert "input.value" not in span["attrs"]

    # Metrics, recorded once by the supervisor from every worker's results.
    metrics = collector.metrics()
    usage = metrics["gen_ai.client.token.usage"]
    assert usage["unit"] == "{token}"
    points = {attributes(p)["gen_ai.token.type"]: p for p in usage["histogram"]["dataPoints"]}
    assert int(points["input"]["count"]) == len(results)
    assert points["input"]["sum"] == sum(r["usage"]["prompt_tokens"] for r in results)
    assert points["output"]["sum"] == sum(r["usage"]["completion_tokens"] for r in results)
    assert attributes(points["input"])["gen_ai.request.model"] == results[0]["model"]
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration["unit"] == "s"
    assert sum(int(p["count"]) for p in duration["histogram"]["dataPoints"]) == len(results)
    requests = {
        attributes(p)["needle.status"]: int(p["asInt"])
        for p in metrics["needle.requests"]["sum"]["dataPoints"]
    }
    assert requests == collections.Counter(r["status"] for r in results)
    per_worker = {
        attributes(p)["needle.worker.index"]: int(p["asInt"])
        for p in metrics["needle.worker.requests"]["sum"]["dataPoints"]
    }
    assert set(per_worker) <= {0, 1}
    assert sum(per_worker.values()) == len(results)
    assert "needle.queue.depth" in metrics


def test_otlp_content_capture_records_messages_and_tool_calls(run_cli, collector):
    run = run_cli(
        SAMPLE_QUERIES,
        "--workers",
        "2",
        "--traces",
        "otlp",
        env=collector.env(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true"),
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr  # 1: some requests failed (truncated)
    results = run.results()
    spans = collector.spans()
    check_trace_tree(results, spans)
    traces = by_trace(spans)
    queries = {str(q["id"]): q["query"] for q in read_jsonl(SAMPLE_QUERIES)}
    with_calls = 0
    for result in results:
        (span,) = [s for s in traces[result["trace_id"]] if s["name"].startswith("text_")]
        attrs = span["attrs"]
        (message,) = orjson.loads(attrs["gen_ai.input.messages"])
        assert message["role"] == "user"
        assert message["parts"] == [{"type": "text", "content": queries[str(result["id"])]}]
        (answer,) = orjson.loads(attrs["gen_ai.output.messages"])
        assert answer["role"] == "assistant"
        assert answer["finish_reason"] in ("stop", "tool_call", "length")
        if result["calls"]:
            with_calls += 1
            assert answer["finish_reason"] == "tool_call"
            assert [(p["type"], p["name"], p["arguments"]) for p in answer["parts"]] == [
                ("tool_call", c["name"], c["arguments"]) for c in result["calls"]
            ]
    assert with_calls > 0  # the sample inputs make the test model call tools
    exported = orjson.dumps(collector.trace_requests).decode()
    for query in sample_queries():
        assert orjson.dumps(query).decode()[1:-1] in exported, query


def test_closed_collector_port_finishes_with_one_warning(run_cli):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    run = run_cli(
        SAMPLE_QUERIES,
        "--workers",
        "2",
        "--traces",
        "otlp",
        "--metrics",
        "otlp",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true"},
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr  # 1: some requests failed (truncated)
    results = run.results()
    assert len(results) == len(sample_queries())
    assert all(len(r["trace_id"]) == 32 for r in results)
    assert run.stderr.count(WARNING) == 1, run.stderr
    noise = [
        line
        for line in run.stderr.splitlines()
        if WARNING not in line and ("export" in line.lower() or "grpc" in line.lower())
    ]
    assert not noise, run.stderr
