"""Tiny end-to-end training run: train a few steps, export GGUF, load it with llama.cpp.

Checks that llama.cpp's tokenizer gives the training tokenizer's ids, that llama.cpp's
logits match PyTorch's (rope / tensor layout), GGUF round trips, fine-tuning from a GGUF,
and that the pipeline runs the exported model.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (pip install '.[train]')")
pytest.importorskip("tokenizers", reason="training needs tokenizers (pip install '.[train]')")
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

from training import data as D  # noqa: E402
from training.export import export_gguf, load_gguf  # noqa: E402
from training.train import TrainArgs, collate, encode_examples, make_packs, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

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
    d = tmp_path_factory.mktemp("tiny")
    exs = D.generate_split("train", 40, seed=1)
    (d / "train.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in exs), encoding="utf-8"
    )
    out = d / "tiny.gguf"
    args = TrainArgs(
        data=str(d / "train.jsonl"),
        out=str(out),
        steps=4,
        lr=3e-3,
        warmup=1,
        eval_every=2,
        batch_tokens=2048,
        dim=32,
        n_layers=2,
        n_heads=2,
        ffn_dim=64,
        vocab_size=600,
        qtype="f32",
        threads=1,
        max_len=2048,
    )
    args.log = lambda *a: None
    res = train(args)
    return {"dir": d, "gguf": out, "examples": exs, "result": res}


def _llm(path, **kw):
    return llama_cpp.Llama(str(path), n_ctx=2048, n_threads=1, verbose=False, **kw)


def test_training_reports(tiny):
    r = tiny["result"]
    assert r["steps"] == 4
    assert np.isfinite(r["valid_loss"])
    assert tiny["gguf"].stat().st_size < 30e6


def test_llama_cpp_tokenizer_matches(tiny):
    _, tok = load_gguf(tiny["gguf"])
    llm = _llm(tiny["gguf"], vocab_only=True)
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
    llm = _llm(tiny["gguf"], logits_all=True)
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
        llm = _llm(p, logits_all=True)
        llm.eval(ids[0].tolist())
        assert np.abs(np.array(llm.scores[: ids.shape[1]]) - ref[0].numpy()).max() < 0.1


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


def test_encoding_in_chunks_shares_prefixes(tiny):
    """Chunked encoding gives the same items as one pass, and examples with one tool list
    share one prefix object (what keeps 250k examples in a few GB)."""
    _model, tok = load_gguf(tiny["gguf"])
    exs = tiny["examples"]
    whole = encode_examples(exs, tok, 2048)
    chunked = encode_examples(exs, tok, 2048, chunk=3)
    assert whole == chunked
    by_tools: dict[str, list] = {}
    for e, it in zip(exs, chunked, strict=True):
        by_tools.setdefault(json.dumps(e["tools"]), []).append(it.prefix)
    shared = [ps for ps in by_tools.values() if len(ps) > 1]
    assert shared
    assert all(all(p is ps[0] for p in ps) for ps in shared)


def test_finetune_from_gguf(tiny, tmp_path):
    args = TrainArgs(
        data=str(tiny["dir"] / "train.jsonl"),
        out=str(tmp_path / "ft.gguf"),
        init=str(tiny["gguf"]),
        steps=2,
        lr=1e-3,
        warmup=1,
        eval_every=0,
        batch_tokens=2048,
        threads=1,
        qtype="f16",
    )
    args.log = lambda *a: None
    res = train(args)
    m1, t1 = load_gguf(tiny["gguf"])
    m2, t2 = load_gguf(res["path"])
    assert t1.tokens() == t2.tokens() and m1.c == m2.c


def test_grammar_decoding_direct(tiny):
    from training.evaluate import DirectDecoder

    dec = DirectDecoder(tiny["gguf"], threads=1)
    e = tiny["examples"][0]
    try:
        calls = dec.decode(e["tools"], e["query"], max_tokens=400)
    except ValueError:  # an untrained model may ramble until max_tokens
        return
    assert isinstance(calls, list)
    names = {t["name"] for t in e["tools"]}
    assert all(c["name"] in names for c in calls)


def test_pipeline_runs_exported_model(tiny, tmp_path):
    pytest.importorskip("pipeline.cli", reason="pipeline CLI not available")
    reqs = tmp_path / "reqs.jsonl"
    exs = tiny["examples"][:3]
    reqs.write_text(
        "".join(
            json.dumps({"id": i, "query": e["query"], "tools": e["tools"]}) + "\n"
            for i, e in enumerate(exs, 1)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            str(reqs),
            "-o",
            str(out),
            "--overwrite",
            "--model",
            str(tiny["gguf"]),
            "--workers",
            "1",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), p.stderr[-2000:]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [1, 2, 3]
    assert all(r["status"] in ("ok", "error") for r in rows)
