"""The optimised engine decodes exactly like plain grammar-constrained greedy decoding.

The reference is llama-cpp-python's own API: ``create_completion(...,
grammar=LlamaGrammar.from_string(gbnf), temperature=0)`` for the calls, and ``generate``
with the same grammar (the loop ``create_completion`` runs) for the token ids. Not timed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import SAMPLE_QUERIES
from workers.engine import DecodingSettings, LlamaEngine
from workers.prompts import NeedlePromptFormat
from workers.toolset import ToolSet, answer_schema, normalize_tools
from workers.worker import parse_answer

SETTINGS = DecodingSettings()


@pytest.fixture(scope="module")
def requests() -> list[tuple[ToolSet, str, str]]:
    """(tools, query, GBNF) for every sample query."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammars: dict[bytes, tuple[ToolSet, str]] = {}
    prepared = []
    for line in SAMPLE_QUERIES.read_bytes().splitlines():
        document = orjson.loads(line)
        key = orjson.dumps(document["tools"])
        if key not in grammars:
            tools = normalize_tools(document["tools"])
            schema = answer_schema(tools, SETTINGS.max_calls, SETTINGS.max_string_length)
            grammars[key] = (ToolSet(tools), json_schema_to_gbnf(json.dumps(schema)))
        toolset, gbnf = grammars[key]
        prepared.append((toolset, document["query"], gbnf))
    return prepared


@pytest.fixture(scope="module")
def engine(test_model: Path) -> LlamaEngine:
    return LlamaEngine(test_model, n_threads=1)


@pytest.fixture(scope="module")
def reference_llm(test_model: Path) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(test_model),
        n_ctx=0,
        n_threads=1,
        n_threads_batch=1,
        n_batch=512,
        n_ubatch=512,
        verbose=False,
    )


def _prompt(engine: LlamaEngine, toolset: ToolSet, query: str) -> list[int]:
    return engine.tokenize(NeedlePromptFormat().render(toolset.tools, query))


def _outcome(toolset: ToolSet, text: str, finish_reason: str) -> tuple[str, Any]:
    """What the worker makes of an answer: ("ok", calls) or ("error", kind)."""
    if finish_reason != "stop":
        return ("error", "truncated")
    try:
        calls = toolset.validate_calls(parse_answer(text))
    except ValueError:
        return ("error", "invalid_output")
    except Exception as exc:  # CallValidationError
        return ("error", type(exc).__name__)
    # create_completion drops the bytes of invalid UTF-8 sequences where a plain decode
    # writes U+FFFD; a random-weight model emits such bytes, so compare without them.
    return ("ok", orjson.loads(orjson.dumps(calls).replace("\ufffd".encode(), b"")))


def _engine_run(engine, requests, order) -> dict[int, Any]:
    grammars: dict[str, Any] = {}
    completions = {}
    for index in order:
        toolset, query, gbnf = requests[index]
        grammar = grammars.get(gbnf) or grammars.setdefault(gbnf, engine.compile_grammar(gbnf))
        completions[index] = engine.complete(_prompt(engine, toolset, query), grammar, SETTINGS)
    return completions


def test_same_calls_as_create_completion(engine, reference_llm, requests) -> None:
    from llama_cpp import LlamaGrammar

    ours = _engine_run(engine, requests, range(len(requests)))
    answered = 0
    for index, (toolset, query, gbnf) in enumerate(requests):
        reference = reference_llm.create_completion(
            _prompt(engine, toolset, query),
            grammar=LlamaGrammar.from_string(gbnf, verbose=False),
            temperature=0,
            max_tokens=SETTINGS.max_tokens,
        )
        choice = reference["choices"][0]
        expected = _outcome(toolset, choice["text"], choice["finish_reason"])
        got = _outcome(toolset, ours[index].text, ours[index].finish_reason)
        assert got == expected, f"request {index} ({query!r})"
        assert ours[index].completion_tokens == reference["usage"]["completion_tokens"]
        answered += expected[0] == "ok"
    assert answered > len(requests) // 2  # the comparison covered real calls


def test_same_tokens_as_generate_in_any_order(engine, reference_llm, requests) -> None:
    """Token ids equal llama-cpp-python's grammar + greedy sampler chain, whatever the
    previous request left in the KV cache (the order changes what prefix is reused)."""
    import llama_cpp
    from llama_cpp import LlamaGrammar

    expected: dict[int, list[int]] = {}
    for index, (toolset, query, gbnf) in enumerate(requests):
        tokens: list[int] = []
        for token in reference_llm.generate(
            _prompt(engine, toolset, query),
            temp=0.0,
            top_k=0,
            repeat_penalty=1.0,
            grammar=LlamaGrammar.from_string(gbnf, verbose=False),
            reset=True,
        ):
            if llama_cpp.llama_vocab_is_eog(reference_llm._model.vocab, token):
                break
            tokens.append(token)
            if len(tokens) >= SETTINGS.max_tokens:
                break
        expected[index] = tokens
    order = list(reversed(range(len(requests))))
    order = order[::2] + order[1::2]  # shuffled deterministically
    ours = _engine_run(engine, requests, order)
    for index in range(len(requests)):
        assert ours[index].token_ids == expected[index], f"request {index}"
    assert engine.cached_prefix_length(_prompt(engine, *requests[order[-1]][:2])) > 0


def test_llama_grammar_objects_are_accepted(engine, requests) -> None:
    """The engine also takes a plain ``LlamaGrammar`` (and keeps its parsed form)."""
    from llama_cpp import LlamaGrammar

    toolset, query, gbnf = requests[0]
    prompt = _prompt(engine, toolset, query)
    first = engine.complete(prompt, LlamaGrammar.from_string(gbnf, verbose=False), SETTINGS)
    second = engine.complete(prompt, engine.compile_grammar(gbnf), SETTINGS)
    assert first.token_ids == second.token_ids
    assert first.text == second.text


def _generate_from_scratch(llm: Any, prompt: list[int], gbnf: str) -> list[int]:
    import llama_cpp
    from llama_cpp import LlamaGrammar

    llm.reset()  # nothing reused: the whole prompt is decoded afresh
    tokens: list[int] = []
    for token in llm.generate(
        prompt,
        temp=0.0,
        top_k=0,
        repeat_penalty=1.0,
        grammar=LlamaGrammar.from_string(gbnf, verbose=False),
        reset=True,
    ):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or len(tokens) >= 256:
            break
        tokens.append(token)
    return tokens


def test_cache_history_does_not_change_tokens(engine, reference_llm, requests) -> None:
    """Repeated prompts, alternating tool sets and saved-state loads all give the tokens of
    decoding each prompt from scratch."""
    picked = [0, 5, 1, 10, 2, 17, 3, 5, 10, 4, 17, 0]  # tools change and come back
    grammars: dict[str, Any] = {}
    for index in picked + picked[:3]:
        toolset, query, gbnf = requests[index]
        prompt = _prompt(engine, toolset, query)
        expected = _generate_from_scratch(reference_llm, prompt, gbnf)
        grammar = grammars.get(gbnf) or grammars.setdefault(gbnf, engine.compile_grammar(gbnf))
        for _ in range(2):  # the second time the whole prompt is in the cache
            assert engine.complete(prompt, grammar, SETTINGS).token_ids == expected, index
    assert engine.saved_prefix_hits > 0
