"""Tiny end-to-end training run: train a few steps, export GGUF, load it with llama.cpp.

Checks that llama.cpp's tokenizer gives the training tokenizer's ids, that llama.cpp's
logits match PyTorch's (rope / tensor layout), GGUF round trips, fine-tuning from a GGUF,
and that the pipeline runs the exported model. The ``pipeline train`` and ``pipeline eval``
commands are tests/test_training_commands.py.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

torch = pytest.importorskip("torch", reason="training needs torch (pip install '.[train]')")
pytest.importorskip("tokenizers", reason="training needs tokenizers (pip install '.[train]')")
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

from tinytrain import (  # noqa: E402
    assert_all_tensors_changed,
    model_state,
    open_llm,
    run_pipeline,
    train_tiny,
    write_rows,
)

from training import data as D  # noqa: E402
from training.encoding import encode_examples  # noqa: E402
from training.export import export_gguf, load_gguf  # noqa: E402
from training.train import TrainArgs, collate, make_packs, train  # noqa: E402

SAMPLE_TEXTS = [
    "héllo wörld — ünïcode 日本語 🙂 Zürich 21.5°C",
    "  multiple   spaces\n\nnew line\ttab  ",
    "it's we'll I'd you're they've 1234567 3.14159",
    "Crème fraîche, jalapeños & São Paulo!?",
    "",
    " leading space",
    "<|bos|> looks special but is plain text </tools>",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("tiny"))


def test_training_reports(tiny):
    r = tiny["result"]
    assert r["steps"] == 4
    assert np.isfinite(r["valid_loss"])
    assert tiny["gguf"].stat().st_size < 30e6


def test_llama_cpp_tokenizer_matches(tiny):
    _, tok = load_gguf(tiny["gguf"])
    llm = open_llm(tiny["gguf"], vocab_only=True)
    texts = list(SAMPLE_TEXTS)
    for e in tiny["examples"][:15]:
        texts.append(D.format_prompt(e["tools"], e["query"]))
        texts.append(D.format_answer(e["answers"], e["tools"]))
    for t in texts:
        got = llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)
        assert got == [tok.bos_id, *tok.encode(t)], t
        assert tok.decode(tok.encode(t)) == t


def test_llama_cpp_logits_match_pytorch(tiny):
    model, tok = load_gguf(tiny["gguf"])
    model.eval()
    e = tiny["examples"][0]
    ids = [tok.bos_id, *tok.encode(D.format_prompt(e["tools"], e["query"]))][:300]
    llm = open_llm(tiny["gguf"], logits_all=True)
    llm.eval(ids)
    lc = np.array(llm.scores[: len(ids)])
    with torch.no_grad():
        pt = model(torch.tensor([ids]))[0].numpy()
    assert np.abs(lc - pt).max() < 1e-3 * max(1.0, np.abs(pt).max())
    assert (lc.argmax(-1) == pt.argmax(-1)).mean() > 0.99


def test_quantised_exports_load(tiny, tmp_path):
    model, tok = load_gguf(tiny["gguf"])
    ids = torch.tensor([[tok.bos_id, *tok.encode("<tools>[]</tools><query>hi</query>")]])
    with torch.no_grad():
        ref = model(ids)
    for q in ("f16", "q8_0"):
        p = export_gguf(model, tok, tmp_path / f"m-{q}.gguf", qtype=q)
        m2, tok2 = load_gguf(p)
        assert tok2.tokens() == tok.tokens()
        with torch.no_grad():
            assert (m2(ids) - ref).abs().max() < 0.05
        scores = _llama_cpp_logits(p, ids[0].tolist(), tmp_path / f"scores-{q}.npy")
        assert np.abs(scores - ref[0].numpy()).max() < 0.1


LOGITS_SCRIPT = """
import json, sys
import numpy as np
from workers.llama_load import load_llama  # the project's loader (plain buffers on AMX CPUs)
path, ids, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
llm = load_llama(path, n_ctx=2048, n_threads=1, verbose=False, logits_all=True)
llm.eval(ids)
np.save(out, np.array(llm.scores[: len(ids)]))
"""


def _llama_cpp_logits(path: Path, ids: list[int], out: Path) -> np.ndarray:
    """llama.cpp's logits for ``ids``, computed in a child process so that a crash in
    llama.cpp fails this test instead of killing the test session."""
    p = subprocess.run(
        [sys.executable, "-c", LOGITS_SCRIPT, str(path), json.dumps(ids), str(out)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, f"llama.cpp failed on {path.name} (exit {p.returncode})"
    return np.load(out)


def test_packed_sequences_equal_separate(tiny):
    model, tok = load_gguf(tiny["gguf"])
    model.eval()
    exs = tiny["examples"]  # grouped: consecutive examples share their tool list
    items = encode_examples(exs, tok, 2048)
    packs = [p for p in make_packs(items, 2048, random.Random(0)) if len(p) > 1][:2]
    assert packs, "the generator should produce examples that share tool lists"
    ids, pos, mask, _tgt, _w, seg = collate(items, packs, tok.pad_id, 0.0)
    with torch.no_grad():
        packed = model(ids, pos, mask)
        for r, pack in enumerate(packs):
            for k, i in enumerate(pack, start=1):
                it = items[i]
                alone = model(torch.tensor([[*it.prefix, *it.branch]]))[0, len(it.prefix) :]
                assert (alone - packed[r][seg[r] == k]).abs().max() < 1e-4
                e = exs[i]
                assert [tok.bos_id, *tok.encode(D.format_prompt(e["tools"], e["query"]))] == [
                    *it.prefix,
                    *it.branch[: it.n_prompt],
                ]


@pytest.mark.parametrize("workers", [1, 2])
def test_encoding_in_chunks_shares_prefixes(tiny, workers):
    """Chunked encoding, in this process or in forked ones, gives the same items as one
    pass, and examples with one tool list share one prefix object (what keeps 250k examples
    in a few GB)."""
    _model, tok = load_gguf(tiny["gguf"])
    exs = tiny["examples"]
    whole = encode_examples(exs, tok, 2048)
    chunked = encode_examples(exs, tok, 2048, chunk=3, workers=workers)
    assert whole == chunked
    by_tools: dict[str, list] = {}
    for e, it in zip(exs, chunked, strict=True):
        by_tools.setdefault(json.dumps(e["tools"]), []).append(it.prefix)
    shared = [ps for ps in by_tools.values() if len(ps) > 1]
    assert shared
    assert all(all(p is ps[0] for p in ps) for ps in shared)


# Tools whose whole schema every answer grammar enforces (llama.cpp's schema converter, which
# ignores numeric bounds, as well as the pipeline's): enums, booleans, a bounded array of enums
# and a bounded string, so every finished answer must validate. The longest answer the grammar
# allows is 4 calls of under 120 bytes each (a string character is at most 6 bytes, as
# \uXXXX), and every token the grammar accepts is at least one byte: an answer cannot be
# cut off by GRAMMAR_MAX_TOKENS.
GRAMMAR_TOOLS = [
    {
        "name": "set_mode",
        "description": "Set the heating mode.",
        "parameters": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "enum": ["eco", "comfort", "off"]},
                "boost": {"type": "boolean"},
            },
            "required": ["mode"],
        },
    },
    {
        "name": "set_fan",
        "description": "Set the fan level, on some days.",
        "parameters": {
            "type": "object",
            "properties": {
                "level": {"type": "integer", "enum": list(range(11))},
                "days": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["mon", "tue", "wed"]},
                    "maxItems": 2,
                },
            },
            "required": ["level"],
        },
    },
    {
        "name": "add_tag",
        "description": "Tag the room.",
        "parameters": {
            "type": "object",
            "properties": {"tag": {"type": "string", "maxLength": 8}},
            "required": ["tag"],
        },
    },
]
GRAMMAR_QUERIES = ["turn the heating to eco", "fan to level 3 on monday", "tag this room office"]
GRAMMAR_MAX_TOKENS = 600
MAX_CALLS = 4  # the pipeline's (and DirectDecoder's) default --max-calls
# jsonschema's messages for numeric bounds, which llama.cpp's schema converter does not enforce
NUMERIC_BOUND = re.compile(
    r"arguments at \S+: .+ is (less|greater) than (or equal to )?the (minimum|maximum) of "
)


def _assert_valid_calls(calls: object, tools: list[dict]) -> None:
    """A list of at most MAX_CALLS ``{name, arguments}`` calls of declared tools, each
    valid against its tool's parameter schema."""
    by_name = {t["name"]: t for t in tools}
    assert isinstance(calls, list) and len(calls) <= MAX_CALLS, calls
    for call in calls:
        assert isinstance(call, dict) and set(call) == {"name", "arguments"}, call
        assert call["name"] in by_name, call
        Draft202012Validator(by_name[call["name"]]["parameters"]).validate(call["arguments"])


