"""``ChatTemplatePromptFormat``: the model's own chat template, with the tools where the
template can take them, and a clear error where there is no template."""

from __future__ import annotations

import orjson
import pytest
from testmodel import CHAT_TEMPLATE

from pipeline.models import resolve_model
from workers.prompts import (
    ANSWER_INSTRUCTION,
    ChatTemplatePromptFormat,
    PromptFormatError,
    make_prompt_format,
)

TOOLS = [
    {
        "name": "set_timer",
        "description": "Start a timer.",
        "parameters": {"type": "object", "properties": {"seconds": {"type": "integer"}}},
    }
]
PLAIN = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def test_template_without_tools_gets_them_in_the_system_message() -> None:
    text = ChatTemplatePromptFormat(PLAIN).render(TOOLS, "a 5 minute timer")
    tools_json = orjson.dumps(TOOLS).decode()
    assert text == (
        f"<system>{ANSWER_INSTRUCTION}\nTools: {tools_json}</system>"
        "<user>a 5 minute timer</user><assistant>"
    )


def test_template_that_reads_tools_gets_them_in_openai_shape() -> None:
    template = (
        "{% for t in tools %}[{{ t['type'] }}:{{ t['function']['name'] }}]{% endfor %}"
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    )
    text = ChatTemplatePromptFormat(template).render(TOOLS, "go")
    assert text == f"[function:set_timer]<system>{ANSWER_INSTRUCTION}<user>go"
    assert "Tools:" not in text  # not written twice


def test_the_test_models_template_renders_the_query_last() -> None:
    text = ChatTemplatePromptFormat(CHAT_TEMPLATE).render(TOOLS, "a 5 minute timer")
    assert "set_timer" in text
    assert text.index("a 5 minute timer") > text.index("set_timer")


def test_smollm2_template_without_tools_keeps_the_tools_and_generation_prompt() -> None:
    from gguf import GGUFReader

    field = GGUFReader(resolve_model("smollm2").path).fields["tokenizer.chat_template"]
    template = bytes(field.parts[field.data[0]]).decode()
    assert "tools" not in template
    text = make_prompt_format("chat", {"tokenizer.chat_template": template}).render(TOOLS, "hi")
    assert text.startswith(f"<|im_start|>system\n{ANSWER_INSTRUCTION}\nTools: [")
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_missing_template_is_a_clear_error() -> None:
    with pytest.raises(PromptFormatError, match=r"needs a chat template.*tokenizer\.chat_template"):
        make_prompt_format("chat", {"general.name": "no-template"})
    with pytest.raises(PromptFormatError, match="unknown prompt format"):
        make_prompt_format("xml", {})


def test_template_errors_are_prompt_format_errors() -> None:
    broken = ChatTemplatePromptFormat("{{ raise_exception('only user turns') }}")
    with pytest.raises(PromptFormatError, match="chat template error: only user turns"):
        broken.render(TOOLS, "hi")
