"""One input line to one :class:`Request`, or an :class:`InputError` that names the line."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from workers.errors import ErrorType
from workers.toolset import ToolChoice, ToolSchemaError, normalize_tools, tools_key

RequestId = str | int

# Nesting a request may have: deeper JSON cannot be re-encoded for a worker (orjson
# stops at 254 levels) and would exhaust the schema validator's recursion.
MAX_NESTING = 64


@dataclass(slots=True)
class Request:
    line: int
    id: RequestId
    query: str
    tools: list[dict[str, Any]]
    tools_key: str
    choice: ToolChoice = ToolChoice()  # noqa: RUF009 (frozen): OpenAI's tool_choice
    history: list[dict[str, str]] = field(default_factory=list)  # OpenAI: earlier messages


class InputError(Exception):
    """A line that cannot become a request. ``id`` is the line's own id when it has one."""

    def __init__(self, line: int, error_type: str, message: str, id: RequestId | None = None):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.error_type = ErrorType(error_type)
        self.message = f"line {line}: {message}"
        self.id: RequestId = id if id is not None else line


class ToolCache:
    """Normalised tool lists by their raw JSON, so repeated lists are checked once."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[list[dict[str, Any]], str] | ToolSchemaError] = (
            OrderedDict()
        )

    def get(self, raw_tools: object) -> tuple[list[dict[str, Any]], str]:
        too_deep = ToolSchemaError(f"tools are nested more than {MAX_NESTING} levels deep")
        try:
            raw = orjson.dumps(raw_tools)
        except orjson.JSONEncodeError:  # past orjson's 254 levels
            raise too_deep from None
        entry = self._entries.get(raw)
        if entry is None:
            try:
                if nesting_depth(raw_tools) > MAX_NESTING:
                    raise too_deep
                tools = normalize_tools(raw_tools)
                entry = (tools, tools_key(tools))
            except ToolSchemaError as exc:
                entry = exc
            except (RecursionError, TypeError, ValueError) as exc:  # defensive: never crash
                entry = ToolSchemaError(f"tools cannot be used: {type(exc).__name__}: {exc}")
            self._entries[raw] = entry
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(raw)
        if isinstance(entry, ToolSchemaError):
            raise entry
        return entry


def nesting_depth(value: object, limit: int = MAX_NESTING + 1) -> int:
    """How deeply ``value`` nests lists and objects, counting up to ``limit`` at most."""
    depth = 0
    level: list[Any] = [value]
    while depth < limit:
        level = [node for node in level if isinstance(node, (dict, list))]
        if not level:
            break
        depth += 1
        level = [
            child for node in level for child in (node.values() if isinstance(node, dict) else node)
        ]
    return depth


def read_id(document: dict[str, Any], line: int) -> RequestId:
    """The request id: the line's ``id`` (string or integer), else its line number."""
    if "id" not in document or document["id"] is None:
        return line
    value = document["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(line, "invalid_id", "id must be a string or an integer")
    if isinstance(value, str) and not value:
        raise InputError(line, "invalid_id", "id must not be empty")
    return value


def decode_line(raw: bytes, line: int) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(line, "invalid_utf8", f"not valid UTF-8 at byte {exc.start}") from None
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(line, "invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InputError(line, "not_an_object", "a request must be a JSON object")
    return document


def build_request(
    document: dict[str, Any],
    line: int,
    request_id: RequestId,
    default_tools: list[Any] | None,
    tool_cache: ToolCache,
) -> Request:
    query = document.get("query")
    if query is None:
        raise InputError(line, "missing_query", "the request has no 'query'", request_id)
    if not isinstance(query, str) or not query.strip():
        raise InputError(line, "invalid_query", "'query' must be a non-empty string", request_id)
    raw_tools = document.get("tools")
    if raw_tools is None:
        if default_tools is None:
            raise InputError(
                line,
                "missing_tools",
                "the request has no 'tools' and no --tools file was given",
                request_id,
            )
        raw_tools = default_tools
    try:
        tools, key = tool_cache.get(raw_tools)
    except ToolSchemaError as exc:
        error_type = "invalid_tools" if not isinstance(raw_tools, list) else "invalid_tool_schema"
        raise InputError(line, error_type, str(exc), request_id) from None
    return Request(line=line, id=request_id, query=query, tools=tools, tools_key=key)
