"""The stored ``test_schemas`` split: reproducible, valid, and really rewritten."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from training.make_test_schemas import DATA_FILE, STORED_SPLIT, generate_text, unwrap

ROOT = Path(__file__).resolve().parent.parent
TRAINED = ROOT / "tests" / "data" / "trained_tool_keys.json"


@pytest.fixture(scope="module")
def lines() -> list[dict]:
    return [json.loads(line) for line in STORED_SPLIT.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def kind_of(data) -> dict[str, str]:
    return {
        unwrap(rw["tool"])["name"]: entry["kind"]
        for entry in data["kinds"]
        for rw in entry["rewrites"]
    }


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def test_stored_split_is_reproduced_byte_for_byte():
    assert generate_text(seed=0, n=400) == STORED_SPLIT.read_text(encoding="utf-8")


def test_answers_validate_against_their_tools(lines):
    assert len(lines) == 400
    for line in lines:
        tools = {unwrap(t)["name"]: unwrap(t) for t in line["tools"]}
        assert len(tools) == len(line["tools"])
        names = [a["name"] for a in line["answers"]]
        assert len(set(names)) == len(names)
        for call in line["answers"]:
            params = tools[call["name"]]["parameters"]
            Draft202012Validator(params).validate(call["arguments"])
            props = list(params.get("properties", {}))
            required = set(params.get("required", []))
            expected = [k for k in props if k in required and k in call["arguments"]]
            expected += [k for k in props if k not in required and k in call["arguments"]]
            assert list(call["arguments"]) == expected, line["query"]


def test_line_mix(lines, kind_of, data):
    conflicts = {frozenset(pair) for pair in data["conflicts"]}
    counts = [len(line["answers"]) for line in lines]
    assert counts.count(0) == 32 and counts.count(2) == 40
    assert len({line["query"] for line in lines}) == len(lines)
    for line in lines:
        kinds = [kind_of[unwrap(t)["name"]] for t in line["tools"]]
        assert len(set(kinds)) == len(kinds), line["query"]
        distractors = len(line["tools"]) - len(line["answers"])
        assert (3 if not line["answers"] else 2) <= distractors <= 8, line["query"]
        for call in line["answers"]:
            target = kind_of[call["name"]]
            assert not any(frozenset((target, k)) in conflicts for k in kinds), line["query"]


def test_targets_differ_from_the_trained_definitions(lines, kind_of):
    trained = json.loads(TRAINED.read_text(encoding="utf-8"))
    sample = json.loads((ROOT / "inputs" / "tools.json").read_text(encoding="utf-8"))
    trained += [{"name": t["name"], "keys": list(t["parameters"]["properties"])} for t in sample]
    names = {_squash(t["name"]) for t in trained}
    key_sets = {frozenset(t["keys"]) for t in trained}
    assert len(names) == 41
    targets = {
        call["name"]: unwrap(t)
        for line in lines
        for call in line["answers"]
        for t in line["tools"]
        if unwrap(t)["name"] == call["name"]
    }
    assert len(targets) == 82 and set(targets) == set(kind_of)
    for name, tool in targets.items():
        assert _squash(name) not in names, name
        assert frozenset(tool["parameters"].get("properties", {})) not in key_sets, name
