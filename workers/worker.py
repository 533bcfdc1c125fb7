"""A worker process: loads one model once, then answers job messages until told to stop.

Started by the supervisor as ``python -m workers`` (a fresh interpreter, never a fork
of a process that has run llama.cpp). It speaks length-prefixed frames on a private
copy of stdout (see :mod:`workers.protocol`), the typed messages of :mod:`workers.messages`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from workers.confidence import Calibration, Labels, label_answer
from workers.dispatch import Dispatcher, json_result, load_callable, load_dispatcher
from workers.engine import (
    Completion,
    ContextOverflowError,
    DecodingSettings,
    Engine,
    LlamaEngine,
    check_context,
)
from workers.messages import (
    ErrorInfo,
    Fatal,
    Init,
    Job,
    MessageError,
    Ready,
    Result,
    Shutdown,
    Usage,
    expect,
    to_wire,
)
from workers.prepared import PreparedTools, RequestFailed, ToolsetCache
from workers.prompts import PromptFormat, make_prompt_format
from workers.protocol import read_frame, write_frame
from workers.telemetry.attributes import (
    call_names,
    extract_trace_context,
    llm_request_attributes,
    llm_response_attributes,
    redact_error_message,
    tool_call_parts,
)
from workers.telemetry.providers import create_tracer_provider, shutdown_within
from workers.telemetry.settings import INSTRUMENTATION_NAME, WORKER_SHUTDOWN_S, TelemetrySettings
from workers.toolset import (
    CallValidationError,
    ToolChoice,
    ToolSet,
)

TOOLSET_CACHE_SIZE = 32
GENAI_PROVIDER = "llama.cpp"  # gen_ai.provider.name: the model runs in this process


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
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.prompt_format = prompt_format
        self.decoding = decoding
        self.tracer = tracer
        self.capture_content = capture_content
        self.worker_index = worker_index
        self._toolsets = ToolsetCache(engine.compile_grammar, decoding)
        self.calibration = Calibration.from_metadata(getattr(engine, "metadata", {}))
        self._inference_ms: float | None = None
        self._completion: Completion | None = None

    def prepare_tools(
        self,
        key: str,
        tools: list[dict[str, Any]],
        choice: ToolChoice = ToolChoice(),  # noqa: B008 (frozen)
    ) -> PreparedTools:
        return self._toolsets.get(key, tools, choice)

    def handle(self, job: Job) -> Result:
        started = time.perf_counter()
        parent = extract_trace_context(job.trace)
        status, calls, error = "ok", [], None
        results: list[dict[str, Any]] | None = None
        completion: Completion | None = None
        labels = Labels()
        self._inference_ms = None
        self._completion = None
        try:
            prepared, tokens = self._build_prompt(job, parent)
            completion = self._infer(tokens, prepared, job, parent)
            answer = self._parse(completion, parent)
            calls = self._validate(answer, prepared.toolset, parent)
            labels = self._labels(completion, calls, job.query, prepared.toolset)
            if self.dispatcher is not None:
                results = [self._execute(index, call, parent) for index, call in enumerate(calls)]
                error = tool_failure(results)
                if error is not None:
                    status = "error"
        except RequestFailed as failure:
            status, calls = "error", []
            error = ErrorInfo(failure.error_type, failure.message)
        except Exception as exc:  # a bug or runtime failure: report it, keep serving
            status, calls = "error", []
            error = ErrorInfo("internal_error", f"{type(exc).__name__}: {exc}")
        completion = completion or self._completion  # a truncated answer still used tokens
        return Result(
            seq=job.seq,
            worker_pid=os.getpid(),
            status=status,
            calls=calls,
            error=error,
            results=results,
            usage=Usage(completion.prompt_tokens, completion.completion_tokens)
            if completion
            else Usage(),
            reused_prefix_tokens=completion.reused_prefix_tokens if completion else 0,
            model_ms=completion.prompt_ms + completion.generation_ms if completion else 0.0,
            worker_ms=(time.perf_counter() - started) * 1000,
            operation=self.prompt_format.operation,
            inference_ms=self._inference_ms,
            confidence=labels.confidence if status == "ok" else None,
            call_confidence=labels.call_confidence if status == "ok" else None,
            ungrounded=labels.ungrounded if status == "ok" else None,
        )

    def _labels(
        self, completion: Completion, calls: list[dict[str, Any]], query: str, toolset: ToolSet
    ) -> Labels:
        token_bytes = getattr(self.engine, "token_bytes", None)
        pieces = token_bytes(completion.token_ids) if token_bytes is not None else None
        return label_answer(
            pieces, completion.logprobs, self.calibration, calls, query, toolset.tools
        )

    @contextmanager
    def _stage(self, name: str, parent: Any, openinference_kind: str = "CHAIN") -> Iterator[Span]:
        """One child span of the request's root. Failures are recorded where they
        happen (a :class:`RequestFailed` is already on the span); a worker stopped in
        the middle (SIGTERM: ``SystemExit``) still ends and exports the span."""
        with self.tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.INTERNAL,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attribute("openinference.span.kind", openinference_kind)
            try:
                yield span
            except RequestFailed:
                raise
            except Exception as exc:
                _fail(span, exc)
                raise
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, f"worker stopped ({type(exc).__name__})"))
                raise

    def _build_prompt(self, job: Job, parent: Any) -> tuple[PreparedTools, list[int]]:
        with self._stage("prompt", parent) as span:
            span.set_attribute("needle.prompt.format", self.prompt_format.name)
            span.set_attribute("needle.tools.count", len(job.tools))
            try:
                choice = ToolChoice(job.tool_choice, job.tool_name, job.parallel_tool_calls)
                prepared = self.prepare_tools(job.tools_key, job.tools, choice)
                text = self.prompt_format.render(prepared.toolset.tools, job.query, job.history)
                tokens = self.engine.tokenize(text)
            except RequestFailed as failure:
                _fail(span, failure)
                raise
            except Exception as exc:
                _fail(span, exc)
                raise RequestFailed("prompt_error", f"{type(exc).__name__}: {exc}") from exc
            span.set_attribute("needle.prompt.tokens", len(tokens))
            reused = getattr(self.engine, "cached_prefix_length", None)
            if reused is not None:
                span.set_attribute("needle.prompt.reused_prefix_tokens", reused(tokens))
            if self.capture_content:
                span.set_attribute("input.value", job.query)
            try:
                check_context(len(tokens), self.engine.n_ctx)
            except ContextOverflowError as exc:
                error = RequestFailed("context_overflow", str(exc))
                _fail(span, error)
                raise error from exc
            return prepared, tokens

    def _infer(
        self, tokens: list[int], prepared: PreparedTools, job: Job, parent: Any
    ) -> Completion:
        model = self.engine.model_name
        operation = self.prompt_format.operation
        with self._stage(f"{operation} {model}", parent, "LLM") as span:
            capture = self.capture_content
            span.set_attributes(
                llm_request_attributes(
                    operation=operation,
                    provider=GENAI_PROVIDER,
                    model=model,
                    max_tokens=self.decoding.max_tokens,
                    temperature=self.decoding.temperature,
                    seed=self.decoding.seed,
                    tool_names=prepared.toolset.names,
                    query=job.query if capture else None,
                    tools=prepared.toolset.tools if capture else None,
                )
            )
            inference_started = time.perf_counter()
            try:
                completion = self.engine.complete(tokens, prepared.grammar, self.decoding)
            except ContextOverflowError as exc:
                self._inference_ms = (time.perf_counter() - inference_started) * 1000
                _fail(span, exc)
                raise RequestFailed("context_overflow", str(exc)) from exc
            except Exception as exc:
                self._inference_ms = (time.perf_counter() - inference_started) * 1000
                _fail(span, exc)
                raise RequestFailed("inference_error", f"{type(exc).__name__}: {exc}") from exc
            self._inference_ms = (time.perf_counter() - inference_started) * 1000
            self._completion = completion
            span.set_attributes(
                llm_response_attributes(
                    model=model,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                    reused_prefix_tokens=completion.reused_prefix_tokens,
                    finish_reason=completion.finish_reason,
                    prompt_ms=completion.prompt_ms,
                    grammar_ms=completion.grammar_ms,
                    forced_tokens=completion.forced_tokens,
                    decode_calls=completion.decode_calls,
                    none_probability=completion.none_probability,
                )
            )
            self._describe_output(span, completion)
            if completion.finish_reason == "length":
                error = RequestFailed(
                    "truncated",
                    f"the answer did not finish within {completion.completion_tokens} tokens",
                )
                _fail(span, error)
                raise error
            return completion

    def _describe_output(self, span: Span, completion: Completion) -> None:
        """The model's answer as GenAI output messages (tool-call parts) and OpenInference
        output attributes: tool names always, argument values and raw text only with
        content capture."""
        try:
            answer: Any = parse_answer(completion.text)
        except ValueError:
            answer = None
        parts = tool_call_parts(answer)
        names = call_names(answer)
        span.set_attribute("needle.calls.names", names)
        prefix = "llm.output_messages.0.message"
        span.set_attribute(f"{prefix}.role", "assistant")
        for index, name in enumerate(names):
            span.set_attribute(f"{prefix}.tool_calls.{index}.tool_call.function.name", name)
        if not self.capture_content:
            return
        finish_reason = completion.finish_reason
        if parts is None:
            parts = [{"type": "text", "content": completion.text}]
        elif parts and finish_reason == "stop":
            finish_reason = "tool_call"
        span.set_attribute(
            "gen_ai.output.messages",
            orjson.dumps(
                [{"role": "assistant", "parts": parts, "finish_reason": finish_reason}]
            ).decode(),
        )
        span.set_attribute("needle.output.raw", completion.text)
        span.set_attribute("output.value", completion.text)
        span.set_attribute("output.mime_type", "application/json")
        for index, part in enumerate(parts):
            if part.get("type") == "tool_call":
                span.set_attribute(
                    f"{prefix}.tool_calls.{index}.tool_call.function.arguments",
                    orjson.dumps(part.get("arguments")).decode(),
                )

    def _parse(self, completion: Completion, parent: Any) -> Any:
        with self._stage("parse", parent) as span:
            span.set_attribute("needle.output.chars", len(completion.text))
            try:
                return parse_answer(completion.text)
            except ValueError as exc:
                error = RequestFailed("invalid_output", f"model output is not JSON: {exc}")
                _fail(span, error)
                raise error from exc

    def _validate(self, answer: Any, toolset: ToolSet, parent: Any) -> list[dict[str, Any]]:
        with self._stage("validate", parent) as span:
            try:
                calls = toolset.validate_calls(answer)
            except CallValidationError as exc:
                message = redact_error_message(
                    "invalid_arguments", exc.message, self.capture_content
                )
                span.add_event(
                    "validation_failed",
                    {"message": message, "needle.call.index": exc.call_index},
                )
                span.set_attribute("error.type", "invalid_arguments")
                span.set_status(Status(StatusCode.ERROR, message))
                raise RequestFailed("invalid_arguments", exc.message) from exc
            span.set_attribute("needle.calls.count", len(calls))
            span.set_attribute("needle.calls.names", [call["name"] for call in calls])
            if self.capture_content:
                span.set_attribute("output.value", orjson.dumps(calls).decode())
            return calls

    def _execute(self, index: int, call: dict[str, Any], parent: Any) -> dict[str, Any]:
        """Run one call through the dispatcher, as an ``execute_tool`` span (GenAI semantic
        conventions).  A failing tool is reported in the result, never raised."""
        assert self.dispatcher is not None
        name = call["name"]
        with self._stage(f"execute_tool {name}", parent, "TOOL") as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", name)
            span.set_attribute("gen_ai.tool.type", "function")
            span.set_attribute("tool.name", name)
            span.set_attribute("needle.call.index", index)
            if self.capture_content:
                arguments = orjson.dumps(call["arguments"]).decode()
                span.set_attribute("gen_ai.tool.call.arguments", arguments)
                span.set_attribute("input.value", arguments)
            try:
                value = json_result(self.dispatcher(name, call["arguments"]))
            except Exception as exc:  # the user's tool failed: the request says so
                error_type = type(exc).__qualname__
                span.set_attribute("error.type", error_type)
                if self.capture_content:  # a message can quote argument values
                    span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, error_type))
                return {"name": name, "error": {"type": error_type, "message": str(exc)}}
            if self.capture_content:
                encoded = orjson.dumps(value).decode()
                span.set_attribute("gen_ai.tool.call.result", encoded)
                span.set_attribute("output.value", encoded)
            return {"name": name, "result": value}


def parse_answer(text: str) -> Any:
    """Strict JSON first; then JSON with raw control characters inside strings."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, strict=False)


