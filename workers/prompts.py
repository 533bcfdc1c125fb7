"""Prompt formats: how a tool list and a query become the model's input text.

Tools always come before the query, so requests that share a tool list share a
token prefix that the engine can keep in its KV cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

ANSWER_INSTRUCTION = (
    "You call tools. Answer with a JSON list of calls, each "
    '{"name": <tool name>, "arguments": {...}}; answer [] when no tool fits the request.'
)


class PromptFormat(Protocol):
    """Renders the text the model sees; ``operation`` is the GenAI operation name."""

    name: str
    operation: str

    def render(
        self,
        tools: Sequence[Mapping[str, Any]],
        query: str,
        history: Sequence[Mapping[str, str]] = (),
    ) -> str: ...


def compact_tools_json(tools: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps([dict(tool) for tool in tools]).decode()


class NeedlePromptFormat:
    """Needle's layout: ``<tools>[...]</tools><query>...</query>``, answer is a JSON list."""

    name = "needle"
    operation = "text_completion"

    def render(
        self,
        tools: Sequence[Mapping[str, Any]],
        query: str,
        history: Sequence[Mapping[str, str]] = (),
    ) -> str:
        """(``history``, earlier messages, has no place in this layout and is not used.)"""
        return f"<tools>{compact_tools_json(tools)}</tools><query>{query}</query>"


class ChatTemplatePromptFormat:
    """Renders the model's own chat template (GGUF ``tokenizer.chat_template``) with the tools.

    Templates that take a ``tools`` variable get the tools in OpenAI shape; for those
    that do not, the tools are written into the system message.
    """

    name = "chat"
    operation = "chat"

    def __init__(self, template: str, bos_token: str = "", eos_token: str = "") -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise_template_error
        self._template = environment.from_string(template)
        self._template_reads_tools = "tools" in template
        self._bos_token = bos_token
        self._eos_token = eos_token

    def render(
        self,
        tools: Sequence[Mapping[str, Any]],
        query: str,
        history: Sequence[Mapping[str, str]] = (),
    ) -> str:
        """``history``: the messages before the query (``{"role", "content"}``, as in an
        OpenAI request); its system messages join the one system message, after ours."""
        system = ANSWER_INSTRUCTION
        if not self._template_reads_tools:
            system += f"\nTools: {compact_tools_json(tools)}"
        extra = [message["content"] for message in history if message["role"] == "system"]
        turns = [dict(message) for message in history if message["role"] != "system"]
        return self._template.render(
            messages=[
                {"role": "system", "content": "\n".join([system, *extra])},
                *turns,
                {"role": "user", "content": query},
            ],
            tools=[{"type": "function", "function": dict(tool)} for tool in tools],
            add_generation_prompt=True,
            bos_token=self._bos_token,
            eos_token=self._eos_token,
        )


class PromptFormatError(ValueError):
    """The chosen prompt format cannot be used with this model."""


def _raise_template_error(message: str) -> None:
    raise PromptFormatError(f"chat template error: {message}")


PROMPT_FORMATS = ("needle", "chat")


def make_prompt_format(name: str, metadata: Mapping[str, str]) -> PromptFormat:
    """Build a format by name; ``metadata`` is the GGUF key/value metadata of the model."""
    if name == "needle":
        return NeedlePromptFormat()
    if name == "chat":
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise PromptFormatError(
                "prompt format 'chat' needs a chat template in the model "
                "(GGUF key tokenizer.chat_template); this model has none"
            )
        return ChatTemplatePromptFormat(template)
    raise PromptFormatError(f"unknown prompt format {name!r} (choose from {PROMPT_FORMATS})")
