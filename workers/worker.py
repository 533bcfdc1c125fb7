"""A worker process: loads one model once, then answers job messages until told to stop.

Started by the supervisor as ``python -m workers`` (a fresh interpreter, never a fork
of a process that has run llama.cpp). It speaks length-prefixed frames on a private
copy of stdout; see :mod:`workers.protocol`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, Any

import orjson
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from pipeline.telemetry import (
    INSTRUMENTATION_NAME,
    TelemetrySettings,
    create_tracer_provider,
    extract_trace_context,
)
from workers.engine import (
    Completion,
    ContextOverflowError,
    DecodingSettings,
    Engine,
    LlamaEngine,
)
from workers.prompts import PromptFormat, make_prompt_format
from workers.protocol import read_frame, write_frame
from workers.toolset import CallValidationError, ToolSet, answer_schema

# Test-only fault injection: a query containing the marker crashes (or hangs) the worker.
# Both need an explicit environment variable holding the marker; unset, they do nothing.
CRASH_MARKER_ENV = "NEEDLE_PIPELINE_TEST_CRASH_MARKER"
HANG_MARKER_ENV = "NEEDLE_PIPELINE_TEST_HANG_MARKER"
TOOLSET_CACHE_SIZE = 32


class RequestFailed(Exception):
    """A request-level failure with an output error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass
class PreparedTools:
    toolset: ToolSet
    grammar: Any


class JobHandler:
    """Turns one job message into one result message, with its spans."""

    def __init__(
        self,
        engine: Engine,
        prompt_format: PromptFormat,
        decoding: DecodingSettings,
        tracer: Tracer,
        capture_content: bool,
        worker_index: int,
    ) -> None:
        self.engine = engine
        self.prompt_format = prompt_format
        self.decoding = decoding
        self.tracer = tracer
        self.capture_content = capture_content
        self.worker_index = worker_index
        self._toolsets: OrderedDict[str, PreparedTools] = OrderedDict()
        self._crash_marker = os.environ.get(CRASH_MARKER_ENV) or None
        self._hang_marker = os.environ.get(HANG_MARKER_ENV) or None

    def prepare_tools(self, key: str, tools: list[dict[str, Any]]) -> PreparedTools:
        """Grammar and validators are built once per tool list and kept in an LRU cache."""
        prepared = self._toolsets.get(key)
        if prepared is not None:
            self._toolsets.move_to_end(key)
            return prepared
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        schema = answer_schema(tools, self.decoding.max_calls, self.decoding.max_string_length)
        grammar = self.engine.compile_grammar(json_schema_to_gbnf(json.dumps(schema)))
        prepared = PreparedTools(ToolSet(tools, key), grammar)
        self._toolsets[key] = prepared
        if len(self._toolsets) > TOOLSET_CACHE_SIZE:
            self._toolsets.popitem(last=False)
        return prepared

    def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        parent = extract_trace_context(job.get("trace", {}))
        result: dict[str, Any] = {"type": "result", "seq": job["seq"], "worker_pid": os.getpid()}
        completion: Completion | None = None
        try:
            self._inject_faults(job["query"])
            prepared, tokens = self._build_prompt(job, parent)
            completion = self._infer(tokens, prepared, job, parent)
            answer = self._parse(completion, parent)
            calls = self._validate(answer, prepared.toolset, parent)
            result.update(status="ok", calls=calls, error=None)
        except RequestFailed as failure:
            result.update(
                status="error",
                calls=[],
                error={"type": failure.error_type, "message": failure.message},
            )
        except Exception as exc:  # a bug or runtime failure: report it, keep serving
            result.update(
                status="error",
                calls=[],
                error={"type": "internal_error", "message": f"{type(exc).__name__}: {exc}"},
            )
        result["usage"] = {
            "prompt_tokens": completion.prompt_tokens if completion else 0,
            "completion_tokens": completion.completion_tokens if completion else 0,
        }
        result["reused_prefix_tokens"] = completion.reused_prefix_tokens if completion else 0
        result["model_ms"] = completion.prompt_ms + completion.generation_ms if completion else 0.0
        result["worker_ms"] = (time.perf_counter() - started) * 1000
        return result

    def _inject_faults(self, query: str) -> None:
        if self._crash_marker and self._crash_marker in query:
            import ctypes

            ctypes.string_at(0)  # a real segmentation fault
        if self._hang_marker and self._hang_marker in query:
            time.sleep(3600)

    def _build_prompt(self, job: dict[str, Any], parent: Any) -> tuple[PreparedTools, list[int]]:
        with self.tracer.start_as_current_span("prompt", context=parent) as span:
            span.set_attribute("openinference.span.kind", "CHAIN")
            span.set_attribute("needle.prompt.format", self.prompt_format.name)
            span.set_attribute("needle.tools.count", len(job["tools"]))
            try:
                prepared = self.prepare_tools(job["tools_key"], job["tools"])
                text = self.prompt_format.render(prepared.toolset.tools, job["query"])
                tokens = self.engine.tokenize(text)
            except Exception as exc:
                _fail(span, exc)
                raise RequestFailed("prompt_error", f"{type(exc).__name__}: {exc}") from exc
            span.set_attribute("needle.prompt.tokens", len(tokens))
            reused = getattr(self.engine, "cached_prefix_length", None)
            if reused is not None:
                span.set_attribute("needle.prompt.reused_prefix_tokens", reused(tokens))
            if len(tokens) + 8 > self.engine.n_ctx:
                error = RequestFailed(
                    "context_overflow",
                    f"prompt is {len(tokens)} tokens; the model's context holds "
                    f"{self.engine.n_ctx}",
                )
                _fail(span, error)
                raise error
            return prepared, tokens

    def _infer(
        self, tokens: list[int], prepared: PreparedTools, job: dict[str, Any], parent: Any
    ) -> Completion:
        model = self.engine.model_name
        operation = self.prompt_format.operation
        with self.tracer.start_as_current_span(
            f"{operation} {model}", context=parent, kind=SpanKind.INTERNAL
        ) as span:
            span.set_attribute("openinference.span.kind", "LLM")
            span.set_attribute("gen_ai.operation.name", operation)
            span.set_attribute("gen_ai.provider.name", "llama.cpp")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.request.max_tokens", self.decoding.max_tokens)
            span.set_attribute("gen_ai.request.temperature", self.decoding.temperature)
            span.set_attribute("gen_ai.request.seed", self.decoding.seed)
            if self.capture_content:
                span.set_attribute(
                    "gen_ai.input.messages",
                    orjson.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": job["query"]}]}]
                    ).decode(),
                )
            try:
                completion = self.engine.complete(tokens, prepared.grammar, self.decoding)
            except ContextOverflowError as exc:
                _fail(span, exc)
                raise RequestFailed("context_overflow", str(exc)) from exc
            except Exception as exc:
                _fail(span, exc)
                raise RequestFailed("inference_error", f"{type(exc).__name__}: {exc}") from exc
            span.set_attribute("gen_ai.response.model", model)
            span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
            span.set_attribute("gen_ai.response.finish_reasons", [completion.finish_reason])
            span.set_attribute(
                "needle.prompt.reused_prefix_tokens", completion.reused_prefix_tokens
            )
            span.set_attribute("needle.time_to_first_token_ms", completion.prompt_ms)
            if self.capture_content:
                span.set_attribute("needle.output.raw", completion.text)
            if completion.finish_reason == "length":
                error = RequestFailed(
                    "truncated",
                    f"the answer did not finish within {completion.completion_tokens} tokens",
                )
                _fail(span, error)
                raise error
            return completion

    def _parse(self, completion: Completion, parent: Any) -> Any:
        with self.tracer.start_as_current_span("parse", context=parent) as span:
            span.set_attribute("openinference.span.kind", "CHAIN")
            try:
                return parse_answer(completion.text)
            except ValueError as exc:
                error = RequestFailed("invalid_output", f"model output is not JSON: {exc}")
                _fail(span, error)
                raise error from exc

    def _validate(self, answer: Any, toolset: ToolSet, parent: Any) -> list[dict[str, Any]]:
        with self.tracer.start_as_current_span("validate", context=parent) as span:
            span.set_attribute("openinference.span.kind", "CHAIN")
            try:
                calls = toolset.validate_calls(answer)
            except CallValidationError as exc:
                span.add_event("validation_failed", {"message": exc.message})
                span.set_status(Status(StatusCode.ERROR, exc.message))
                raise RequestFailed("invalid_arguments", exc.message) from exc
            span.set_attribute("needle.calls.count", len(calls))
            span.set_attribute("needle.calls.names", [call["name"] for call in calls])
            return calls