def _fail(span: Any, exc: BaseException) -> None:
    if isinstance(exc, RequestFailed):
        span.set_attribute("error.type", exc.error_type)
    else:
        span.set_attribute("error.type", type(exc).__qualname__)
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


def tool_failure(results: list[dict[str, Any]]) -> ErrorInfo | None:
    """The request's error when some dispatched calls failed (the first one is named)."""
    failed = [result for result in results if "error" in result]
    if not failed:
        return None
    first = failed[0]["error"]
    return ErrorInfo(
        "tool_error",
        f"{len(failed)} of {len(results)} tool calls failed; "
        f"first: {first['type']}: {first['message']}",
    )


def load_engine(init: Init) -> Engine:
    """llama.cpp, or the engine that ``init.engine`` (MODULE:FUNCTION) builds, called
    with the same arguments as :class:`LlamaEngine`."""
    factory: Any = LlamaEngine
    if init.engine:
        factory = load_callable(init.engine, "--engine")
    return factory(
        init.model_path,
        n_ctx=init.n_ctx,
        n_threads=init.n_threads,
        n_batch=init.n_batch,
        verbose=init.verbose,
    )


def start_handler(init: Init, tracer: Tracer) -> tuple[JobHandler, Ready]:
    """Load the engine (and the --dispatch function) once: the handler for every job, and
    what to report as ready. Shared by the worker process and the Ray actor
    (:mod:`workers.actor`); raises when the model cannot be loaded."""
    engine = load_engine(init)
    prompt_format = make_prompt_format(init.prompt_format, engine.metadata)
    dispatcher = load_dispatcher(init.dispatch) if init.dispatch else None
    capture = TelemetrySettings.from_dict(init.telemetry).capture_content
    handler = JobHandler(
        engine, prompt_format, init.decoding, tracer, capture, init.worker_index, dispatcher
    )
    ready = Ready(os.getpid(), engine.model_name, engine.n_ctx, getattr(engine, "load_ms", 0.0))
    return handler, ready