def test_finetune_from_gguf(tiny, tmp_path):
    """Fine-tuning starts from the --init weights and tokenizer, and then changes the weights.

    (``steps=0`` is not supported, so a run with learning rate 0 stands for step 0: AdamW then
    leaves every weight exactly as loaded, and the f32 export keeps them bit for bit.)"""
    init_sd, init_tokens, init_config = model_state(tiny["gguf"])

    def finetune(lr: float, name: str) -> dict:
        args = TrainArgs(
            data=str(tiny["dir"] / "train.jsonl"),
            out=str(tmp_path / name),
            init=str(tiny["gguf"]),
            steps=2,
            lr=lr,
            warmup=1,
            eval_every=0,
            batch_tokens=2048,
            threads=1,
            qtype="f32",
        )
        args.log = lambda *a: None
        res = train(args)
        assert res["steps"] == 2
        return res

    still_sd, still_tokens, still_config = model_state(finetune(0.0, "lr0.gguf")["path"])
    assert still_tokens == init_tokens and still_config == init_config
    assert still_sd.keys() == init_sd.keys()
    for name, weight in init_sd.items():
        assert torch.equal(still_sd[name], weight), f"{name} is not the --init weight"

    tuned_sd, tuned_tokens, tuned_config = model_state(finetune(1e-3, "ft.gguf")["path"])
    assert tuned_tokens == init_tokens and tuned_config == init_config
    assert_all_tensors_changed(init_sd, tuned_sd, 1e-3)


