"""The copy bias (``--copy-bias``): where in the answer it applies, and what it does to a
real model's argument strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workers.copying import CopyVocabulary, _JsonPosition
from workers.engine import DecodingSettings, LlamaEngine
from workers.prompts import NeedlePromptFormat
from workers.toolset import answer_schema, normalize_tools

TOOLS = normalize_tools(
    [
        {
            "name": "create_note",
            "parameters": {
                "type": "object",
                "properties": {
                    # (the random-weight test model would end its strings at once)
                    "title": {"type": "string", "minLength": 3},
                    "tags": {"type": "array", "items": {"type": "string", "minLength": 3}},
                },
                "required": ["title", "tags"],
            },
        }
    ]
)
QUERIES = [
    "make a note titled Gate code: the gate code is 4471 then the pound key",
    "note that the ferns on the balcony need water every Tuesday",
    "save a note called Party ideas with taco bar, karaoke and fairy lights",
]


def test_json_position_sees_argument_strings_only() -> None:
    position = _JsonPosition()
    seen: list[bytes | None] = []
    for piece in [b'[{"', b"na", b'me":"', b"note", b'","arguments":{"', b"ti", b'tle":"']:
        position.feed(piece)
        seen.append(position.argument_value())
    assert seen == [None, None, None, None, None, None, b""]
    position.feed(b"Gate")
    assert position.argument_value() == b"Gate"
    position.feed(b' code","tags":["a')
    assert position.argument_value() == b"a"
    position.feed(b'","b')
    assert position.argument_value() == b"b"
    position.feed(b'"],"where":{"room":"hall')
    assert position.argument_value() == b"hall"
    position.feed(b'\\"')  # an escape: not compared with the request
    assert position.argument_value() is None
    position.feed(b'"}}')
    assert position.argument_value() is None


def test_request_tokens_are_the_pieces_the_request_holds() -> None:
    pieces = [b"[", b"Gate", b" code", b"gate", b"xyz", b'"', b"4471"]
    bias = CopyVocabulary(pieces).for_request("The GATE code is 4471", 5.0)
    assert sorted(int(t) for t in bias._tokens) == [1, 2, 3, 6]


def _answers(engine: LlamaEngine, copy_bias: float) -> list[list[dict[str, Any]]]:
    grammar = engine.compile_grammar(answer_schema(TOOLS, 1, 48))
    settings = DecodingSettings(none_threshold=1.0, copy_bias=copy_bias)
    answers = []
    for query in QUERIES:
        tokens = engine.tokenize(NeedlePromptFormat().render(TOOLS, query))
        completion = engine.complete(tokens, grammar, settings, query)
        assert completion.finish_reason == "stop", completion.text
        answers.append(json.loads(completion.text))
    return answers


def _strings(answers: list[list[dict[str, Any]]]) -> list[str]:
    found = []
    for calls in answers:
        for call in calls:
            arguments = call["arguments"]
            found += [arguments["title"], *arguments["tags"]]
    return found


def test_a_large_bias_makes_every_argument_string_a_span_of_the_request(
    test_model: Path,
) -> None:
    """The random-weight test model writes strings that are not in the request; with the
    bias far above its logits, every string it writes is a span of the request (case
    folded), and with the bias off, not."""
    engine = LlamaEngine(test_model, n_ctx=1024, n_threads=1)
    requests = " | ".join(QUERIES).lower()
    unbiased = _strings(_answers(engine, 0.0))
    assert unbiased and any(value.lower() not in requests for value in unbiased)
    biased = _answers(engine, 1000.0)
    for query, calls in zip(QUERIES, biased, strict=True):
        assert calls, query
        for value in _strings([calls]):
            assert _copied(value.lower(), query.lower()), (value, query)
    assert any(_strings(biased))


def _copied(value: str, request: str) -> bool:
    """A span of the request, or one that ran into its end before ``minLength`` let the
    string close (the grammar then allows only what the request does not hold)."""
    if value in request:
        return True
    prefixes = (value[:n] for n in range(1, len(value)) if value[:n] in request)
    prefix = max(prefixes, key=len, default="")
    return bool(prefix) and request.endswith(prefix) and len(prefix) < 3


def test_the_bias_leaves_confidence_the_models_own(test_model: Path) -> None:
    """The log-probabilities behind confidence are the model's, not the biased logits':
    a token the bias chose over the model's favourite scores below it."""
    engine = LlamaEngine(test_model, n_ctx=1024, n_threads=1)
    grammar = engine.compile_grammar(answer_schema(TOOLS, 1, 48))
    query = QUERIES[0]
    tokens = engine.tokenize(NeedlePromptFormat().render(TOOLS, query))
    plain = engine.complete(tokens, grammar, DecodingSettings(none_threshold=1.0))
    biased = engine.complete(
        tokens, grammar, DecodingSettings(none_threshold=1.0, copy_bias=1000.0), query
    )
    assert biased.text != plain.text
    # Each chosen token's log-probability is a log-probability (<= 0), never the biased
    # logit's thousand-odd.
    assert all(lp <= 0.0 for _, lp in biased.logprobs)
    assert sum(lp for _, lp in biased.logprobs) < sum(lp for _, lp in plain.logprobs)


@pytest.mark.parametrize("bias", [0.0, 2.0])
def test_the_bias_needs_the_request(test_model: Path, bias: float) -> None:
    """Without the request's text there is nothing to copy: the answer is the plain one."""
    engine = LlamaEngine(test_model, n_ctx=1024, n_threads=1)
    grammar = engine.compile_grammar(answer_schema(TOOLS, 1, 48))
    tokens = engine.tokenize(NeedlePromptFormat().render(TOOLS, QUERIES[1]))
    plain = engine.complete(tokens, grammar, DecodingSettings(none_threshold=1.0))
    without = engine.complete(
        tokens, grammar, DecodingSettings(none_threshold=1.0, copy_bias=bias), None
    )
    assert without.token_ids == plain.token_ids
