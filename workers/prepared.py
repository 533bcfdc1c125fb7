"""Each tool list's answer grammar and validators, built once and kept (an LRU cache).

A tool list the grammar cannot take is remembered too, as its error, which names the tool
and the keyword (found by compiling each tool alone).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.engine import DecodingSettings
from workers.errors import ErrorType
from workers.grammar import GrammarError, describe
from workers.toolset import ToolChoice, ToolSet, arguments_schema

TOOLSET_CACHE_SIZE = 32


class RequestFailed(Exception):
    """A request-level failure with an output error type; ``inference``: the model call it
    came during or after (its tokens and time still count), if there was one."""

    def __init__(self, error_type: str, message: str, inference: Any = None) -> None:
        super().__init__(message)
        self.error_type = ErrorType(error_type)
        self.message = message
        self.inference = inference


@dataclass
class PreparedTools:
    toolset: ToolSet
    grammar: Any
    error: RequestFailed | None = None  # the grammar could not be compiled


class ToolsetCache:
    """Prepared tool lists by key (the tools' key and the tool choice's)."""

    def __init__(
        self, compile_grammar: Callable[[dict[str, Any]], Any], decoding: DecodingSettings
    ) -> None:
        self.compile_grammar = compile_grammar
        self.decoding = decoding
        self._entries: OrderedDict[str, PreparedTools] = OrderedDict()

    def get(
        self,
        key: str,
        tools: list[dict[str, Any]],
        choice: ToolChoice = ToolChoice(),  # noqa: B008 (frozen)
    ) -> PreparedTools:
        """Grammar and validators are built once per tool list and tool choice and kept in
        an LRU cache (a tool list the grammar cannot take is remembered too, as its error)."""
        key += choice.key
        prepared = self._entries.get(key)
        if prepared is None:
            prepared = self._compile_tools(key, tools, choice)
            self._entries[key] = prepared
            if len(self._entries) > TOOLSET_CACHE_SIZE:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if prepared.error is not None:  # a fresh exception each time (no growing traceback)
            raise RequestFailed(prepared.error.error_type, prepared.error.message)
        return prepared

    def _compile_tools(
        self, key: str, tools: list[dict[str, Any]], choice: ToolChoice
    ) -> PreparedTools:
        decoding = self.decoding
        toolset = ToolSet(tools, key)
        schema = toolset.answer_schema(decoding.max_calls, decoding.max_string_length, choice)
        try:
            grammar = self.compile_grammar(schema)
        except GrammarError as exc:
            message = self._grammar_failure(toolset.model_tools, exc)
            return PreparedTools(toolset, None, RequestFailed("invalid_tool_schema", message))
        return PreparedTools(toolset, grammar)

    def _grammar_failure(self, tools: list[dict[str, Any]], error: GrammarError) -> str:
        """Which tool the grammar cannot take, and the keyword, from compiling each alone."""
        for index, tool in enumerate(tools):
            alone = arguments_schema(tool["parameters"], self.decoding.max_string_length)
            try:
                self.compile_grammar(alone)
            except GrammarError as exc:
                return f"tools[{index}] ({tool['name']}).parameters: {describe(exc)}"
        return f"the tools' answer grammar: {describe(error)}"
