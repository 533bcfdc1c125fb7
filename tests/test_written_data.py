"""The hand-written kinds: the training files (``training/written/*.json``) and the
validation split made from ``training/heldout/valid_written.json``. They load (every answer
validates against its tool), keep away from the kinds and objects that evaluation holds
out, and make training groups whose answers call the tools the group lists."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from training import schemas as S
from training.make_test_schemas import generate_text
from training.schemas_names import split_words
from training.schemas_written import WRITTEN_DIR, load_written, written_group
from training.written_spec import load_spec, unwrap

ROOT = Path(__file__).resolve().parent.parent / "training"
VALID_SPEC = ROOT / "heldout" / "valid_written.json"
VALID_SPLIT = ROOT / "data" / "valid_written.jsonl"
REWRITTEN_SPEC = ROOT / "heldout" / "valid_rewritten.json"
REWRITTEN_SPLIT = ROOT / "data" / "valid_rewritten.jsonl"
TEST_SPEC = ROOT / "heldout" / "test_schemas.json"


def _words(text: str) -> str:
    """Lower case, identifiers split into words: ``giftCard.check_balance`` -> ``gift card
    check balance``."""
    return " ".join(split_words(re.sub(r"[^A-Za-z0-9]+", " ", text)))


def _tool_text(tool: dict) -> str:
    bare = unwrap(tool)
    return _words(f"{bare['name']} {bare.get('description', '')}")


@pytest.fixture(scope="module")
def specs():
    return load_written()


def test_every_written_file_loads_with_enough_kinds(specs):
    files = sorted(WRITTEN_DIR.glob("*.json"))
    assert len(specs) == len(files) >= 4
    for path, spec in zip(files, specs, strict=True):
        templates = sum(len(rw.templates) for rw in spec.rewrites)
        assert len(spec.kinds) >= 12 and templates >= 150 and len(spec.no_fit) >= 10, path


def test_written_kinds_are_new_or_re_declare_trained_ones(specs):
    """A file is new kinds (none of ``kinds.json``), or, marked ``"redeclares": "trained"``,
    trained kinds declared the way other APIs would; never a kind of ``test_tools``, and no
    tool name of the test or validation files."""
    document = json.loads((ROOT / "templates" / "kinds.json").read_text())
    every_kind = {kind["name"] for kind in document["kinds"]}
    test_kinds = set(document["held_out_kinds"])
    files = sorted(WRITTEN_DIR.glob("*.json"))
    for path, spec in zip(files, specs, strict=True):
        marked = json.loads(path.read_text()).get("redeclares") == "trained"
        allowed = every_kind - test_kinds if marked else set()
        assert set(spec.kinds) & every_kind <= allowed, path
        assert not marked or set(spec.kinds) <= allowed, path
    written = [k for spec in specs for k in spec.kinds]
    assert len(written) == len(set(written)), "a kind in two files"
    held_out = [load_spec(path) for path in (TEST_SPEC, VALID_SPEC, REWRITTEN_SPEC)]
    names = [rw.name for spec in specs for rw in spec.rewrites]
    assert len(names) == len(set(names)), "a tool name in two files"
    assert not set(names) & {rw.name for spec in held_out for rw in spec.rewrites}
    assert not set(names) & every_kind, "a trained kind's own name"


def test_written_tools_keep_off_the_held_out_objects(specs):
    """``valid_unseen`` and ``valid_written`` are about these 25 objects; no training tool
    names or describes one."""
    objects = json.loads((ROOT / "vocab" / "heldout_objects.json").read_text())
    for spec in specs:
        for rw in spec.rewrites:
            text = f" {_tool_text(rw.tool)} "
            hits = [o for o in objects if f" {_words(o)} " in text]
            assert not hits, (rw.name, hits)


def test_valid_written_is_about_the_held_out_objects():
    objects = [_words(o) for o in json.loads((ROOT / "vocab" / "heldout_objects.json").read_text())]
    spec = load_spec(VALID_SPEC)
    covered = {o for rw in spec.rewrites for o in objects if o in _tool_text(rw.tool)}
    assert len(covered) >= 20, sorted(set(objects) - covered)


@pytest.mark.parametrize(
    "spec, split", [(VALID_SPEC, VALID_SPLIT), (REWRITTEN_SPEC, REWRITTEN_SPLIT)]
)
def test_stored_written_validation_splits_are_reproduced(spec, split):
    """The commands of ``training/data/README.md``, e.g. ``python -m
    training.make_test_schemas training/data/valid_written.jsonl --data
    training/heldout/valid_written.json --seed 0 --n 400``."""
    text = generate_text(seed=0, n=400, path=spec)
    assert text == split.read_text(encoding="utf-8")


def test_valid_rewritten_re_declares_trained_kinds():
    """``valid_rewritten`` is ``test_schemas``' question on validation: trained kinds under
    definitions written apart from the training files."""
    document = json.loads((ROOT / "templates" / "kinds.json").read_text())
    trained = {k["name"] for k in document["kinds"]} - set(document["held_out_kinds"])
    spec = load_spec(REWRITTEN_SPEC)
    assert len(spec.kinds) >= 20 and set(spec.kinds) <= trained
    assert not {rw.name for rw in spec.rewrites} & trained


def test_written_groups_call_the_tools_they_list(specs):
    rng = random.Random(5)
    shapes: Counter[str | int] = Counter()
    for _ in range(80):
        group = written_group(rng, specs, 16, no_fit=0.15)
        assert group
        tools = group[0]["tools"]
        validators = {
            unwrap(t)["name"]: Draft202012Validator(unwrap(t)["parameters"]) for t in tools
        }
        assert len(validators) == len(tools), "one kind twice in a list"
        assert len({ex["query"] for ex in group}) == len(group)
        for ex in group:
            assert ex["tools"] is tools
            for call in ex["answers"]:
                validators[call["name"]].validate(call["arguments"])
            names = [call["name"] for call in ex["answers"]]
            same_twice = len(names) == 2 and names[0] == names[1]
            shapes["same twice" if same_twice else len(names)] += 1
    total = sum(shapes.values())
    assert 0.08 < shapes[0] / total < 0.22, shapes
    assert 0.05 < shapes[2] / total < 0.2, shapes
    assert 0.02 < shapes["same twice"] / total < 0.1, shapes


def test_the_fourth_mix_share_draws_written_groups(specs):
    names = {rw.name for spec in specs for rw in spec.rewrites}
    lines = S.generate(
        400, seed=3, mix={"generated": 0.5, "rewritten": 0.0, "original": 0.0, "written": 0.5}
    )
    written = [ex for ex in lines if unwrap(ex["tools"][0])["name"] in names]
    assert 0.2 < len(written) / len(lines) < 0.8
    three = S.generate(200, seed=3)
    assert not [ex for ex in three if ex["tools"] and unwrap(ex["tools"][0])["name"] in names]


def test_your_own_written_kinds(tmp_path, capsys):
    """``--written DIR`` trains on a folder of your own kinds; a folder with none, or a file
    that does not load, is a usage error that says which."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "devops.json").write_text((WRITTEN_DIR / "devops.json").read_text())
    out = tmp_path / "train.jsonl"
    assert S.main([str(out), "--n", "300", "--mix", "0", "0", "0", "1", "--written", str(own)]) == 0
    names = {rw.name for rw in load_spec(own / "devops.json").rewrites}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 300
    assert {unwrap(t)["name"] for ex in lines for t in ex["tools"]} <= names
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as stop:
        S.main([str(out), "--n", "10", "--mix", "0", "0", "0", "1", "--written", str(empty)])
    assert stop.value.code == 2
    assert f"no written kinds (*.json) in {empty}" in capsys.readouterr().err
    broken = json.loads((own / "devops.json").read_text())
    broken["kinds"][0]["rewrites"][0]["templates"][0]["answer"] = {"nonsense": 1}
    (own / "devops.json").write_text(json.dumps(broken))
    load_written.cache_clear()
    with pytest.raises(SystemExit):
        S.main([str(out), "--n", "10", "--mix", "0", "0", "0", "1", "--written", str(own)])
    assert "template 0" in capsys.readouterr().err