def parse_answer(text: str) -> Any:
    """Strict JSON first; then JSON with raw control characters inside strings."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, strict=False)


def _fail(span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)))


def _protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    """Keep a private copy of stdout for frames; point fd 1 at stderr for everything else."""
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, protocol_out


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)


def main() -> int:
    # The supervisor owns signal handling for the run: Ctrl-C in a terminal must not
    # kill workers behind its back. SIGTERM (from the supervisor) exits after a flush.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    frames_in, frames_out = _protocol_streams()
    init = read_frame(frames_in)
    if init is None or init.get("type") != "init":
        return 2
    index = int(init["worker_index"])
    settings = TelemetrySettings.from_dict(init["telemetry"])
    provider = create_tracer_provider(
        settings,
        {"needle.worker.index": index, "process.pid": os.getpid(), "needle.process.role": "worker"},
    )
    try:
        try:
            engine = LlamaEngine(
                init["model_path"],
                n_ctx=int(init.get("n_ctx", 0)),
                n_threads=int(init["n_threads"]),
                n_batch=int(init.get("n_batch", 512)),
                verbose=bool(init.get("verbose", False)),
            )
            prompt_format = make_prompt_format(init["prompt_format"], engine.metadata)
        except Exception as exc:
            write_frame(frames_out, {"type": "fatal", "message": f"{type(exc).__name__}: {exc}"})
            return 1
        handler = JobHandler(
            engine,
            prompt_format,
            DecodingSettings(**init["decoding"]),
            provider.get_tracer(INSTRUMENTATION_NAME),
            settings.capture_content,
            index,
        )
        write_frame(
            frames_out,
            {
                "type": "ready",
                "pid": os.getpid(),
                "model": engine.model_name,
                "n_ctx": engine.n_ctx,
                "load_ms": engine.load_ms,
            },
        )
        while True:
            message = read_frame(frames_in)
            if message is None or message.get("type") == "shutdown":
                return 0
            if message.get("type") == "job":
                write_frame(frames_out, handler.handle(message))
    finally:
        provider.shutdown()
