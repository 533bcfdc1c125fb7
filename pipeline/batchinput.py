"""OpenAI Batch API request lines (``{"custom_id", "method", "url", "body"}``) as requests.

A line is one ``POST /v1/chat/completions``: the query is the last message, from the user;
system messages may come before it and, with the chat prompt format, earlier user and
assistant turns, which go into the prompt (any other message is an error). ``tools`` are OpenAI tool
schemas, and ``tool_choice`` / ``parallel_tool_calls`` become a :class:`ToolChoice` that
the worker compiles into the answer grammar. Other body fields (``model``, ``max_tokens``,
``temperature``, ``seed``, ...) are accepted; decoding follows the command line.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.requests import InputError, Request, RequestId, ToolCache, build_request
from workers.toolset import ToolChoice

CHAT_COMPLETIONS_URL = "/v1/chat/completions"


def is_batch_line(raw: bytes) -> bool:
    """Whether an input line is an OpenAI Batch request (format detection on the first line)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and "custom_id" in document


def batch_id(document: dict[str, Any], line: int) -> RequestId:
    """The line's ``custom_id``: a non-empty string."""
    value = document.get("custom_id")
    if not isinstance(value, str) or not value:
        raise InputError(line, "invalid_id", "custom_id must be a non-empty string")
    return value


def build_batch_request(
    document: dict[str, Any],
    line: int,
    request_id: RequestId,
    default_tools: list[Any] | None,
    tool_cache: ToolCache,
    chat: bool = False,
) -> Request:
    """The request of one Batch line; ``chat``: the chat prompt format, which takes the
    conversation before the query (the needle format takes the query alone)."""
    method, url = document.get("method", "POST"), document.get("url")
    if method != "POST" or url != CHAT_COMPLETIONS_URL:
        raise InputError(
            line,
            "unsupported_url",
            f"only POST {CHAT_COMPLETIONS_URL} is supported, not {method} {url}",
            request_id,
        )
    body = document.get("body")
    if not isinstance(body, dict):
        raise InputError(line, "invalid_body", "'body' must be a JSON object", request_id)
    query, history = read_messages(body.get("messages"), line, request_id, chat)
    native = {"query": query}
    if body.get("tools") is not None:
        native["tools"] = body["tools"]
    request = build_request(native, line, request_id, default_tools, tool_cache)
    names = [tool["name"] for tool in request.tools]
    request.choice = read_tool_choice(body, names, line, request_id)
    request.history = history
    return request


def read_messages(
    messages: object, line: int, request_id: RequestId, turns: bool
) -> tuple[str, list[dict[str, str]]]:
    """(the query, the messages before it). The query is the last message, from the user;
    before it may come system messages and, when ``turns`` (the chat prompt format),
    earlier user and assistant messages."""
    if not isinstance(messages, list) or not messages:
        raise InputError(
            line, "missing_query", "'body.messages' must be a non-empty list", request_id
        )
    roles = [message.get("role") if isinstance(message, dict) else None for message in messages]
    if "user" not in roles:
        raise InputError(line, "missing_query", "'body.messages' has no user message", request_id)
    allowed = ("system", "developer", "user", "assistant") if turns else ("system", "developer")
    history = []
    for index, role in enumerate(roles[:-1]):
        if role not in allowed:
            raise InputError(
                line,
                "unsupported_messages",
                f"messages[{index}] has role {role!r}: only system messages may come before "
                + (
                    "the query (and user and assistant turns with --prompt-format chat)"
                    if not turns
                    else "the query, and user and assistant turns with text content"
                ),
                request_id,
            )
        text = message_text(messages[index].get("content"), line, request_id)
        history.append({"role": "system" if role == "developer" else str(role), "content": text})
    if roles[-1] != "user":
        raise InputError(
            line,
            "unsupported_messages",
            f"the last message must be the user's query, not {roles[-1]!r}",
            request_id,
        )
    return message_text(messages[-1].get("content"), line, request_id), history


def message_text(content: object, line: int, request_id: RequestId) -> str:
    """A message's content: a string, or a list of ``{"type": "text", "text"}`` parts."""
    if isinstance(content, list):
        texts = [
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        if len(texts) == len(content) and all(isinstance(text, str) for text in texts):
            content = "".join(texts)  # type: ignore[arg-type]
    if not isinstance(content, str) or not content.strip():
        raise InputError(
            line, "invalid_query", "the user message must have non-empty text content", request_id
        )
    return content


def read_tool_choice(
    body: dict[str, Any], names: list[str], line: int, request_id: RequestId
) -> ToolChoice:
    """``tool_choice`` and ``parallel_tool_calls`` from a request body."""
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise InputError(
            line, "invalid_tool_choice", "'parallel_tool_calls' must be a boolean", request_id
        )
    raw = body.get("tool_choice", "auto")
    if raw is None:
        raw = "auto"
    if isinstance(raw, str) and raw in ("auto", "none", "required"):
        mode, name = raw, ""
    elif (
        isinstance(raw, dict)
        and raw.get("type") == "function"
        and isinstance(raw.get("function"), dict)
        and isinstance(raw["function"].get("name"), str)
    ):
        mode, name = "function", raw["function"]["name"]
        if name not in names:
            raise InputError(
                line,
                "invalid_tool_choice",
                f"tool_choice names {name!r}, which is not in 'tools'",
                request_id,
            )
    else:
        raise InputError(
            line,
            "invalid_tool_choice",
            '\'tool_choice\' must be "auto", "none", "required" or '
            '{"type": "function", "function": {"name": ...}}',
            request_id,
        )
    if mode == "required" and not names:
        raise InputError(
            line, "invalid_tool_choice", 'tool_choice "required" with no tools', request_id
        )
    return ToolChoice(mode, name, parallel)
