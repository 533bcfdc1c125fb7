"""A :class:`ResultLine` as an OpenAI Batch API output line, and back (for resume).

``pipeline.results`` stays the one schema of a result; this is its other spelling::

    {"id": "batch_req_<trace id>", "custom_id": ..., "response": {"status_code": 200,
     "request_id": "req_<trace id>", "body": <chat.completion>}, "error": null,
     "trace_id": ..., "line": ...}

A successful request's body is a ``chat.completion`` whose message carries the calls as
``tool_calls`` (``arguments`` a JSON string; ``finish_reason`` ``tool_calls``, or
``stop`` for no call). A failed one has ``status_code`` 400 (the request is at fault) or
500 (the model or a worker failed) and the body ``{"error": {"message", "type", "param",
"code"}}``, ``code`` being the pipeline's error type. ``trace_id`` and ``line`` are extra
top-level fields (clients ignore them); ``line`` lets a resume find lines without an id.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import orjson

from pipeline.results import ResultLine, ResultLineError, decode_line
from workers.errors import anonymous, client_fault
from workers.messages import ErrorInfo, Usage


def to_batch_dict(result: ResultLine, created: int | None = None) -> dict[str, Any]:
    trace = result.trace_id or uuid.uuid4().hex
    if result.ok:
        response = {
            "status_code": 200,
            "request_id": f"req_{trace}",
            "body": _completion(result, trace, created),
        }
    else:
        error = result.error or ErrorInfo("error", "")
        status = 400 if client_fault(error.type) else 500
        body_error = {
            "message": error.message,
            "type": "invalid_request_error" if status == 400 else "server_error",
            "param": None,
            "code": error.type,
        }
        response = {
            "status_code": status,
            "request_id": f"req_{trace}",
            "body": {"error": body_error},
        }
    return {
        "id": f"batch_req_{trace}",
        # a line that has no custom_id of its own (not JSON, no valid custom_id): null
        "custom_id": None if anonymous(result.error_type) else str(result.id),
        "response": response,
        "error": None,
        "trace_id": result.trace_id,
        "line": result.line,
    }


def _completion(result: ResultLine, trace: str, created: int | None) -> dict[str, Any]:
    tool_calls = [
        {
            "id": _call_id(trace, index),
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": orjson.dumps(call.get("arguments", {})).decode(),
            },
        }
        for index, call in enumerate(result.calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = result.usage
    return {
        "id": f"chatcmpl-{trace}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        },
    }


def _call_id(trace: str, index: int) -> str:
    return "call_" + hashlib.sha256(f"{trace}:{index}".encode()).hexdigest()[:24]


def encode_batch_line(result: ResultLine) -> bytes:
    """One whole OpenAI Batch output line, newline included."""
    return orjson.dumps(to_batch_dict(result)) + b"\n"


def is_batch_output(data: dict[str, Any]) -> bool:
    return "custom_id" in data and "response" in data


def from_batch_dict(data: dict[str, Any]) -> ResultLine:
    """A Batch output line read back (what a resume needs: id, line, status, error)."""
    line, custom_id = data.get("line"), data.get("custom_id")
    if not isinstance(line, int) or not isinstance(custom_id, (str, type(None))):
        raise ResultLineError("custom_id or line missing or of the wrong type")
    response = data.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("body"), dict):
        raise ResultLineError("a Batch output line without a response body")
    body = response["body"]
    result = ResultLine(id=line if custom_id is None else custom_id, line=line, status="error")
    result.trace_id = str(data.get("trace_id", ""))
    result.model = str(body.get("model", ""))
    if response.get("status_code") == 200:
        result.status = "ok"
        message = body["choices"][0]["message"]
        result.calls = [
            {
                "name": call["function"]["name"],
                "arguments": orjson.loads(call["function"]["arguments"]),
            }
            for call in message.get("tool_calls") or []
        ]
        usage = body.get("usage") or {}
        result.usage = Usage(
            int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        )
    else:
        error = body.get("error") or {}
        result.error = ErrorInfo(str(error.get("code")), str(error.get("message", "")))
    return result


def decode_any_line(raw: bytes | str) -> ResultLine:
    """A result line in either spelling (native or Batch); :class:`ResultLineError` when it
    is neither."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ResultLineError(f"not JSON: {exc}") from None
    if isinstance(data, dict) and is_batch_output(data):
        try:
            return from_batch_dict(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ResultLineError(f"a Batch output line of the wrong shape: {exc}") from None
    return decode_line(raw)