def test_grammar_decoding_direct(tiny):
    """Grammar-constrained decoding of the (untrained) tiny model gives a JSON list of calls
    of declared tools, valid against their schemas, for each tool alone and for all."""
    from training.evaluate import DirectDecoder

    dec = DirectDecoder(tiny["gguf"], threads=1)
    tool_lists = [[t] for t in GRAMMAR_TOOLS] + [GRAMMAR_TOOLS]
    called = set()
    for tools in tool_lists:
        for query in GRAMMAR_QUERIES:
            calls = dec.decode(tools, query, max_tokens=GRAMMAR_MAX_TOKENS)
            _assert_valid_calls(calls, tools)
            called |= {c["name"] for c in calls}
    assert called, "the model never made a call: nothing was checked"


def test_pipeline_runs_exported_model(tiny, tmp_path):
    """The pipeline runs an exported model end to end. On tools whose schema the grammar
    enforces whole, every answer of even an untrained model is ``ok``; on the generated tools
    the only errors it can make are numeric bounds (where the grammar does not express them)
    and answers cut off at --max-tokens."""
    exs = tiny["examples"][:3]
    rows = [{"id": i, "query": e["query"], "tools": e["tools"]} for i, e in enumerate(exs, 1)]
    rows += [
        {"id": len(exs) + i, "query": q, "tools": GRAMMAR_TOOLS}
        for i, q in enumerate(GRAMMAR_QUERIES[:2], 1)
    ]
    reqs = write_rows(tmp_path / "reqs.jsonl", rows)
    out = tmp_path / "out.jsonl"
    p = run_pipeline(
        str(reqs), "-o", str(out), "--model", str(tiny["gguf"]), "--workers", "1",
        "--max-tokens", str(GRAMMAR_MAX_TOKENS),
    )  # fmt: skip
    assert out.exists(), p.stderr[-2000:]
    results = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(results) == [r["id"] for r in rows]
    _, tok = load_gguf(tiny["gguf"])
    n_ok = 0
    for row in rows:
        r = results[row["id"]]
        # the exported model's own tokenizer read the prompt
        prompt = D.format_prompt(row["tools"], row["query"])
        assert r["usage"]["prompt_tokens"] == 1 + len(tok.encode(prompt)), r
        assert r["model"] == "needle-tools", r
        if row["tools"] is GRAMMAR_TOOLS:
            assert r["status"] == "ok", r
        if r["status"] == "ok":
            n_ok += 1
            assert r["error"] is None
            _assert_valid_calls(r["calls"], row["tools"])
        else:
            assert r["status"] == "error" and r["calls"] == [], r
            err = r["error"]
            if err["type"] == "truncated":
                assert r["usage"]["completion_tokens"] == GRAMMAR_MAX_TOKENS, r
                assert err["message"] == (
                    f"the answer did not finish within {GRAMMAR_MAX_TOKENS} tokens"
                )
            else:
                assert err["type"] == "invalid_arguments", r
                assert NUMERIC_BOUND.search(err["message"]), r
    assert p.returncode == (0 if n_ok == len(rows) else 1), p.stderr[-2000:]
    assert f"{len(rows)} requests: {n_ok} ok, {len(rows) - n_ok} errors" in p.stderr
