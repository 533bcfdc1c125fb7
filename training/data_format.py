"""Prompt and answer text of the synthetic data.  The prompt is the serving one: the
pipeline's worker normalises a request's tools with :func:`workers.toolset.normalize_tools`
and renders them with :class:`workers.prompts.NeedlePromptFormat`, and so does training.
The answer is compact JSON with the arguments in grammar order."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from workers.nullable import Nulls, drop_nulls, model_tool
from workers.prompts import NeedlePromptFormat
from workers.toolset import ToolSchemaError, normalize_tools

from .kinds import order_arguments

_PROMPT_FORMAT = NeedlePromptFormat()


@functools.lru_cache(maxsize=4096)
def _normalized_tool(tool_json: bytes) -> dict[str, Any]:
    return normalize_tools([orjson.loads(tool_json)])[0]


def _prompt_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``tools`` as the worker puts them in the prompt (:func:`workers.toolset.
    normalize_tools`: bare ``{name, description, parameters}``, defaults filled in, OpenAI
    ``{"type": "function", "function": ...}`` unwrapped), each distinct tool checked once
    (so the dicts are shared between calls: read them, do not change them)."""
    try:
        normalized = [_normalized_tool(orjson.dumps(tool)) for tool in tools]
    except (ToolSchemaError, TypeError):  # (orjson.JSONEncodeError is a TypeError)
        normalized = []
    if len(normalized) != len(tools) or len({t["name"] for t in normalized}) != len(tools):
        return normalize_tools(tools)  # the worker's own check, with its error message
    return normalized


@functools.lru_cache(maxsize=4096)
def _shown_tool(tool_json: bytes) -> tuple[dict[str, Any], Nulls]:
    return model_tool(orjson.loads(tool_json))


def _shown_tools(tools: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, Any], Nulls]]:
    """``tools`` as the worker shows them to the model (:func:`workers.nullable.
    model_tool`), each distinct tool worked out once (shared dicts: read them only)."""
    return [_shown_tool(orjson.dumps(tool)) for tool in _prompt_tools(tools)]


def format_prompt(tools: Sequence[Mapping[str, Any]], query: str) -> str:
    """``<tools>[...]</tools><query>...</query>``, byte for byte the prompt the pipeline's
    worker renders for these tools and query (nullable properties shown as optional ones:
    :mod:`workers.nullable`); the model continues with the answer."""
    return _PROMPT_FORMAT.render([tool for tool, _ in _shown_tools(tools)], query)


def _ordered_calls(answers: list[dict], tools: list[dict] | None, written: bool) -> list[dict]:
    """``answers`` with arguments in grammar order (that of the tools as the worker shows
    them to the model, OpenAI's wrapper taken off); ``written``: as the model writes them,
    a required nullable argument's ``null`` left out (the worker puts it back)."""
    shown = {tool["name"]: (tool, nulls) for tool, nulls in (_shown_tools(tools) if tools else [])}
    calls = []
    for a in answers:
        if a["name"] not in shown:
            calls.append({"name": a["name"], "arguments": order_arguments(a["arguments"], {})})
            continue
        tool, nulls = shown[a["name"]]
        arguments = drop_nulls(a["arguments"], nulls) if written else a["arguments"]
        calls.append(
            {"name": a["name"], "arguments": order_arguments(arguments, tool["parameters"])}
        )
    return calls


def format_answer(answers: list[dict], tools: list[dict] | None = None) -> str:
    """The answer the model learns to write: compact JSON, arguments in grammar order, no
    ``null`` the worker puts back (:func:`_ordered_calls`)."""
    calls = _ordered_calls(answers, tools, written=True)
    return json.dumps(calls, separators=(",", ":"), ensure_ascii=False)


def _canon_answers(ex: dict) -> dict:
    """A labelled example's answers in grammar order (its ``null`` values kept: a label is
    what the worker outputs)."""
    ex["answers"] = json.loads(json.dumps(_ordered_calls(ex["answers"], ex["tools"], False)))
    return ex
