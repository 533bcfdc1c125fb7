"""Span attributes and events: trace context, GenAI / OpenInference attribute builders,
error recording and redaction. Builders return attribute mappings, set with one
``span.set_attributes`` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from workers.telemetry.settings import REDACTED

_propagator = TraceContextTextMapPropagator()

# The model span's probability of answering no call (``python -m training sweep-none`` reads it).
NONE_PROBABILITY = "needle.none.probability"


def inject_trace_context(span: Span) -> dict[str, str]:
    """The W3C ``traceparent`` (and ``tracestate``) of ``span``, for a job message."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def extract_trace_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return _propagator.extract(carrier)


def trace_id_hex(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


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


def llm_request_attributes(
    *,
    operation: str,
    provider: str,
    model: str,
    max_tokens: int,
    temperature: float,
    seed: int,
    tool_names: list[str],
    query: str | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """GenAI and OpenInference attributes of a model call, before it runs; ``query`` and
    ``tools`` (content) only when content is captured."""

    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.seed": seed,
        "gen_ai.output.type": "json",
        "llm.model_name": model,
        "llm.provider": provider,
        "llm.invocation_parameters": orjson.dumps(
            {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        ).decode(),
        "needle.tools.names": tool_names,
    }
    if query is not None:
        message = [{"role": "user", "parts": [{"type": "text", "content": query}]}]
        attributes["gen_ai.input.messages"] = orjson.dumps(message).decode()
        attributes["input.value"] = query
        attributes["llm.input_messages.0.message.role"] = "user"
        attributes["llm.input_messages.0.message.content"] = query
    if tools is not None:
        definitions = [{"type": "function", **tool} for tool in tools]
        attributes["gen_ai.tool.definitions"] = orjson.dumps(definitions).decode()
    return attributes


def llm_response_attributes(
    *,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    reused_prefix_tokens: int,
    finish_reason: str,
    prompt_ms: float,
    grammar_ms: float,
    forced_tokens: int,
    decode_calls: int,
    none_probability: float | None = None,
) -> dict[str, Any]:
    """GenAI and OpenInference attributes of a finished model call (usage and timing)."""
    extra = {} if none_probability is None else {NONE_PROBABILITY: none_probability}
    return {
        **extra,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": prompt_tokens,
        "gen_ai.usage.output_tokens": completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": reused_prefix_tokens,
        "gen_ai.response.finish_reasons": [finish_reason],
        "gen_ai.response.time_to_first_chunk": prompt_ms / 1000,
        "llm.token_count.prompt": prompt_tokens,
        "llm.token_count.completion": completion_tokens,
        "llm.token_count.total": prompt_tokens + completion_tokens,
        "needle.prompt.reused_prefix_tokens": reused_prefix_tokens,
        "needle.time_to_first_token_ms": prompt_ms,
        "needle.grammar.ms": grammar_ms,
        "needle.completion.forced_tokens": forced_tokens,
        "needle.completion.decode_calls": decode_calls,
    }


def output_message_attributes(
    answer: Any, text: str, finish_reason: str, capture_content: bool
) -> dict[str, Any]:
    """The model's answer as GenAI output messages (tool-call parts) and OpenInference
    output attributes: tool names always; argument values and the raw text only with
    content capture. ``answer``: the parsed answer, None when the text is not JSON."""
    names = call_names(answer)
    prefix = "llm.output_messages.0.message"
    attributes: dict[str, Any] = {"needle.calls.names": names, f"{prefix}.role": "assistant"}
    for index, name in enumerate(names):
        attributes[f"{prefix}.tool_calls.{index}.tool_call.function.name"] = name
    if not capture_content:
        return attributes
    parts = tool_call_parts(answer)
    if parts is None:
        parts = [{"type": "text", "content": text}]
    elif parts and finish_reason == "stop":
        finish_reason = "tool_call"
    message = {"role": "assistant", "parts": parts, "finish_reason": finish_reason}
    attributes["gen_ai.output.messages"] = orjson.dumps([message]).decode()
    attributes["needle.output.raw"] = text
    attributes["output.value"] = text
    attributes["output.mime_type"] = "application/json"
    for index, part in enumerate(parts):
        if part.get("type") == "tool_call":
            key = f"{prefix}.tool_calls.{index}.tool_call.function.arguments"
            attributes[key] = orjson.dumps(part.get("arguments")).decode()
    return attributes


def tool_call_attributes(
    name: str, index: int, arguments: Any, capture_content: bool
) -> dict[str, Any]:
    """An ``execute_tool`` span's attributes (GenAI semantic conventions); the arguments
    only with content capture."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": "function",
        "tool.name": name,
        "needle.call.index": index,
    }
    if capture_content:
        encoded = orjson.dumps(arguments).decode()
        attributes["gen_ai.tool.call.arguments"] = encoded
        attributes["input.value"] = encoded
    return attributes


def tool_result_attributes(value: Any) -> dict[str, Any]:
    """A tool's return value on its span (with content capture only)."""
    encoded = orjson.dumps(value).decode()
    return {"gen_ai.tool.call.result": encoded, "output.value": encoded}


def annotate_root_result(
    span: Span,
    status: str,
    calls: list[Any],
    error_type: str | None,
    error_message: str | None,
    attempts: int,
    capture_content: bool,
) -> None:
    """The request's final state on its root span, just before it ends."""
    span.set_attribute("needle.status", status)
    span.set_attribute("needle.calls.count", len(calls))
    span.set_attribute("needle.calls.names", call_names(calls))
    span.set_attribute("needle.attempts", attempts)
    span.set_attribute("needle.retries", max(0, attempts - 1))
    if capture_content and status == "ok":
        span.set_attribute("output.value", orjson.dumps(calls).decode())
        span.set_attribute("output.mime_type", "application/json")
    if status != "ok" and error_type is not None:
        span.set_attribute("error.type", error_type)
        message = redact_error_message(error_type, str(error_message), capture_content)
        span.set_status(Status(StatusCode.ERROR, message))
