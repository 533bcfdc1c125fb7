"""``--tool-order-vote``: a call's tool name is chosen by two readings of the tool list.

The second reading is the same request with its tools listed last to first; where a tool
name begins, the engine decodes that prompt and the answer so far, then loads the answer's
own KV state back. On needle-tiny (real probabilities, seconds): the chosen token is the
allowed one with the highest sum of the two readings' logits, computed here apart from the
engine with llama-cpp-python; a second reading of the very same prompt changes nothing,
token for token (the detour leaves the answer's state as it was); through the CLI the
option answers every line and is part of the run's fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from conftest import PROJECT_ROOT

from pipeline.models import TINY_MODEL
from workers.engine import DecodingSettings, LlamaEngine
from workers.generation import AnswerShape
from workers.prompts import NeedlePromptFormat
from workers.toolset import answer_schema, normalize_tools

SETTINGS = DecodingSettings(tool_order_vote=True)
LABELLED = PROJECT_ROOT / "inputs" / "labelled.jsonl"
PROMPTS = NeedlePromptFormat()


def _shape_after(text: str) -> AnswerShape:
    shape = AnswerShape()
    shape.feed(text.encode())
    return shape


def test_answer_shape_finds_where_a_tool_name_begins() -> None:
    assert _shape_after('[{"name":"').at_tool_name
    assert _shape_after('[{"name":"a","arguments":{}},{"name":"').at_tool_name
    assert not _shape_after('[{"name":"set').at_tool_name  # a name under way
    assert not _shape_after("[").at_tool_name
    # an argument called "name", in an object or in a list of objects
    assert not _shape_after('[{"name":"a","arguments":{"name":"').at_tool_name
    assert not _shape_after('[{"name":"a","arguments":{"who":[{"name":"').at_tool_name
    # the same bytes inside a string value are text, not structure
    assert not _shape_after('[{"name":"a","arguments":{"t":"},{\\"name\\":\\"').at_tool_name
    assert not _shape_after('[{"name":"a","arguments":{"t":"x}},{"name":"').at_tool_name


@pytest.fixture(scope="module")
def engine() -> LlamaEngine:
    return LlamaEngine(TINY_MODEL, n_threads=1)


def _requests() -> list[tuple[str, list[dict[str, Any]]]]:
    """Labelled sample requests with at least two tools."""
    found = []
    for line in LABELLED.read_bytes().splitlines():
        document = orjson.loads(line)
        tools = normalize_tools(document["tools"])
        if len(tools) > 1:
            found.append((document["query"], tools))
    return found


def _prepared(engine: LlamaEngine, query: str, tools: list[dict[str, Any]]) -> tuple:
    """(grammar, prompt tokens, those of the prompt with the tools last to first)"""
    grammar = engine.compile_grammar(
        answer_schema(tools, SETTINGS.max_calls, SETTINGS.max_string_length)
    )
    return (
        grammar,
        engine.tokenize(PROMPTS.render(tools, query)),
        engine.tokenize(PROMPTS.render(tools[::-1], query)),
    )


def test_a_second_reading_of_the_same_prompt_changes_nothing(engine: LlamaEngine) -> None:
    """Both readings alike pick what one does, and the answer goes on from a KV state
    loaded back after the detour exactly as it would have without it."""
    compared = 0
    for query, tools in _requests()[:12]:
        grammar, tokens, _ = _prepared(engine, query, tools)
        alone = engine.complete(tokens, grammar, DecodingSettings())
        twice = engine.complete(tokens, grammar, SETTINGS, second_prompt=tokens)
        assert twice.token_ids == alone.token_ids, query
        assert twice.logprobs == alone.logprobs
        compared += alone.text.startswith('[{"name":')
    assert compared >= 6  # most of them are calls, so the detour ran


def _logits_after(llm: Any, tokens: list[int]) -> Any:
    import llama_cpp

    llm.reset()
    llm.eval(tokens)
    pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, (llm.n_vocab(),)).copy()


def test_the_tool_name_is_chosen_by_both_readings(engine: LlamaEngine) -> None:
    """The first token of the first call's name is the allowed token with the highest sum
    of the two prompts' logits after the answer so far (the reference decodes each prompt
    afresh in plain llama-cpp-python). needle-tiny reads its own tools in either order
    alike, so the second prompt here also asks another request's question: then on some
    requests the sum calls another tool than the first reading alone would."""
    from llama_cpp import Llama

    reference = Llama(str(TINY_MODEL), n_ctx=2048, n_threads=1, verbose=False)
    requests = _requests()
    changed = checked = 0
    others = requests[3:] + requests[:3]
    for (query, tools), (other_query, _) in zip(requests, others, strict=True):
        grammar, tokens, _ = _prepared(engine, query, tools)
        second_prompt = engine.tokenize(PROMPTS.render(tools[::-1], other_query))
        voted = engine.complete(tokens, grammar, SETTINGS, second_prompt=second_prompt)
        if not voted.text.startswith('[{"name":"'):
            continue
        pieces = engine.token_bytes(voted.token_ids)
        at = next(i for i in range(len(pieces)) if b"".join(pieces[:i]) == b'[{"name":"')
        prefix = voted.token_ids[:at]
        matcher = grammar.fresh()
        assert matcher.consume_tokens(prefix)
        allowed = np.array(
            [matcher.validate_tokens([token]) == 1 for token in range(engine._n_vocab)]
        )
        first = _logits_after(reference, tokens + prefix)
        second = _logits_after(reference, second_prompt + prefix)
        expected = int(np.where(allowed, first + second, -np.inf).argmax())
        assert voted.token_ids[at] == expected, query
        alone = engine.complete(tokens, grammar, DecodingSettings())
        changed += alone.token_ids[at] != expected
        checked += 1
    assert checked >= 10
    assert changed >= 1


def test_cli_votes_and_records_it(run_cli: Any, tmp_path: Path) -> None:
    labelled = [json.loads(line) for line in LABELLED.read_text().splitlines()][:20]
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"id": i, "query": row["query"], "tools": row["tools"]}) + "\n"
            for i, row in enumerate(labelled)
        )
    )
    run = run_cli(requests, "--model", str(TINY_MODEL), "--tool-order-vote", "--workers", "1")
    assert run.returncode == 0, run.stderr
    results = run.results()
    assert len(results) == 20
    assert all(r["status"] == "ok" for r in results)
    meta = json.loads(Path(f"{run.output}.meta.json").read_text())
    assert meta["fingerprint"]["tool_order_vote"] is True
    # resuming the same output without the option is another run's settings
    again = run_cli(requests, "--model", str(TINY_MODEL), "--workers", "1")
    assert again.returncode == 2
    assert "tool_order_vote" in again.stderr
