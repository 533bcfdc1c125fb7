"""The generated test model: reproducible, loadable by llama.cpp, quick to finish an answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from testmodel import (
    BOS_TEXT,
    CHAT_TEMPLATE,
    DEFAULT_MODEL_PATH,
    EOS_TEXT,
    build_tokenizer,
    main,
    write_test_model,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOOLS: list[dict[str, Any]] = json.loads((PROJECT_ROOT / "inputs" / "tools.json").read_text())

SAMPLE_QUERIES = [
    "Set a timer for 5 minutes",
    "Turn off the kitchen lights and set an alarm for 6:30",
    "What's the weather like in London today?",
    "Add milk, eggs and bread to the shopping list",
    "Tell me a joke",
    "Navigate to the nearest gas station",
]

ROUND_TRIP_TEXTS = [
    "Set a timer for 5 minutes",
    "",
    " leading and  double  spaces, trailing tab\t",
    "lines\nand\r\nmore lines\n\n",
    "São Paulo, Zürich, crème fraîche, naïve café",
    "日本語のテキスト、中文、한국어",
    "emoji 🎉👍🏽 and symbols ∑ ≠ → °C",
    '{"name":"set_timer","arguments":{"duration_seconds":300}}',
    "<tools>[]</tools><query>x</query><|user|>",
]


def test_committed_model_is_regenerated_byte_identical(tmp_path: Path) -> None:
    regenerated = write_test_model(tmp_path / "needle-test.gguf", seed=0)
    assert regenerated.read_bytes() == DEFAULT_MODEL_PATH.read_bytes()
    assert DEFAULT_MODEL_PATH.stat().st_size < 2_000_000


def test_cli_writes_the_same_file_and_seed_changes_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "a.gguf")]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 0
    assert (tmp_path / "a.gguf").read_bytes() == DEFAULT_MODEL_PATH.read_bytes()
    assert main([str(tmp_path / "b.gguf"), "--seed", "1"]) == 0
    other = (tmp_path / "b.gguf").read_bytes()
    assert len(other) == DEFAULT_MODEL_PATH.stat().st_size
    assert other != DEFAULT_MODEL_PATH.read_bytes()


def test_tokenizer_vocabulary_is_well_formed() -> None:
    tokens, types, merges = build_tokenizer()
    assert len(set(tokens)) == len(tokens), "llama.cpp aborts on duplicate token strings"
    assert 512 <= len(tokens) <= 1024
    assert tokens[-2:] == [BOS_TEXT, EOS_TEXT]
    assert types[-2:] == [3, 3]
    assert set(types[:-2]) == {1}
    known = set(tokens)
    for merge in merges:
        left, right = merge.split(" ")
        assert left in known and right in known and left + right in known


@pytest.fixture(scope="module")
def llm() -> Any:
    llama_cpp = pytest.importorskip("llama_cpp")
    return llama_cpp.Llama(model_path=str(DEFAULT_MODEL_PATH), n_ctx=4096, verbose=False)


def test_metadata(llm: Any) -> None:
    meta = llm.metadata
    assert meta["general.architecture"] == "llama"
    assert meta["general.name"] == "needle-test"
    assert meta["llama.context_length"] == "4096"
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.chat_template"] == CHAT_TEMPLATE
    assert llm.n_vocab() == len(build_tokenizer()[0])
    assert llm.token_eos() == llm.n_vocab() - 1
    assert llm.token_bos() == llm.n_vocab() - 2


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_tokenize_detokenize_round_trip(llm: Any, text: str) -> None:
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False)
    assert llm.detokenize(ids).decode("utf-8") == text
    with_bos = llm.tokenize(text.encode("utf-8"))
    assert with_bos[0] == llm.token_bos()
    assert with_bos[1:] == ids


def test_chat_template_renders_tools_and_generation_prompt() -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = ImmutableSandboxedEnvironment().from_string(CHAT_TEMPLATE)
    tools = [{"type": "function", "function": TOOLS[0]}]
    text = template.render(
        messages=[
            {"role": "system", "content": "Answer with JSON."},
            {"role": "user", "content": "Set a timer for 5 minutes"},
        ],
        tools=tools,
        add_generation_prompt=True,
    )
    assert text.startswith("<|system|>Answer with JSON.\nTools: [")
    assert '"set_timer"' in text
    assert text.endswith("\n<|user|>Set a timer for 5 minutes\n<|assistant|>")
    bare = template.render(
        messages=[{"role": "user", "content": "hi"}], add_generation_prompt=False
    )
    assert bare == "<|user|>hi\n"


def test_grammar_constrained_greedy_answers_finish_and_validate() -> None:
    """Through the worker's own engine and llguidance answer grammar, as the pipeline runs."""
    from workers.engine import DecodingSettings, LlamaEngine
    from workers.prompts import NeedlePromptFormat
    from workers.toolset import answer_schema, normalize_tools

    engine = LlamaEngine(DEFAULT_MODEL_PATH, n_ctx=4096, n_threads=1)
    settings = DecodingSettings()
    tools = normalize_tools(TOOLS)
    grammar = engine.compile_grammar(answer_schema(tools, 4, 64))
    parameters = {tool["name"]: tool["parameters"] for tool in TOOLS}
    answers = []
    for query in SAMPLE_QUERIES:
        tokens = engine.tokenize(NeedlePromptFormat().render(tools, query))
        out = engine.complete(tokens, grammar, settings)
        assert out.finish_reason == "stop", (query, out.text)
        assert out.completion_tokens < 128, (query, out.text)
        calls = json.loads(out.text)
        assert isinstance(calls, list) and len(calls) <= 4
        for call in calls:
            assert set(call) == {"name", "arguments"}
            jsonschema.validate(call["arguments"], parameters[call["name"]])
        answers.append(calls)
    assert any(answers), "the random model should call a tool for some of the sample queries"
