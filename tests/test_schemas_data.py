"""The schema-varied training data (training/schemas.py): valid, copied, unseen where it must be."""

from __future__ import annotations

import json
import random
import re

import pytest
from jsonschema import Draft202012Validator

from training import schemas as S
from training.data import HELDOUT_KINDS, KIND_BY_NAME, TRAIN_KINDS

N = 3000


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return S.generate(N, seed=3)


def by_source(seed: int, source: str, n: int = 400) -> list[dict]:
    return S.generate(n, seed=seed, mix={source: 1.0})


def test_deterministic():
    a = S.generate(300, seed=5)
    b = S.generate(300, seed=5)
    assert json.dumps(a) == json.dumps(b)
    assert json.dumps(a) != json.dumps(S.generate(300, seed=6))


def test_answers_validate_against_their_tools(examples):
    assert len(examples) == N
    for ex in examples:
        tools = {t["name"]: t for t in ex["tools"]}
        assert len(tools) == len(ex["tools"]), "tool names are unique in a list"
        for call in ex["answers"]:
            tool = tools[call["name"]]
            Draft202012Validator(tool["parameters"]).validate(call["arguments"])
            required = tool["parameters"].get("required", [])
            assert set(required) <= set(call["arguments"])
            keys = list(call["arguments"])
            props = list(tool["parameters"]["properties"])
            order = [k for k in props if k in required] + [k for k in props if k not in required]
            assert keys == [k for k in order if k in call["arguments"]], "required keys first"


def test_generated_string_values_are_copied_from_the_query():
    """Strings are copied, except dates (said in words, answered ISO), times and enums."""
    checked = 0
    for ex in by_source(1, "generated", 1500):
        for call in ex["answers"]:
            schema = next(t for t in ex["tools"] if t["name"] == call["name"])["parameters"]
            for key, value in call["arguments"].items():
                prop = schema["properties"][key]
                if prop.get("type") != "string" or "enum" in prop:
                    continue
                if re.fullmatch(r"\d{4}-\d\d-\d\d|\d\d:\d\d", value):
                    continue
                assert value in ex["query"], (value, ex["query"])
                checked += 1
    assert checked > 500


