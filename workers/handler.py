"""A job in, a result out: the prompt, the model call, parsing, validation and the optional
tool execution of one request, each a child span of the request's trace.

:class:`JobHandler` is shared by the worker process (:mod:`workers.worker`) and the Ray
actor (:mod:`workers.actor`). A stage that fails records it on its span and raises
:class:`workers.prepared.RequestFailed`, which becomes the result's error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from workers.confidence import Calibration, Labels, label_answer
from workers.dispatch import Dispatcher, json_result
from workers.engine import (
    REPAIRS,
    Completion,
    ContextOverflowError,
    DecodingSettings,
    Engine,
    check_context,
)
from workers.messages import (
    ErrorInfo,
    Job,
    Result,
    Usage,
)
from workers.prepared import PreparedTools, RequestFailed, ToolsetCache
from workers.prompts import PromptFormat
from workers.repairs import Repairs, repair_calls
from workers.telemetry.attributes import (
    extract_trace_context,
    llm_request_attributes,
    llm_response_attributes,
    output_message_attributes,
    redact_error_message,
    tool_call_attributes,
    tool_result_attributes,
)
from workers.toolset import (
    CallValidationError,
    ToolChoice,
    ToolSet,
)

GENAI_PROVIDER = "llama.cpp"  # gen_ai.provider.name: the model runs in this process
_FILLS = tuple(setting for setting, listed in REPAIRS.items() if listed == "filled")


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
        inference: Inference | None = None
        labels = Labels()
        repairs = Repairs()
        try:
            prepared, tokens = self._build_prompt(job, parent)
            inference = self._infer(tokens, prepared, job, parent)
            completion = inference.completion
            answer = self._parse(inference, parent)
            calls, repairs = self._validate(answer, prepared.toolset, job.query, parent)
            # strings the worker took from the request: put in their form, or filled in
            taken = {(c["call"], c["path"]) for c in repairs.reformatted + repairs.filled}
            labels = self._labels(completion, calls, job.query, prepared.toolset, taken)
            if self.dispatcher is not None:
                results = [self._execute(index, call, parent) for index, call in enumerate(calls)]
                error = tool_failure(results)
                if error is not None:
                    status = "error"
        except RequestFailed as failure:
            status, calls = "error", []
            error = ErrorInfo(failure.error_type, failure.message)
            inference = inference or failure.inference  # a truncated answer still used tokens
        except Exception as exc:  # a bug or runtime failure: report it, keep serving
            status, calls = "error", []
            error = ErrorInfo("internal_error", f"{type(exc).__name__}: {exc}")
        completion = inference.completion if inference else None
        ok = status == "ok"
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
            inference_ms=inference.ms if inference else None,
            confidence=labels.confidence if ok else None,
            call_confidence=labels.call_confidence if ok else None,
            ungrounded=labels.ungrounded if ok else None,
            repeated=labels.repeated if ok else None,
            reformatted=repairs.reformatted if ok and repairs.reformatted else None,
            converted=repairs.converted if ok and repairs.converted else None,
            filled=repairs.filled if ok and repairs.filled else None,
        )

    def _labels(
        self,
        completion: Completion,
        calls: list[dict[str, Any]],
        query: str,
        toolset: ToolSet,
        grounded: set[tuple[int, str]],
    ) -> Labels:
        token_bytes = getattr(self.engine, "token_bytes", None)
        pieces = token_bytes(completion.token_ids) if token_bytes is not None else None
        return label_answer(
            pieces, completion.logprobs, self.calibration, calls, query, toolset.tools, grounded
        )

    @contextmanager
    def _stage(
        self,
        name: str,
        parent: Any,
        openinference_kind: str = "CHAIN",
        error_type: str = "internal_error",
    ) -> Iterator[Span]:
        """One child span of the request's root, which records how the stage failed.

        A :class:`RequestFailed` is recorded on the span (unless the stage already set an
        error status, with words of its own); any other exception is recorded and becomes
        a ``RequestFailed`` of ``error_type``. A worker stopped in the middle (SIGTERM:
        ``SystemExit``) still ends and exports the span."""
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
            except RequestFailed as failure:
                if getattr(span, "status", None) is None or span.status.is_ok:
                    _fail(span, failure)
                raise
            except Exception as exc:
                _fail(span, exc)
                raise RequestFailed(error_type, f"{type(exc).__name__}: {exc}") from exc
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, f"worker stopped ({type(exc).__name__})"))
                raise

    def _build_prompt(self, job: Job, parent: Any) -> tuple[PreparedTools, list[int]]:
        with self._stage("prompt", parent, error_type="prompt_error") as span:
            span.set_attribute("needle.prompt.format", self.prompt_format.name)
            span.set_attribute("needle.tools.count", len(job.tools))
            prepared = self.prepare_tools(job.tools_key, job.tools, job.choice)
            shown = prepared.toolset.model_tools
            text = self.prompt_format.render(shown, job.query, job.history)
            tokens = self.engine.tokenize(text)
            span.set_attribute("needle.prompt.tokens", len(tokens))
            reused = getattr(self.engine, "cached_prefix_length", None)
            if reused is not None:
                span.set_attribute("needle.prompt.reused_prefix_tokens", reused(tokens))
            if self.capture_content:
                span.set_attribute("input.value", job.query)
            try:
                check_context(len(tokens), self.engine.n_ctx)
            except ContextOverflowError as exc:
                raise RequestFailed("context_overflow", str(exc)) from exc
            return prepared, tokens

    def _infer(
        self, tokens: list[int], prepared: PreparedTools, job: Job, parent: Any
    ) -> Inference:
        model = self.engine.model_name
        operation = self.prompt_format.operation
        with self._stage(f"{operation} {model}", parent, "LLM", "inference_error") as span:
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
            started = time.perf_counter()
            try:
                completion = self.engine.complete(tokens, prepared.grammar, self.decoding)
            except Exception as exc:
                inference = Inference(None, (time.perf_counter() - started) * 1000)
                _fail(span, exc)
                overflow = isinstance(exc, ContextOverflowError)
                error_type = "context_overflow" if overflow else "inference_error"
                message = str(exc) if overflow else f"{type(exc).__name__}: {exc}"
                raise RequestFailed(error_type, message, inference) from exc
            answer = ParsedAnswer.of(completion.text)
            inference = Inference(completion, (time.perf_counter() - started) * 1000, answer)
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
            span.set_attributes(
                output_message_attributes(
                    answer.value if answer.error is None else None,
                    completion.text,
                    completion.finish_reason,
                    self.capture_content,
                )
            )
            if completion.finish_reason == "length":
                raise RequestFailed(
                    "truncated",
                    f"the answer did not finish within {completion.completion_tokens} tokens",
                    inference,
                )
            return inference

    def _parse(self, inference: Inference, parent: Any) -> Any:
        """The parse stage's span for the answer parsed once, right after the model call."""
        assert inference.completion is not None and inference.answer is not None
        with self._stage("parse", parent) as span:
            span.set_attribute("needle.output.chars", len(inference.completion.text))
            if inference.answer.error is not None:
                message = f"model output is not JSON: {inference.answer.error}"
                raise RequestFailed("invalid_output", message)
            return inference.answer.value

    def _validate(
        self, answer: Any, toolset: ToolSet, query: str, parent: Any
    ) -> tuple[list[dict[str, Any]], Repairs]:
        """The answer's valid calls, with each string taken from the request in the form its
        parameter asks (:mod:`workers.reformat`), each number the model copied in the
        request's unit put in its parameter's (:mod:`workers.units`) and each optional enum
        argument it left out that the request names filled in (:mod:`workers.enumfill`), each
        optional flag it names set (:mod:`workers.flagfill`), the one date or time it writes
        filled in where the answer left out its place (:mod:`workers.datefill`), and what
        changed."""
        with self._stage("validate", parent) as span:
            try:
                calls = toolset.validate_calls(answer)
            except CallValidationError as exc:
                # Recorded here, not by the stage: the message can quote argument values.
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
            calls, repairs = repair_calls(calls, query, toolset, self.decoding)
            if self.decoding.reformat_strings:
                span.set_attribute("needle.reformatted.count", len(repairs.reformatted))
            if self.decoding.convert_units:
                span.set_attribute("needle.converted.count", len(repairs.converted))
            if any(getattr(self.decoding, setting) for setting in _FILLS):
                span.set_attribute("needle.filled.count", len(repairs.filled))
            span.set_attribute("needle.calls.count", len(calls))
            span.set_attribute("needle.calls.names", [call["name"] for call in calls])
            if self.capture_content:
                span.set_attribute("output.value", orjson.dumps(calls).decode())
            return calls, repairs

    def _execute(self, index: int, call: dict[str, Any], parent: Any) -> dict[str, Any]:
        """Run one call through the dispatcher, as an ``execute_tool`` span (GenAI semantic
        conventions).  A failing tool is reported in the result, never raised."""
        assert self.dispatcher is not None
        name = call["name"]
        with self._stage(f"execute_tool {name}", parent, "TOOL") as span:
            span.set_attributes(
                tool_call_attributes(name, index, call["arguments"], self.capture_content)
            )
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
                span.set_attributes(tool_result_attributes(value))
            return {"name": name, "result": value}


@dataclass(frozen=True)
class ParsedAnswer:
    """The model's answer text as JSON, or why it is not."""

    value: Any
    error: str | None = None

    @classmethod
    def of(cls, text: str) -> ParsedAnswer:
        try:
            return cls(parse_answer(text))
        except ValueError as exc:
            return cls(None, str(exc))


@dataclass(frozen=True)
class Inference:
    """One model call: its completion (None when it failed), its time and its answer
    parsed (the model span's output attributes and the parse stage share it)."""

    completion: Completion | None
    ms: float
    answer: ParsedAnswer | None = None


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
