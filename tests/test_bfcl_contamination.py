"""BFCL is for evaluation only: no BFCL question, function name or description is in the
training data.  Reads the BFCL data from the bfcl-eval wheel (fetched once into the cache)."""

from __future__ import annotations

import json
import re

import pytest

from training import bfcl
from training import schemas as S
from training.data import CHITCHAT_TRAIN, TRAIN_KINDS, generate_split
from training.schemas_written import load_written
from training.written_spec import render, unwrap, variations

pytestmark = pytest.mark.slow

# The seed the shipped model's schema-varied stage was generated with (training/recipe.json).
SHIPPED_SEED = 8


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@pytest.fixture(scope="module")
def texts() -> dict[str, set[str]]:
    found = bfcl.all_texts()
    assert len(found["function_names"]) > 1000 and len(found["questions"]) > 1000
    return {k: {norm(x) for x in v} - {""} for k, v in found.items()}


@pytest.fixture(scope="module")
def training_lines() -> list[dict]:
    lines = S.generate(20000, seed=SHIPPED_SEED)
    lines += generate_split("train", 5000, seed=7, group_size=(16, 32))
    return lines


def _descriptions(schema: object) -> list[str]:
    out = []
    if isinstance(schema, dict):
        if isinstance(schema.get("description"), str):
            out.append(schema["description"])
        for v in schema.values():
            out += _descriptions(v)
    elif isinstance(schema, list):
        for v in schema:
            out += _descriptions(v)
    return out


def test_no_bfcl_question_is_a_training_query(texts, training_lines):
    queries = {norm(ex["query"]) for ex in training_lines}
    assert not queries & texts["questions"]
    small_talk = {norm(line) for line in CHITCHAT_TRAIN}
    assert not small_talk & texts["questions"], sorted(small_talk & texts["questions"])


def test_no_bfcl_description_is_in_training_tools(texts, training_lines):
    bfcl_descriptions = texts["descriptions"] | texts["parameter_descriptions"]
    ours = set()
    for ex in training_lines:
        for tool in ex["tools"]:
            ours.update(norm(d) for d in _descriptions(tool))
    ours.discard("")
    assert len(ours) > 1000
    assert not ours & bfcl_descriptions, sorted(ours & bfcl_descriptions)[:20]


def test_no_bfcl_description_in_the_vocabulary(texts):
    """Every description the generator can write: each verb's templates for every object,
    and every parameter description."""
    bfcl_descriptions = texts["descriptions"] | texts["parameter_descriptions"]
    wrappers = S.load_vocab().concepts["generic_descriptions"]
    for v in (S.load_vocab("train"), S.load_vocab("valid")):
        for a in v.actions:
            for template in v.verbs[a.verb]["desc"]:
                plain = S._article(template.replace("{obj}", a.obj))
                for wrap in wrappers:
                    body = plain[0].lower() + plain[1:]
                    text = wrap.replace("{Desc}", plain).replace("{desc}", body)
                    assert norm(text) not in bfcl_descriptions, text
            for p in a.params:
                assert norm(p.desc) not in bfcl_descriptions, p.desc
                assert norm(p.label) not in bfcl_descriptions, p.label


def test_no_bfcl_function_name_in_training_tools(texts, training_lines):
    """Only the original trained kinds' own names may coincide with a BFCL name: a few of the
    project's sample tools (get_weather, send_email, ...) had those generic names before BFCL
    was used, and their definitions are not BFCL's (the description test above)."""
    bfcl_names = {S.name_key(n) for n in bfcl.all_texts()["function_names"]}
    own = {S.name_key(k.name) for k in TRAIN_KINDS}
    names = {S.name_key(t["name"]) for ex in training_lines for t in ex["tools"]}
    assert len(names) > 2000
    assert not (names - own) & bfcl_names, sorted((names - own) & bfcl_names)[:20]
    print(json.dumps(sorted(own & bfcl_names)))


def test_no_bfcl_text_in_the_written_kinds(texts):
    """The hand-written training kinds (training/written/): no BFCL function name, no BFCL
    description, and no request any template can render is a BFCL question."""
    bfcl_names = {S.name_key(n) for n in bfcl.all_texts()["function_names"]}
    bfcl_descriptions = texts["descriptions"] | texts["parameter_descriptions"]
    rendered = 0
    for spec in load_written():
        templates = [nf.template for nf in spec.no_fit]
        for rw in spec.rewrites:
            bare = unwrap(rw.tool)
            assert S.name_key(bare["name"]) not in bfcl_names, bare["name"]
            for d in _descriptions(bare):
                assert norm(d) not in bfcl_descriptions, d
            templates += rw.templates
        for t in templates:
            for chosen in variations(t):
                query, _ = render(t, chosen)
                assert norm(query) not in texts["questions"], query
                rendered += 1
    assert rendered > 3000
