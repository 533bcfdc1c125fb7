"""SmolLM2's vocabulary rebuilt in HF ``tokenizers`` from its GGUF gives llama.cpp's ids.

A lent GPU machine has no llama-cpp-python, so training there tokenises with
:class:`training.gguf_tokenizer.TokenizersTok`; a model trained there must see the ids the
worker will feed it. Compared with llama.cpp's own tokeniser on the kinds of text training
and serving meet, and through the training code's own encoding (ids, prompt split, value
weights).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tokenizers", reason="training needs tokenizers (pip install '.[train]')")
pytest.importorskip("torch", reason="training needs torch (pip install '.[train]')")

from conftest import PROJECT_ROOT

from pipeline.models import smollm2_path
from training.data_format import format_answer, format_prompt
from training.encoding import encode_examples
from training.gguf_tokenizer import TokenizersTok, UnknownTokenizerError
from training.pretrained import LlamaCppTok
from training.schemas import main as make_schema_data

SPLITS = ("valid_unseen.jsonl", "valid_nested.jsonl", "valid_nofit.jsonl")
HARD_TEXTS = [
    "  two  spaces\n\nnewlines\t tab 12345 3.14159 -7 1,000,000",
    "émigré crème fraîche 東京 😀 ÄÖÜ naïve façade",
    "don't I'll we've THEY'RE it's",
    "a\u00a0b \u200b zero-width",
    "   ",
    "",
    '{"name":"f","arguments":{"x":[1,2,{"y":"z"}]}}',
    "<|im_start|>user\nliteral special text<|im_end|>",
    "----------------------------------------------------------------",
]


@pytest.fixture(scope="module")
def tokenizers_pair() -> tuple[LlamaCppTok, TokenizersTok]:
    base = smollm2_path()
    return LlamaCppTok(base), TokenizersTok(base)


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> list[dict]:
    """Three validation splits and 600 freshly generated examples."""
    tmp_path = tmp_path_factory.mktemp("generated")
    examples = []
    for split in SPLITS:
        path = PROJECT_ROOT / "training" / "data" / split
        examples += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    generated = tmp_path / "generated.jsonl"
    make_schema_data([str(generated), "--n", "600", "--seed", "5", "--nest", "0.2"])
    examples += [json.loads(line) for line in generated.read_text(encoding="utf-8").splitlines()]
    return examples


def test_same_ids_and_special_ids_as_llama_cpp(tokenizers_pair, examples) -> None:
    ours_llama, ours_hf = tokenizers_pair
    assert (ours_hf.bos_id, ours_hf.eos_id, ours_hf.pad_id, ours_hf.add_bos) == (
        ours_llama.bos_id,
        ours_llama.eos_id,
        ours_llama.pad_id,
        ours_llama.add_bos,
    )
    assert ours_hf.vocab_size == ours_llama.vocab_size == 49152
    texts = list(HARD_TEXTS)
    for example in examples:
        texts += [
            format_prompt(example["tools"], example["query"]),
            format_answer(example["answers"], example["tools"]),
            example["query"],
        ]
    expected = [ours_llama.encode(text) for text in texts]
    assert ours_hf.encode_batch(texts) == expected
    assert [ours_hf.encode(text) for text in HARD_TEXTS] == expected[: len(HARD_TEXTS)]
    assert sum(len(ids) for ids in expected) > 100_000  # a real amount of text was compared
    for text, ids in zip(texts, expected, strict=True):
        assert ours_hf.decode(ids) == text  # byte-level BPE gives the text back


def test_training_encodes_the_same_items(tokenizers_pair, examples) -> None:
    """Prefix, branch, prompt length and value weights of every example, as train.py
    builds them, are the same with either tokenizer."""
    ours_llama, ours_hf = tokenizers_pair
    some = examples[::3]
    expected = encode_examples(some, ours_llama, 1536, value_weight=4.0)
    got = encode_examples(some, ours_hf, 1536, value_weight=4.0)
    assert len(got) == len(expected) > 300
    assert got == expected
    assert any(w == 4.0 for item in got for w in item.answer_weights or [])
    # as a lent GPU machine encodes them: in forked processes, a chunk each
    assert encode_examples(some, ours_hf, 1536, chunk=64, value_weight=4.0, workers=2) == got


def test_piece_lengths_are_the_bytes_of_each_token(tokenizers_pair) -> None:
    """Each token's piece is its text's bytes (llama-cpp-python's one-token detokenise
    returns nothing for pieces over 32 bytes, such as long runs of dashes)."""
    ours_llama, ours_hf = tokenizers_pair
    text = "crème fraîche at 10:30, 東京 " + "-" * 64
    ids = ours_hf.encode(text)
    assert sum(ours_hf.piece_lengths(ids)) == len(text.encode("utf-8"))
    compared = 0
    for token in range(0, 49152, 41):
        (length,) = ours_llama.piece_lengths([token])
        if length:  # long pieces come back empty from llama-cpp-python
            assert ours_hf.piece_lengths([token]) == [length], token
            compared += 1
    assert compared > 1000
    assert ours_hf.piece_lengths([ours_hf.bos_id]) == [0]  # a control token prints nothing


def test_an_unknown_pre_tokeniser_is_refused(tmp_path) -> None:
    """A vocabulary whose pre-tokeniser this module does not know is an error, not a
    guess (the ids would drift from llama.cpp's)."""
    import gguf

    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(["a", "b", "ab"])
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UnknownTokenizerError, match="llama-bpe"):
        TokenizersTok(path)