def serve(frames_in: IO[bytes], frames_out: IO[bytes], init: Init, tracer: Tracer) -> int:
    """Load the model, say ready, then answer jobs until told to stop."""
    try:
        handler, ready = start_handler(init, tracer)
    except Exception as exc:
        write_frame(frames_out, to_wire(Fatal(f"{type(exc).__name__}: {exc}")))
        return 1
    write_frame(frames_out, to_wire(ready))
    while True:
        frame = read_frame(frames_in)
        if frame is None:
            return 0
        message = expect(frame, Job, Shutdown)
        if isinstance(message, Shutdown):
            return 0
        write_frame(frames_out, to_wire(handler.handle(message)))


def main() -> int:
    # The supervisor owns signal handling for the run: Ctrl-C in a terminal must not
    # kill workers behind its back. SIGTERM (from the supervisor) exits after a flush.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    frames_in, frames_out = _protocol_streams()
    frame = read_frame(frames_in)
    try:
        init = expect(frame or {}, Init)
    except MessageError as exc:
        sys.stderr.write(f"needle-pipeline worker: {exc}\n")
        return 2
    settings = TelemetrySettings.from_dict(init.telemetry)
    provider = create_tracer_provider(
        settings,
        {
            "needle.worker.index": init.worker_index,
            "process.pid": os.getpid(),
            "needle.process.role": "worker",
        },
        root=False,  # follow the sampling decision in each job's traceparent
    )
    try:
        return serve(frames_in, frames_out, init, provider.get_tracer(INSTRUMENTATION_NAME))
    finally:
        # A SIGTERM now must not cut the flush short: the supervisor's SIGKILL comes
        # after its grace period, and the flush is bounded well within it.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutdown_within(WORKER_SHUTDOWN_S, provider)
