"""The one vocabulary of request errors.

Each error type says whether the request itself is at fault (an OpenAI Batch output line
gets status 400, else 500), whether the line had no id of its own (its output line's id is
the line number; a Batch line's ``custom_id`` is null) and whether a resume finds its
output line by line number (those, and lines whose id belongs to another line) rather
than by id. A type
the code raises must be here: :func:`error_type` refuses any other, so a new one cannot
pass for a server error unnoticed. ``docs/usage.md`` lists them all (a test checks).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    """An output line's ``error.type``: ``(value, client fault, what identifies the output
    line: "id", "line" (its number), "line, no id" (the input line has no id of its own))``."""

    client_fault: bool
    anonymous: bool
    by_line: bool

    def __new__(cls, value: str, client_fault: bool, identified_by: str = "id") -> ErrorType:
        member = str.__new__(cls, value)
        member._value_ = value
        member.client_fault = client_fault
        member.anonymous = identified_by == "line, no id"
        member.by_line = identified_by != "id"
        return member

    # An input line with no id of its own (its output line's id is the line number).
    INVALID_UTF8 = "invalid_utf8", True, "line, no id"
    INVALID_JSON = "invalid_json", True, "line, no id"
    NOT_AN_OBJECT = "not_an_object", True, "line, no id"
    LINE_TOO_LONG = "line_too_long", True, "line, no id"
    INVALID_ID = "invalid_id", True, "line, no id"
    INVALID_ROW = "invalid_row", True, "line, no id"  # a CSV row the reader cannot read
    # Its id is the earlier line's: the error line gets "id (line N)".
    DUPLICATE_ID = "duplicate_id", True, "line"
    # A line that failed in a way nothing foresaw (its id may not be readable).
    INVALID_REQUEST = "invalid_request", True, "line"
    # A request that cannot be served as written.
    MISSING_QUERY = "missing_query", True
    INVALID_QUERY = "invalid_query", True
    MISSING_TOOLS = "missing_tools", True
    INVALID_TOOLS = "invalid_tools", True
    INVALID_TOOL_SCHEMA = "invalid_tool_schema", True
    INVALID_TOOL_CHOICE = "invalid_tool_choice", True
    CONTEXT_OVERFLOW = "context_overflow", True
    # OpenAI Batch input.
    INVALID_BODY = "invalid_body", True
    UNSUPPORTED_URL = "unsupported_url", True
    UNSUPPORTED_MESSAGES = "unsupported_messages", True
    # The model's answer.
    TRUNCATED = "truncated", False
    INVALID_OUTPUT = "invalid_output", False
    INVALID_ARGUMENTS = "invalid_arguments", False
    # A --dispatch tool raised.
    TOOL_ERROR = "tool_error", False
    # The worker or the run.
    PROMPT_ERROR = "prompt_error", False
    INFERENCE_ERROR = "inference_error", False
    TIMEOUT = "timeout", False
    WORKER_CRASHED = "worker_crashed", False
    INTERNAL_ERROR = "internal_error", False


def error_type(value: str) -> ErrorType:
    """``value`` as an :class:`ErrorType`; a ValueError for a type this vocabulary lacks."""
    return ErrorType(value)


def client_fault(value: str) -> bool:
    """Whether an output line's error type blames the request (unknown types, say from an
    output an older version wrote, do not)."""
    known = ErrorType._value2member_map_.get(value)
    return isinstance(known, ErrorType) and known.client_fault


def anonymous(value: str) -> bool:
    """Whether an output line with this error type stands for a line with no id of its own."""
    known = ErrorType._value2member_map_.get(value)
    return isinstance(known, ErrorType) and known.anonymous


def found_by_line(value: str) -> bool:
    """Whether a resume finds an output line with this error type by its line number."""
    known = ErrorType._value2member_map_.get(value)
    return isinstance(known, ErrorType) and known.by_line
