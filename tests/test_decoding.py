"""The optimised engine decodes exactly like plain step-by-step grammar-constrained greedy decoding.

The reference is llama-cpp-python's own ``generate(..., temp=0)``: one ``llama_decode`` per
token, with a logits processor that applies llguidance's full token mask for the same answer
grammar at every step. The engine checks only the sampled token, fast-forwards forced tokens
in one batch and reuses cached prompt states; the tokens must still be the same. Not timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.conftest import PROJECT_ROOT, SAMPLE_QUERIES
from workers.engine import DecodingSettings, LlamaEngine
from workers.grammar import AnswerGrammar
from workers.prompts import NeedlePromptFormat
from workers.toolset import ToolSet, answer_schema, normalize_tools

SETTINGS = DecodingSettings()
SHIPPED_MODEL = PROJECT_ROOT / "workers" / "models" / "needle-tools.gguf"


def _requests() -> list[tuple[ToolSet, str, dict[str, Any]]]:
    """(tools, query, answer schema) for every sample query."""
    prepared = []
    for line in SAMPLE_QUERIES.read_bytes().splitlines():
        document = orjson.loads(line)
        tools = normalize_tools(document["tools"])
        schema = answer_schema(tools, SETTINGS.max_calls, SETTINGS.max_string_length)
        prepared.append((ToolSet(tools), document["query"], schema))
    return prepared


@pytest.fixture(scope="module")
def requests() -> list[tuple[ToolSet, str, dict[str, Any]]]:
    return _requests()


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


class FullMask:
    """A llama-cpp-python logits processor: llguidance's full mask at every step."""

    def __init__(self, grammar: AnswerGrammar, prompt_length: int, n_vocab: int) -> None:
        self.matcher = grammar.fresh()
        self.prompt_length = prompt_length
        self.consumed = 0
        self.n_vocab = n_vocab

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for token in input_ids[self.prompt_length + self.consumed :]:
            assert self.matcher.consume_token(int(token)), self.matcher.get_error()
            self.consumed += 1
        mask = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(mask, bitorder="little")[: self.n_vocab].astype(bool)
        return np.where(allowed, scores, -np.inf)


def _reference_tokens(llm: Any, engine: LlamaEngine, prompt: list[int], grammar: Any) -> list[int]:
    import llama_cpp
    from llama_cpp import LogitsProcessorList

    llm.reset()  # nothing reused: the whole prompt is decoded afresh
    mask = FullMask(grammar, len(prompt), llama_cpp.llama_vocab_n_tokens(llm._model.vocab))
    tokens: list[int] = []
    for token in llm.generate(
        prompt,
        temp=0.0,
        top_k=0,
        repeat_penalty=1.0,
        logits_processor=LogitsProcessorList([mask]),
        reset=True,
    ):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        tokens.append(token)
        if len(tokens) >= SETTINGS.max_tokens:
            break
    return tokens


def _engine_run(engine: LlamaEngine, requests: list, order: Any) -> dict[int, Any]:
    grammars: dict[bytes, Any] = {}
    completions = {}
    for index in order:
        toolset, query, schema = requests[index]
        key = orjson.dumps(schema)
        grammar = grammars.get(key) or grammars.setdefault(key, engine.compile_grammar(schema))
        completions[index] = engine.complete(_prompt(engine, toolset, query), grammar, SETTINGS)
    return completions


def test_same_tokens_as_generate_with_the_full_mask_in_any_order(
    engine, reference_llm, requests
) -> None:
    """Token ids equal llama-cpp-python's step-by-step loop under the full mask, whatever
    the previous request left in the KV cache (the order changes what prefix is reused)."""
    grammars = {}
    expected: dict[int, list[int]] = {}
    for index, (toolset, query, schema) in enumerate(requests):
        key = orjson.dumps(schema)
        grammar = grammars.get(key) or grammars.setdefault(key, engine.compile_grammar(schema))
        expected[index] = _reference_tokens(
            reference_llm, engine, _prompt(engine, toolset, query), grammar
        )
    order = list(reversed(range(len(requests))))
    order = order[::2] + order[1::2]  # shuffled deterministically
    ours = _engine_run(engine, requests, order)
    for index in range(len(requests)):
        assert ours[index].token_ids == expected[index], f"request {index}"
        toolset = requests[index][0]
        if ours[index].finish_reason == "stop":
            toolset.validate_calls(orjson.loads(ours[index].text))
    assert engine.cached_prefix_length(_prompt(engine, *requests[order[-1]][:2])) > 0
    assert sum(c.forced_tokens for c in ours.values()) > 0  # fast-forward was on
    answered = sum(orjson.loads(c.text) != [] for c in ours.values() if c.finish_reason == "stop")
    assert answered > len(requests) // 2  # the comparison covered real calls


