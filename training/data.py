"""Deterministic synthetic tool-calling data (Needle fine-tuning format).

Each line is ``{"query": str, "tools": [{name, description, parameters}], "answers":
[{"name", "arguments"}]}``.  Answers are written with ``name`` before ``arguments`` and the
argument keys ordered like llama.cpp's JSON-schema grammar orders them: required properties
in ``properties`` order, then the optional ones in ``properties`` order.

The tool kinds, their templates and the words they are filled with are data, in
``training/templates/`` (:mod:`training.kinds`, :mod:`training.slots`); this module turns
them into examples.

Splits:

* ``train`` / ``valid`` -- training templates over the training tool kinds;
* ``test_phrasing`` -- held-out templates over the training tool kinds;
* ``test_tools`` -- tool kinds never seen in training;
* ``test_blind`` -- phrasings written later by someone who saw neither the training nor the
  held-out templates (``templates/blind.json``), minus any near copy of either.

``python -m training.data OUTDIR`` writes ``OUTDIR/{train,valid,test_phrasing,test_tools,
test_blind}.jsonl``.

This module draws the splits (:func:`generate_split`), writes them and is the command line;
the parts are :mod:`training.data_format` (prompt and answer text),
:mod:`training.data_variation` (prefixes, suffixes and paraphrases),
:mod:`training.data_chitchat` (small talk) and :mod:`training.data_examples` (examples and
groups).  Their public names are importable from here too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable
from pathlib import Path

from .data_chitchat import (
    CHITCHAT,
    CHITCHAT_EXTRA,
    CHITCHAT_HELD_OUT,
    CHITCHAT_PLAIN,
    CHITCHAT_TRAIN,
)
from .data_examples import SHIPPED_ORDER, make_example, make_group
from .data_format import _canon_answers, format_answer, format_prompt
from .data_variation import (
    FILLERS,
    JOINERS,
    MORE_PREFIXES,
    MORE_SUFFIXES,
    PREFIXES,
    SUFFIXES,
    SYNONYMS,
    vary_template,
)
from .data_variation import _decorate as _decorate
from .kinds import (
    BLIND,
    BLIND_KINDS,
    EXTRA,
    HELDOUT_KINDS,
    KIND_BY_NAME,
    KINDS,
    RELATED,
    SHIPPED,
    SKIPPED_PHRASINGS,
    TEST_KINDS,
    TRAIN_KINDS,
    VOCABULARY,
    Kind,
    Template,
    as_template,
    order_arguments,
    too_close,
)
from .slots import (
    POOLS,
    Pick,
    date_value,
    duration_seconds,
    load_templates,
    made_up_like,
    minutes_value,
    spell_number,
    spell_numbers,
    time_of_day,
)

__all__ = [
    "BLIND",
    "BLIND_KINDS",
    "CHITCHAT",
    "CHITCHAT_EXTRA",
    "CHITCHAT_HELD_OUT",
    "CHITCHAT_PLAIN",
    "CHITCHAT_TRAIN",
    "DEFAULT_SIZES",
    "EXTRA",
    "FILLERS",
    "HELDOUT_KINDS",
    "JOINERS",
    "KINDS",
    "KIND_BY_NAME",
    "MORE_PREFIXES",
    "MORE_SUFFIXES",
    "POOLS",
    "PREFIXES",
    "RELATED",
    "SHIPPED",
    "SHIPPED_ORDER",
    "SKIPPED_PHRASINGS",
    "SUFFIXES",
    "SYNONYMS",
    "TEST_KINDS",
    "TRAIN_KINDS",
    "VOCABULARY",
    "Kind",
    "Pick",
    "Template",
    "as_template",
    "date_value",
    "duration_seconds",
    "format_answer",
    "format_prompt",
    "generate_split",
    "load_templates",
    "made_up_like",
    "main",
    "make_example",
    "make_group",
    "minutes_value",
    "order_arguments",
    "read_jsonl",
    "spell_number",
    "spell_numbers",
    "time_of_day",
    "too_close",
    "vary_template",
    "write_jsonl",
    "write_splits",
]


def generate_split(
    split: str,
    n: int,
    seed: int = 0,
    grouped: bool = True,
    group_size: tuple[int, int] = (4, 10),
    augment: bool = True,
) -> list[dict]:
    """Deterministic for (split, n, seed, group_size, augment).  ``train`` comes in groups of
    ``group_size`` (min, max) consecutive examples sharing one tool list (``grouped``),
    paraphrased when ``augment``; the other splits have one list each and no paraphrases."""
    offsets = {"train": 0, "valid": 1, "test_phrasing": 2, "test_tools": 3, "test_blind": 4}
    rng = random.Random(seed * 1000 + offsets[split])
    out: list[dict] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        if split == "train" and grouped:
            size = rng.randint(*group_size)
            for ex in make_group(rng, TRAIN_KINDS, False, size, augment):
                if ex["query"] not in seen and len(out) < n:
                    seen.add(ex["query"])
                    out.append(_canon_answers(ex))
            continue
        if split in ("train", "valid"):
            ex = make_example(rng, TRAIN_KINDS, TRAIN_KINDS, use_test_templates=False)
        elif split == "test_phrasing":
            ex = make_example(rng, TRAIN_KINDS, TRAIN_KINDS, use_test_templates=True)
        elif split == "test_blind":
            ex = make_example(rng, BLIND_KINDS, TRAIN_KINDS, use_test_templates=True)
        else:
            ex = make_example(
                rng, TEST_KINDS, TRAIN_KINDS, use_test_templates=False, chitchat=False
            )
        key = ex["query"]
        if key in seen:
            continue
        seen.add(key)
        out.append(_canon_answers(ex))
    return out


DEFAULT_SIZES = {
    "train": 60000,
    "valid": 400,
    "test_phrasing": 400,
    "test_tools": 300,
    "test_blind": 400,
}


def write_splits(
    outdir: str | Path,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    group_size: tuple[int, int] = (4, 10),
    augment: bool = True,
) -> dict[str, Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    paths = {}
    train_queries: set[str] = set()
    for split in DEFAULT_SIZES:
        exs = generate_split(
            split,
            sizes[split] + (sizes[split] // 4 if split != "train" else 0),
            seed,
            group_size=group_size,
            augment=augment,
        )
        if split == "train":
            train_queries = {e["query"] for e in exs}
        else:
            exs = [e for e in exs if e["query"] not in train_queries][: sizes[split]]
        paths[split] = write_jsonl(outdir / f"{split}.jsonl", exs)
    return paths


def write_jsonl(path: str | Path, examples: Iterable[dict]) -> Path:
    """One JSON object a line, UTF-8 (the splits' format)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.data", description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    for s, n in DEFAULT_SIZES.items():
        ap.add_argument(f"--{s.replace('_', '-')}", dest=s, type=int, default=n)
    ap.add_argument(
        "--group-size",
        type=int,
        nargs=2,
        default=[4, 10],
        metavar=("MIN", "MAX"),
        help="train examples come in groups of MIN-MAX sharing one tool list (default 4 10)",
    )
    ap.add_argument(
        "--no-augment",
        action="store_true",
        help="train split without paraphrased templates and made-up values",
    )
    a = ap.parse_args(argv)
    paths = write_splits(
        a.outdir,
        {s: getattr(a, s) for s in DEFAULT_SIZES},
        a.seed,
        tuple(a.group_size),
        augment=not a.no_augment,
    )
    for s, p in paths.items():
        print(f"{s}: {p}")
    print(f"{len(KINDS)} tool kinds ({len(TRAIN_KINDS)} trained, {len(TEST_KINDS)} held out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