def test_every_kind_of_example_is_made(examples):
    counts = {"none": 0, "one": 0, "two": 0, "masked": 0, "one_tool": 0, "camel": 0}
    for ex in examples:
        counts[{0: "none", 1: "one"}.get(len(ex["answers"]), "two")] += 1
        names = [t["name"] for t in ex["tools"]]
        counts["masked"] += any(
            re.fullmatch(r"[a-z]+_[a-z0-9]{2,4}\d*", n)
            and n.split("_")[0] in ("fn", "tool", "func", "op", "call", "action", "endpoint", "cmd")
            for n in names
        )
        counts["one_tool"] += len(names) == 1
        counts["camel"] += any(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+", n) for n in names)
    for k, v in counts.items():
        assert v > N * 0.02, (k, counts)


def test_rewritten_kinds_convert_their_answers():
    """A rewritten tool keeps the request, renames keys and converts units and enum cases."""
    vocab = S.load_vocab()
    timer = KIND_BY_NAME["set_timer"].tool
    seen_ms = seen_minutes = 0
    for seed in range(300):
        rng = random.Random(seed)
        rw = S.rewrite_tool(rng, vocab, timer, set())
        new_key = rw.keys["duration_seconds"]
        assert new_key, "required parameters are never dropped"
        args = rw.answer({"duration_seconds": 90, "label": "tea"})
        assert set(args) <= set(rw.definition["parameters"]["properties"])
        Draft202012Validator(rw.definition["parameters"]).validate(args)
        desc = rw.definition["parameters"]["properties"][new_key].get("description", "")
        if "milliseconds" in desc:
            assert args[new_key] == 90000
            seen_ms += 1
        elif "minutes" in desc:
            assert args[new_key] == 1.5
            seen_minutes += 1
        else:
            assert args[new_key] == 90
    assert seen_ms and seen_minutes


def test_names_take_many_styles():
    assert S.styled(["get", "weather"], "camel") == "getWeather"
    assert S.styled(["get", "weather"], "pascal") == "GetWeather"
    assert S.styled(["get", "weather"], "kebab") == "get-weather"
    assert S.split_words("getCurrentWeather") == ["get", "current", "weather"]
    assert S.split_words("weather.get_now") == ["weather", "get", "now"]


def test_held_out_tool_kinds_stay_unseen():
    """Nothing in the vocabulary is about the six tool kinds of the test_tools split, and no
    generated or rewritten tool carries one of their names."""
    vocab = S.load_vocab()
    banned = re.compile(r"volume|flight|vacuum|parcel|package|shipment|recipe|time ?zone|clock")
    for a in vocab.actions:
        text = " ".join([a.obj, *a.obj_names, a.verb, *(p.key + " " + p.label for p in a.params)])
        assert not banned.search(text.lower()), text
    trained = {k.name for k in TRAIN_KINDS}
    for ex in S.generate(2000, seed=11):
        for t in ex["tools"]:
            assert t["name"] not in HELDOUT_KINDS
        for call in ex["answers"]:
            assert call["name"] not in HELDOUT_KINDS
    assert not trained & set(HELDOUT_KINDS)


def test_no_bfcl_function_name_is_generated():
    """Generated and rewritten tools never take a BFCL function name.  The original trained
    kinds keep their own names (a few generic ones, such as get_weather, happen to be BFCL
    names too; see README, "BFCL")."""
    vocab = S.load_vocab()
    assert len(vocab.blocklist) > 1000, "the BFCL blocklist is shipped"
    for ex in S.generate(3000, seed=13, mix={"generated": 0.7, "rewritten": 0.3}):
        for t in ex["tools"]:
            assert S.name_key(t["name"]) not in vocab.blocklist
    trained = {k.name for k in TRAIN_KINDS}
    for ex in S.generate(500, seed=13, mix={"original": 1.0}):
        assert {t["name"] for t in ex["tools"]} <= trained


def test_no_fit_share_and_near_misses():
    """``no_fit`` sets the share of generated requests that no listed tool handles (the
    default, 0.1, gives the data the shipped models were trained on); ``near_miss`` makes
    them ask another action of an object the list has."""
    vocab = S.load_vocab()

    def empty_share(exs: list[dict]) -> float:
        return sum(not e["answers"] for e in exs) / len(exs)

    plain = S.generate(2000, seed=4, mix={"generated": 1.0})
    more = S.generate(2000, seed=4, mix={"generated": 1.0}, no_fit=0.3)
    assert empty_share(plain) < 0.2 < empty_share(more)
    rng = random.Random(1)
    near = [
        e
        for _ in range(200)
        for e in S.generated_group(rng, vocab, 12, no_fit=1.0, near_miss=1.0)
        if not e["answers"]
    ]
    assert near
    objects = {a.obj for a in vocab.actions}
    listed = 0
    for e in near:
        # the request names an object of one of the listed tools' objects
        text = e["query"].lower()
        named = {o for o in objects if o.lower() in text}
        tool_text = json.dumps(e["tools"]).lower()
        listed += any(o.lower() in tool_text for o in named)
    assert listed / len(near) > 0.5


def _flatten(arguments: dict, parameters: dict) -> dict:
    out = {}
    for key, value in arguments.items():
        schema = parameters["properties"][key]
        if schema.get("type") == "object" and isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def test_nested_declarations_nest_their_answers():
    """--nest moves a run of parameters into one object; answers nest the same arguments,
    validate against the nested schema (keys required first at every level), and flatten back
    to arguments the flat declaration accepts."""
    flat = S.generate(600, seed=8)
    assert json.dumps(flat) == json.dumps(S.generate(600, seed=8, nest=0.0)), "0 draws nothing"
    nested = S.generate(600, seed=8, nest=1.0)
    nested_calls = 0
    for ex in nested:
        tools = {t["name"]: t for t in ex["tools"]}
        for t in ex["tools"]:
            props = t["parameters"]["properties"]
            objects = [k for k, s in props.items() if s.get("type") == "object"]
            assert len(objects) <= 1
            if objects:
                inner = props[objects[0]]
                assert len(inner["properties"]) >= 2
                assert (objects[0] in t["parameters"].get("required", [])) == bool(
                    inner.get("required")
                ), "the object is required exactly when a parameter it holds is"
        for call in ex["answers"]:
            params = tools[call["name"]]["parameters"]
            Draft202012Validator(params).validate(call["arguments"])
            for key, value in call["arguments"].items():
                if isinstance(value, dict):
                    nested_calls += 1
                    assert value, "an object with nothing in it is left out"
                    inner = params["properties"][key]
                    required = inner.get("required", [])
                    order = [k for k in inner["properties"] if k in required]
                    order += [k for k in inner["properties"] if k not in required]
                    assert list(value) == [k for k in order if k in value]
            assert set(_flatten(call["arguments"], params)) >= {
                k
                for k in params.get("required", [])
                if params["properties"][k].get("type") != "object"
            }
    assert nested_calls > 300


def test_nesting_keeps_every_argument():
    from copy import deepcopy

    from training.schemas_nesting import nest_group

    vocab = S.load_vocab("train")
    rng = random.Random(4)
    moved = 0
    for _ in range(40):
        group = S.generated_group(rng, vocab, 8)
        nested = deepcopy(group)
        nest_group(random.Random(rng.random()), vocab, nested, 1.0)
        for flat, deep in zip(group, nested, strict=True):
            assert flat["query"] == deep["query"]
            for a, b in zip(flat["answers"], deep["answers"], strict=True):
                params = next(t for t in deep["tools"] if t["name"] == b["name"])["parameters"]
                assert _flatten(b["arguments"], params) == a["arguments"]
                moved += a["arguments"] != b["arguments"]
    assert moved > 50


def test_nested_object_keys_come_from_the_vocabulary():
    keys = {S.name_key(k) for k in S.load_vocab("train").concepts["nest_keys"]}
    for ex in S.generate(300, seed=9, nest=1.0):
        for t in ex["tools"]:
            for key, schema in t["parameters"]["properties"].items():
                if schema.get("type") == "object":
                    assert S.name_key(key) in keys, key


def test_redeclared_generated_tools_convert_their_answers():
    """--redeclare rewrites generated tools as the trained kinds are rewritten: answers still
    validate (enum values in the new capitals, dropped keys gone), names change, and a share
    of 0 draws nothing."""
    base = S.generate(400, seed=12, mix={"generated": 1.0})
    assert json.dumps(base) == json.dumps(
        S.generate(400, seed=12, mix={"generated": 1.0}, redeclare=0.0)
    )
    redeclared = S.generate(400, seed=12, mix={"generated": 1.0}, redeclare=1.0)
    recased = 0
    for ex in redeclared:
        tools = {t["name"]: t for t in ex["tools"]}
        assert len(tools) == len(ex["tools"])
        for call in ex["answers"]:
            params = tools[call["name"]]["parameters"]
            Draft202012Validator(params).validate(call["arguments"])
            for key, value in call["arguments"].items():
                enum = params["properties"][key].get("enum")
                if enum and isinstance(value, str) and value != value.lower():
                    recased += 1
    assert recased > 20


def test_runs_followed_are_the_runs_an_answer_goes_on_after():
    from training.schemas_nesting import _runs_followed

    # Answers give "a" (required) first, then "c": nesting "a" and "b" leaves "c" after the
    # nested object; nesting "b" and "c" leaves nothing after it ("a" comes first).
    assert _runs_followed(["a", "b", "c"], {"a"}, {"c"}) == [(0, 2)]
    assert _runs_followed(["a", "b", "c"], {"a"}, set()) == []
    assert _runs_followed(["a", "b"], {"a", "b"}, {"a", "b"}) == []
    # A required run at the end still has the optional arguments after it.
    assert (1, 2) in _runs_followed(["a", "b", "c"], {"b", "c"}, {"a"})


def _nested_followed(examples: list[dict]) -> tuple[int, int]:
    """(nested-object arguments with another argument after them, all of them)."""
    followed = total = 0
    for ex in examples:
        for call in ex["answers"]:
            keys = list(call["arguments"])
            for position, key in enumerate(keys):
                if isinstance(call["arguments"][key], dict):
                    total += 1
                    followed += position < len(keys) - 1
    return followed, total


def test_nest_after_gives_answers_that_go_on_after_the_nested_object():
    """--nest-after: more nested objects with an argument after them (runs drawn evenly
    mostly end the answer), answers still valid; a share of 0 draws nothing."""
    options = {"mix": {"generated": 1.0}, "nest": 1.0}
    base = S.generate(600, seed=31, **options)
    assert json.dumps(base) == json.dumps(S.generate(600, seed=31, nest_after=0.0, **options))
    after = S.generate(600, seed=31, nest_after=1.0, **options)
    for ex in after:
        tools = {t["name"]: t for t in ex["tools"]}
        for call in ex["answers"]:
            Draft202012Validator(tools[call["name"]]["parameters"]).validate(call["arguments"])
    base_followed, base_total = _nested_followed(base)
    followed, total = _nested_followed(after)
    assert base_total > 100 and total > 100
    assert followed / total > 2 * base_followed / base_total, (followed, total, base_followed)