@pytest.mark.parametrize("model", ["test", "shipped"])
def test_fast_forward_gives_identical_outputs(model, test_model, requests) -> None:
    """Forced tokens decoded in one batch: same tokens and text as one token per decode,
    in fewer llama_decode calls."""
    path = test_model if model == "test" else SHIPPED_MODEL
    runs = {}
    for fast_forward in (True, False):
        engine = LlamaEngine(path, n_threads=1, fast_forward=fast_forward)
        runs[fast_forward] = _engine_run(engine, requests, range(len(requests)))
    for index in range(len(requests)):
        fast, slow = runs[True][index], runs[False][index]
        assert (fast.token_ids, fast.text, fast.finish_reason) == (
            slow.token_ids,
            slow.text,
            slow.finish_reason,
        ), f"request {index}"
    forced = sum(c.forced_tokens for c in runs[True].values())
    tokens = sum(c.completion_tokens for c in runs[True].values())
    assert sum(c.forced_tokens for c in runs[False].values()) == 0
    assert forced / tokens > 0.3  # keys and punctuation are forced in this JSON
    calls = {ff: sum(c.decode_calls for c in run.values()) for ff, run in runs.items()}
    assert calls[True] < calls[False] * 0.7


def test_cache_history_does_not_change_tokens(engine, reference_llm, requests) -> None:
    """Repeated prompts, alternating tool sets and saved-state loads all give the tokens of
    decoding each prompt from scratch."""
    picked = [0, 5, 1, 10, 2, 17, 3, 5, 10, 4, 17, 0]  # tools change and come back
    grammars: dict[bytes, Any] = {}
    for index in picked + picked[:3]:
        toolset, query, schema = requests[index]
        prompt = _prompt(engine, toolset, query)
        key = orjson.dumps(schema)
        grammar = grammars.get(key) or grammars.setdefault(key, engine.compile_grammar(schema))
        expected = _reference_tokens(reference_llm, engine, prompt, grammar)
        for _ in range(2):  # the second time the whole prompt is in the cache
            assert engine.complete(prompt, grammar, SETTINGS).token_ids == expected, index
    assert engine.saved_prefix_hits > 0


def test_saved_states_stay_within_their_budget_while_copied(test_model, requests) -> None:
    """Room is made before a prompt's state is copied out, so the saved states and the copy
    together never pass the budget; the oldest state goes, the newest are loaded back."""

    def run(engine: LlamaEngine, index: int) -> None:
        toolset, query, schema = requests[index]
        grammar = engine.compile_grammar(schema)
        engine.complete(_prompt(engine, toolset, query), grammar, SETTINGS)

    probe = LlamaEngine(test_model, n_threads=1)
    sizes = []
    for index in (17, 45, 54):  # three tool lists of about 190 tokens
        run(probe, index)
        sizes.append(probe.saved_prompt_bytes - sum(sizes))
    assert max(sizes) < 1.2 * min(sizes)
    budget = sum(sizes) - min(sizes) // 2  # room for two states, not three
    engine = LlamaEngine(test_model, n_threads=1, saved_bytes=budget)
    lib = engine._lib
    held_at_copy = []

    class Observed:
        """llama.cpp's functions as they are, noting what is saved when a state is copied."""

        def __getattr__(self, name: str) -> Any:
            return getattr(lib, name)

        def llama_state_seq_get_data(self, *args: Any) -> int:
            held_at_copy.append(engine.saved_prompt_bytes + args[2])
            return lib.llama_state_seq_get_data(*args)

    engine._lib = Observed()
    for index in (17, 45, 54, 17):  # request 17's state is dropped for request 54's
        run(engine, index)
    assert len(held_at_copy) == 4
    assert max(held_at_copy) <= budget < sum(sizes)
    assert engine.saved_prefix_hits == 0
    run(engine, 54)
    assert engine.saved_prefix_hits == 1
    assert len(held_at_copy) == 4


def test_prefill_leaves_the_prompt_in_the_cache(test_model, requests) -> None:
    """The benchmarks' prompt rate decodes into an emptied cache, which then holds the
    prompt: a request with that prompt decodes only the last two tokens again."""
    engine = LlamaEngine(test_model, n_threads=1, saved_prompts=0)
    toolset, query, _ = requests[0]
    prompt = _prompt(engine, toolset, query)
    assert engine.prefill_seconds(prompt) > 0
    assert engine.cached_prefix_length(prompt) == len(prompt) - 2
    other = _prompt(engine, *requests[-1][:2])
    engine.prefill_seconds(other)
    shared = next(i for i, (a, b) in enumerate(zip(prompt, other, strict=False)) if a != b)
    assert engine.cached_prefix_length(prompt) == shared
