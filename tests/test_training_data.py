"""The synthetic data generator: determinism, schemas, splits, answer format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from training import data as D
from training import slots

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def splits():
    return {
        s: D.generate_split(s, n, seed=0)
        for s, n in {"train": 1500, "valid": 200, "test_phrasing": 300, "test_tools": 200}.items()
    }


def test_deterministic():
    a = D.generate_split("train", 300, seed=3)
    b = D.generate_split("train", 300, seed=3)
    c = D.generate_split("train", 300, seed=4)
    assert a == b
    assert a != c


def test_write_splits_deterministic(tmp_path):
    sizes = {"train": 200, "valid": 30, "test_phrasing": 30, "test_tools": 30}
    p1 = D.write_splits(tmp_path / "a", sizes)
    p2 = D.write_splits(tmp_path / "b", sizes)
    for s in sizes:
        t1 = p1[s].read_text(encoding="utf-8")
        assert t1 == p2[s].read_text(encoding="utf-8")
        assert len(t1.splitlines()) == sizes[s]


def test_at_least_40_kinds_and_shipped_schemas():
    assert len(D.KINDS) >= 40
    assert len(D.TRAIN_KINDS) >= 40
    names = [k.name for k in D.KINDS]
    assert len(names) == len(set(names))
    shipped = json.loads((ROOT / "inputs" / "tools.json").read_text())
    for t in shipped:
        k = D.KIND_BY_NAME[t["name"]]
        assert k.tool == {
            "name": t["name"],
            "description": t["description"],
            "parameters": t["parameters"],
        }
        assert k.name not in D.HELDOUT_KINDS


def _arg_order_ok(args: dict, params: dict) -> bool:
    return list(args) == list(D.order_arguments(args, params))


def test_answers_valid_and_ordered(splits):
    jsonschema = pytest.importorskip("jsonschema")
    for exs in splits.values():
        for e in exs:
            assert set(e) == {"query", "tools", "answers"}
            by = {t["name"]: t for t in e["tools"]}
            assert all(list(t) == ["name", "description", "parameters"] for t in e["tools"])
            assert len(by) == len(e["tools"])
            assert 2 <= len(e["tools"]) <= 12
            for a in e["answers"]:
                assert list(a) == ["name", "arguments"]
                assert a["name"] in by
                params = by[a["name"]]["parameters"]
                jsonschema.validate(a["arguments"], params)
                assert _arg_order_ok(a["arguments"], params)


def test_values_come_from_query(splits):
    """String arguments that are not enums/normalised times/dates/codes appear in the query."""
    derived_keys = {"time", "until", "date", "from_currency", "to_currency"}
    for e in splits["train"][:800]:
        for a in e["answers"]:
            props = {t["name"]: t for t in e["tools"]}[a["name"]]["parameters"]["properties"]
            for k, v in a["arguments"].items():
                # (a query may start with a capitalised copy of its first value)
                q = e["query"][:1].lower() + e["query"][1:]
                if isinstance(v, str) and "enum" not in props[k] and k not in derived_keys:
                    assert v in e["query"] or v in q, (e["query"], k, v)
                if isinstance(v, list):
                    assert all(x in e["query"] or x in q for x in v)


def test_mix_of_example_types(splits):
    n = [len(e["answers"]) for e in splits["train"]]
    assert n.count(0) > 0.05 * len(n)
    assert n.count(2) > 0.05 * len(n)
    assert n.count(1) > 0.5 * len(n)
    types = set()
    for k in D.TRAIN_KINDS:
        for p in k.tool["parameters"]["properties"].values():
            types.add("enum" if "enum" in p else p["type"])
    assert {"string", "integer", "number", "boolean", "enum", "array"} <= types
    # units are converted: "5 minutes" style durations become seconds
    _q, a = D.KIND_BY_NAME["set_timer"].render(__import__("random").Random(0), ("timer {dur}", {}))
    assert isinstance(a["duration_seconds"], int)


def test_splits_disjoint(splits, tmp_path):
    train_q = {e["query"] for e in splits["train"]}
    heldout = set(D.HELDOUT_KINDS)
    for e in splits["train"] + splits["valid"]:
        assert not heldout & {t["name"] for t in e["tools"]}
    for e in splits["test_tools"]:
        if e["answers"]:
            assert {a["name"] for a in e["answers"]} <= heldout
    for e in splits["test_phrasing"]:
        assert not heldout & {a["name"] for a in e["answers"]}
    assert not train_q & {e["query"] for e in splits["test_tools"]}
    sizes = {"train": 1500, "valid": 100, "test_phrasing": 200, "test_tools": 100}
    written = {s: D.read_jsonl(p) for s, p in D.write_splits(tmp_path, sizes).items()}
    wq = {e["query"] for e in written["train"]}
    for s in ("valid", "test_phrasing", "test_tools"):
        assert len(written[s]) == sizes[s]
        assert not wq & {e["query"] for e in written[s]}
    # held-out phrasings: templates of test_phrasing never used for train
    for k in D.TRAIN_KINDS:
        assert k.test_templates(), k.name
        assert not {t for t, _ in k.test_templates()} & {t for t, _ in k.train_templates()}


def test_time_and_duration_parsing():
    import random

    rng = random.Random(0)
    slot = D.time_of_day("time")
    for _ in range(500):
        s, v = slot(rng)
        hh, mm = v["time"].split(":")
        assert 0 <= int(hh) < 24 and 0 <= int(mm) < 60 and len(v["time"]) == 5
        if s.startswith("half past six pm"):
            assert v["time"] == "18:30"
    dur = D.duration_seconds("d")
    seen = {}
    for _ in range(500):
        s, v = dur(rng)
        seen[s] = v["d"]
    if "5 minutes" in seen:
        assert seen["5 minutes"] == 300
    assert seen.get("half an hour", 1800) == 1800


def test_prompt_and_answer_format():
    tools = [D.KIND_BY_NAME["set_timer"].tool]
    p = D.format_prompt(tools, "timer 5 minutes ☕")
    assert p.startswith('<tools>[{"name":"set_timer","description":')
    assert p.endswith("</tools><query>timer 5 minutes ☕</query>")
    ans = D.format_answer(
        [{"name": "set_timer", "arguments": {"label": "x", "duration_seconds": 3}}], tools
    )
    assert ans == '[{"name":"set_timer","arguments":{"duration_seconds":3,"label":"x"}}]'


def test_cli(tmp_path):
    rc = D.main(
        [
            str(tmp_path),
            "--train",
            "50",
            "--valid",
            "10",
            "--test-phrasing",
            "10",
            "--test-tools",
            "10",
        ]
    )
    assert rc == 0
    for s in ("train", "valid", "test_phrasing", "test_tools"):
        assert (tmp_path / f"{s}.jsonl").exists()


def test_stored_test_split_is_reproduced():
    """The committed unseen-phrasing split is what the generator makes (in order; write_splits
    only drops queries that also occur in train)."""
    stored = D.read_jsonl(ROOT / "training" / "data" / "test_phrasing.jsonl")
    generated = iter(D.generate_split("test_phrasing", len(stored) * 5 // 4, seed=0))
    assert all(e in generated for e in stored)


def test_blind_split_is_reproduced_and_unseen():
    """The committed blind split is what the generator makes, from blind templates that are
    not near copies of any template of their tool kind."""
    stored = D.read_jsonl(ROOT / "training" / "data" / "test_blind.jsonl")
    generated = iter(D.generate_split("test_blind", len(stored) * 5 // 4, seed=0))
    assert all(e in generated for e in stored)
    by_name = {k.name: k for k in D.TRAIN_KINDS}
    written = sum(len(v) for v in D.BLIND.values())
    kept = sum(len(k.test_templates()) for k in D.BLIND_KINDS)
    assert 0 < kept < written  # some were dropped as near copies
    for b in D.BLIND_KINDS:
        own = [t for t, _ in by_name[b.name].templates]
        for t, _ in b.test_templates():
            assert not D.too_close(t, own), t
            assert t not in {x for x, _ in b.train_templates()}
    queries = {e["query"] for e in D.generate_split("train", 3000, seed=0)}
    assert not queries & {e["query"] for e in stored}


def test_added_phrasings_keep_held_out_templates_unseen():
    """Hand-written phrasings and training-time paraphrases never come near a held-out one."""
    import random

    assert D.SKIPPED_PHRASINGS > 0  # the filter is live: some near copies were dropped
    rng = random.Random(0)
    for k in D.TRAIN_KINDS:
        held = [t for t, _ in k.test_templates()]
        extra = [
            D.as_template(t)[0] for t in D.EXTRA.get(k.name, []) + D.VOCABULARY.get(k.name, [])
        ]
        kept = {t for t, _ in k.train_templates()} & set(extra)
        assert len(k.train_templates()) >= 10, k.name
        assert not any(D.too_close(t, held) for t in kept), k.name
        for t in k.train_templates():
            for _ in range(20):
                text, fixed = D.vary_template(rng, t, held)
                assert fixed == t[1]
                assert text == t[0] or not D.too_close(text, held), (text, held)
                assert re.findall(r"\{\w+\}", text) == re.findall(r"\{\w+\}", t[0])
    assert D.too_close("say {txt} in {lang} for me", ["say {txt} in {lang}"])
    assert not D.too_close("render {txt} in {lang}", ["{lang} translation of {txt}"])


def test_made_up_values_keep_the_shape():
    import random

    rng = random.Random(1)
    for sample in ["Paris", "New York", "my sister", "BA117", "AAPL", "Oak Avenue 5", "jazz"]:
        for _ in range(20):
            v = D.made_up_like(rng, sample)
            assert len(v.split(" ")) == len(sample.split(" "))
            assert v[0].isupper() == sample[0].isupper()
            for made, real in zip(v.split(" "), sample.split(" "), strict=True):
                if any(c.isdigit() for c in real):  # codes keep their letter/digit layout
                    assert [c.isdigit() for c in made] == [c.isdigit() for c in real]
    assert D.made_up_like(rng, "my sister").startswith("my ")
    train = D.generate_split("train", 2000, seed=0)
    values = {
        v for e in train for a in e["answers"] for k, v in a["arguments"].items() if k == "location"
    }
    assert values - set(D.POOLS["cities"])  # made-up places occur
    plain = D.generate_split("train", 2000, seed=0, augment=False)
    assert plain != train
    assert {
        v for e in plain for a in e["answers"] for k, v in a["arguments"].items() if k == "location"
    } <= set(D.POOLS["cities"])


def test_training_small_talk_leaves_held_out_lines_unseen():
    held = D.CHITCHAT_HELD_OUT
    base = D.CHITCHAT_PLAIN
    assert len(D.CHITCHAT_TRAIN) > 200
    assert not {c.lower() for c in D.CHITCHAT_TRAIN} & {c.lower() for c in held}
    assert not any(D.too_close(c.lower(), held) for c in D.CHITCHAT_TRAIN)
    # some written lines were dropped for being a held-out line: the filter is live
    assert D.CHITCHAT_TRAIN[: len(base)] == base
    assert len(set(D.CHITCHAT_EXTRA)) > len(D.CHITCHAT_TRAIN) - len(base)
    train = D.generate_split("train", 3000, seed=0)
    talk = {e["query"] for e in train if not e["answers"]}
    assert any(c in q for q in talk for c in D.CHITCHAT_TRAIN[len(base) :])  # new lines are used


def test_numbers_are_sometimes_spelled_out_in_training():
    assert [D.spell_number(n) for n in (0, 7, 13, 20, 45, 99)] == [
        "zero", "seven", "thirteen", "twenty", "forty-five", "ninety-nine",
    ]  # fmt: skip
    assert D.spell_numbers("1 hour 10 minutes") == "one hour ten minutes"
    for keep in ["4:45 pm", "2026-07-27", "27.5 degrees", "$281", "22%", "BA117", "9pm", "150"]:
        assert D.spell_numbers(keep) == keep
    train = D.generate_split("train", 4000, seed=0)
    timers = [
        (e["query"], a["arguments"]["duration_seconds"])
        for e in train
        for a in e["answers"]
        if a["name"] == "set_timer"
    ]
    spelled = [(q, v) for q, v in timers if re.search(r"\b(one|two|five|ten|twenty)\b", q)]
    assert spelled and len(spelled) < len(timers) / 2
    plain = D.generate_split("test_phrasing", 400, seed=0)
    assert not any("forty-" in e["query"] or "twenty-" in e["query"] for e in plain)


def _load(name: str):
    return json.loads((ROOT / "training" / "templates" / f"{name}.json").read_text("utf-8"))


def test_held_out_sets_are_marked_in_the_data():
    """Held-out templates, kinds and small talk are named in the data files, not taken as
    the last entries of a list."""
    data = _load("kinds")
    entries = {e["name"]: e for e in data["kinds"]}
    assert data["held_out_kinds"] == D.HELDOUT_KINDS and set(D.HELDOUT_KINDS) <= set(entries)
    assert [k.name for k in D.TEST_KINDS] == data["held_out_kinds"]
    for k in D.KINDS:
        e = entries[k.name]
        assert k.test_templates() == [D.as_template(t) for t in e["held_out"]], k.name
        # training templates: the kind's own, then the added phrasings that were kept
        assert k.train_templates()[: len(e["train"])] == [D.as_template(t) for t in e["train"]]
        if k.name in D.HELDOUT_KINDS:
            assert not e["held_out"], k.name  # the whole kind is held out (test_tools)
        else:
            assert e["held_out"], k.name
    chitchat = _load("chitchat")
    assert chitchat["train"] == D.CHITCHAT_PLAIN and chitchat["held_out"] == D.CHITCHAT_HELD_OUT
    assert not {c.lower() for c in chitchat["train"]} & {c.lower() for c in chitchat["held_out"]}
    blind = _load("blind")
    for b in D.BLIND_KINDS:  # a blind kind's held-out templates are its blind.json ones
        written = [D.as_template(t) for t in blind[b.name]]
        assert all(t in written for t in b.test_templates()), b.name
        assert b.train_templates() == D.KIND_BY_NAME[b.name].train_templates()


def test_templates_use_their_kinds_slots():
    """Every placeholder of every template (own, added, blind) names a slot of its kind, and
    every slot names a known slot type and pool."""
    phrasings = _load("phrasings")
    sources = {"kinds": {e["name"]: e["train"] + e["held_out"] for e in _load("kinds")["kinds"]}}
    sources |= {"phrasings." + p: v for p, v in phrasings.items()} | {"blind": _load("blind")}
    for source, by_kind in sources.items():
        for name, templates in by_kind.items():
            k = D.KIND_BY_NAME[name]
            for t in templates:
                text, fixed = D.as_template(t)
                for slot in re.findall(r"\{(\w+)\}", text):
                    assert slot in k.slots, (source, name, text)
                assert set(fixed) <= set(k.tool["parameters"]["properties"]), (source, text)
    for e in _load("kinds")["kinds"]:
        for spec in e["slots"].values():
            assert spec["type"] in slots.SLOT_TYPES, spec
            assert "pool" not in spec or spec["pool"] in slots.POOLS, spec
