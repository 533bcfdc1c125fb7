"""The stored validation splits that :mod:`training.schemas` makes are reproduced byte for
byte by the commands ``training/data/README.md`` gives, so a later change to the generator
cannot silently move the data that stages are chosen on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import schemas as S

DATA = Path(__file__).resolve().parent.parent / "training" / "data"

SPLITS = {
    "valid_unseen.jsonl": dict(n=300, seed=10, mix={"generated": 1.0}),
    "valid_nofit.jsonl": dict(
        n=300, seed=20, mix={"generated": 1.0}, no_fit=0.5, near_miss=0.6, chitchat=0.05
    ),
    "valid_nested.jsonl": dict(n=300, seed=30, mix={"generated": 1.0}, nest=0.5),
    "valid_redeclared.jsonl": dict(n=300, seed=40, mix={"generated": 1.0}, redeclare=0.5),
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_stored_split_is_reproduced(name: str):
    made = S.generate(split="valid", **SPLITS[name])
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in made)
    assert text == (DATA / name).read_text(encoding="utf-8")
