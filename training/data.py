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
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from workers.prompts import NeedlePromptFormat
from workers.toolset import ToolSchemaError, normalize_tools

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
    "HELDOUT_KINDS",
    "KINDS",
    "KIND_BY_NAME",
    "POOLS",
    "SHIPPED",
    "SKIPPED_PHRASINGS",
    "TEST_KINDS",
    "TRAIN_KINDS",
    "VOCABULARY",
    "Kind",
    "Pick",
    "as_template",
    "date_value",
    "duration_seconds",
    "format_answer",
    "format_prompt",
    "generate_split",
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

# --------------------------------------------------------------------------------------------
# Prompt and answer text.  The prompt is the serving one: the pipeline's worker normalises a
# request's tools with workers.toolset.normalize_tools and renders them with
# workers.prompts.NeedlePromptFormat, and so does training.

_PROMPT_FORMAT = NeedlePromptFormat()


@functools.lru_cache(maxsize=4096)
def _normalized_tool(tool_json: bytes) -> dict[str, Any]:
    return normalize_tools([orjson.loads(tool_json)])[0]


def _prompt_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``tools`` as the worker puts them in the prompt (:func:`workers.toolset.
    normalize_tools`: bare ``{name, description, parameters}``, defaults filled in, OpenAI
    ``{"type": "function", "function": ...}`` unwrapped), each distinct tool checked once
    (so the dicts are shared between calls: read them, do not change them)."""
    try:
        normalized = [_normalized_tool(orjson.dumps(tool)) for tool in tools]
    except (ToolSchemaError, TypeError):  # (orjson.JSONEncodeError is a TypeError)
        normalized = []
    if len(normalized) != len(tools) or len({t["name"] for t in normalized}) != len(tools):
        return normalize_tools(tools)  # the worker's own check, with its error message
    return normalized


def format_prompt(tools: Sequence[Mapping[str, Any]], query: str) -> str:
    """``<tools>[...]</tools><query>...</query>``, byte for byte the prompt the pipeline's
    worker renders for these tools and query; the model continues with the answer."""
    return _PROMPT_FORMAT.render(_prompt_tools(tools), query)


def format_answer(answers: list[dict], tools: list[dict] | None = None) -> str:
    """The answer the model learns to write: compact JSON, arguments in grammar order."""
    by_name = {t["name"]: t for t in tools or []}
    calls = []
    for a in answers:
        params = by_name.get(a["name"], {}).get("parameters", {})
        calls.append({"name": a["name"], "arguments": order_arguments(a["arguments"], params)})
    return json.dumps(calls, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Variation: prefixes and suffixes, and training-time paraphrases of templates.

_VARIATION: dict[str, Any] = load_templates("variation")
PREFIXES: list[str] = _VARIATION["prefixes"]
SUFFIXES: list[str] = _VARIATION["suffixes"]
# Wider variety used only on training data (``augment``): test phrasings stay unseen.
MORE_PREFIXES: list[str] = _VARIATION["more_prefixes"]
MORE_SUFFIXES: list[str] = _VARIATION["more_suffixes"]
# [pattern, replacements] applied to a template's own words, never to slot values, and only
# where the meaning (and so the answer) cannot change.
SYNONYMS: list[tuple[str, list[str]]] = [(p, alts) for p, alts in _VARIATION["synonyms"]]
FILLERS: list[str] = _VARIATION["fillers"]
JOINERS: list[str] = _VARIATION["joiners"]  # between the two requests of a two-call query


def _vary_words(rng: random.Random, text: str) -> str:
    for pattern, alternatives in SYNONYMS:
        if rng.random() < 0.5:
            text = re.sub(pattern, lambda m, alt=alternatives: m.expand(rng.choice(alt)), text)
    if rng.random() < 0.12:  # telegraphic: no articles
        text = re.sub(r"\b(the|a|an) ", "", text)
    if rng.random() < 0.05:  # one typo: two neighbouring letters swapped
        words = [m for m in re.finditer(r"[a-z]{5,}", text)]
        if words:
            m = rng.choice(words)
            i = rng.randrange(m.start(), m.end() - 1)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def vary_template(
    rng: random.Random, template: Template, avoid: list[str] | None = None
) -> Template:
    """Training-time paraphrase of a template: synonyms, dropped articles, a filler word, a
    typo; slot placeholders and the fixed arguments stay as they are.  A paraphrase that
    comes near one of ``avoid`` (the kind's held-out templates) is not used."""
    for _ in range(3):
        varied = _vary_template(rng, template)
        if not avoid or not too_close(varied[0], avoid):
            return varied
    return template


def _vary_template(rng: random.Random, template: Template) -> Template:
    text, fixed = template
    parts = re.split(r"(\{\w+\})", text)
    parts = [p if i % 2 else _vary_words(rng, p) for i, p in enumerate(parts)]
    text = "".join(parts)
    if rng.random() < 0.12:
        gaps = [m.start() for m in re.finditer(r" ", text)]
        if gaps:
            i = rng.choice(gaps)
            text = text[:i] + " " + rng.choice(FILLERS) + text[i:]
    return text, fixed


def _decorate(rng: random.Random, query: str, augment: bool = False) -> str:
    if augment and rng.random() < 0.3:
        p = rng.choice(MORE_PREFIXES)
        s = rng.choice(MORE_SUFFIXES)
    else:
        p = rng.choice(PREFIXES)
        s = rng.choice(SUFFIXES)
    q = p + query + s
    if rng.random() < 0.35:
        q = q[0].upper() + q[1:]
    return q


def _distractors(
    rng: random.Random, pool: list[Kind], exclude: set[str], n: int, allow_generic: bool = True
) -> list[Kind]:
    cands = [k for k in pool if k.name not in exclude and (allow_generic or k.name not in RELATED)]
    return rng.sample(cands, min(n, len(cands)))


# --------------------------------------------------------------------------------------------
# Small talk: requests no tool should answer.

_CHITCHAT: dict[str, list[str]] = load_templates("chitchat")
CHITCHAT_PLAIN = _CHITCHAT["train"]  # train and valid
CHITCHAT_HELD_OUT = _CHITCHAT["held_out"]  # test splits
CHITCHAT = CHITCHAT_PLAIN + CHITCHAT_HELD_OUT
# Training-only lines, used in augmented training data, minus near copies of held-out ones.
CHITCHAT_EXTRA = _CHITCHAT["train_extra"]
_KNOWN_CHITCHAT = {c.lower() for c in CHITCHAT}
CHITCHAT_TRAIN = CHITCHAT_PLAIN + [
    c
    for c in dict.fromkeys(CHITCHAT_EXTRA)
    if c.lower() not in _KNOWN_CHITCHAT and not too_close(c.lower(), CHITCHAT_HELD_OUT)
]

# --------------------------------------------------------------------------------------------
# Examples and splits

SHIPPED_ORDER = list(SHIPPED)


def _n_distractors(rng: random.Random) -> int:
    if rng.random() < 0.25:
        return rng.randint(6, 10)
    return rng.randint(2, 5)


def _tool_list(
    rng: random.Random, targets: list[Kind], distract_pool: list[Kind], n: int
) -> list[dict]:
    """Targets plus distractors in random order; sometimes exactly the shipped tool list."""
    names = {k.name for k in targets}
    if (
        SHIPPED_ORDER
        and names <= set(SHIPPED_ORDER)
        and rng.random() < 0.2
        and all(KIND_BY_NAME[s] in distract_pool or s in names for s in SHIPPED_ORDER)
    ):
        return [KIND_BY_NAME[s].tool for s in SHIPPED_ORDER]
    ds = _distractors(rng, distract_pool, names, n)
    tools = [*targets, *ds]
    rng.shuffle(tools)
    return [t.tool for t in tools]


def make_example(
    rng: random.Random,
    targets: list[Kind],
    distract_pool: list[Kind],
    use_test_templates: bool,
    chitchat: bool = True,
) -> dict:
    def templ(k: Kind) -> Template:
        ts = k.test_templates() if use_test_templates else k.train_templates()
        if not ts:
            ts = k.templates
        return rng.choice(ts)

    r = rng.random()
    if r < 0.04 and chitchat:  # small talk: no tool fits
        pool = CHITCHAT_HELD_OUT if use_test_templates else CHITCHAT_PLAIN
        q = rng.choice(pool)
        if rng.random() < 0.3 and SHIPPED_ORDER:
            tools = [KIND_BY_NAME[s].tool for s in SHIPPED_ORDER]
        else:
            tools = [
                d.tool
                for d in _distractors(
                    rng, distract_pool, set(), _n_distractors(rng), allow_generic=False
                )
            ]
        return {"query": _decorate(rng, q), "tools": tools, "answers": []}
    if r < 0.14:  # no matching tool
        k = rng.choice(targets)
        q, _ = k.render(rng, templ(k))
        excl = {x.name for x in KINDS if x.group == k.group}
        shipped_groups = {KIND_BY_NAME[s].group for s in SHIPPED_ORDER}
        if rng.random() < 0.25 and SHIPPED_ORDER and k.group not in shipped_groups:
            tools = [KIND_BY_NAME[s].tool for s in SHIPPED_ORDER]
        else:
            tools = [
                d.tool
                for d in _distractors(
                    rng, distract_pool, excl, _n_distractors(rng), allow_generic=False
                )
            ]
        return {"query": _decorate(rng, q), "tools": tools, "answers": []}
    if r < 0.26:  # two calls
        k1, k2 = rng.sample(targets, 2)
        q1, a1 = k1.render(rng, templ(k1))
        q2, a2 = k2.render(rng, templ(k2))
        joiner = rng.choice(JOINERS)
        query = q1 + joiner + q2
        tools = _tool_list(rng, [k1, k2], distract_pool, max(1, _n_distractors(rng) - 1))
        return {
            "query": _decorate(rng, query),
            "tools": tools,
            "answers": [{"name": k1.name, "arguments": a1}, {"name": k2.name, "arguments": a2}],
        }
    k = rng.choice(targets)
    q, a = k.render(rng, templ(k))
    tools = _tool_list(rng, [k], distract_pool, _n_distractors(rng))
    return {
        "query": _decorate(rng, q),
        "tools": tools,
        "answers": [{"name": k.name, "arguments": a}],
    }


def make_group(
    rng: random.Random,
    targets: list[Kind],
    use_test_templates: bool,
    size: int,
    augment: bool = False,
) -> list[dict]:
    """``size`` examples that share one tool list (cheap to train on: the trainer packs
    examples with the same tool list into one sequence).  ``augment`` paraphrases templates
    (:func:`vary_template`) and makes up a quarter of the copied values."""
    fresh = 0.25 if augment else 0.0
    if use_test_templates:
        chitchat = CHITCHAT_HELD_OUT
    else:
        chitchat = CHITCHAT_TRAIN if augment else CHITCHAT_PLAIN

    def templ(k: Kind) -> Template:
        ts = k.test_templates() if use_test_templates else k.train_templates()
        t = rng.choice(ts or k.templates)
        if not augment:
            return t
        return vary_template(rng, t, [h for h, _ in k.test_templates()])

    def decorate(q: str) -> str:
        return _decorate(rng, q, augment)

    if SHIPPED_ORDER and rng.random() < 0.2:
        kinds = [KIND_BY_NAME[s] for s in SHIPPED_ORDER]
    else:
        kinds = rng.sample(targets, min(len(targets), _n_distractors(rng) + 1))
    names = {k.name for k in kinds}
    groups = {k.group for k in kinds}
    absent = [k for k in targets if k.group not in groups]
    can_abstain = not (names & RELATED) and absent
    tools = [k.tool for k in kinds]
    out = []
    for _ in range(size):
        r = rng.random()
        if r < 0.04 and can_abstain:
            out.append({"query": decorate(rng.choice(chitchat)), "tools": tools, "answers": []})
        elif r < 0.14 and can_abstain:
            k = rng.choice(absent)
            q, _ = k.render(rng, templ(k), fresh)
            out.append({"query": decorate(q), "tools": tools, "answers": []})
        elif r < 0.27 and len(kinds) >= 2:
            k1, k2 = rng.sample(kinds, 2)
            q1, a1 = k1.render(rng, templ(k1), fresh)
            q2, a2 = k2.render(rng, templ(k2), fresh)
            joiner = rng.choice(JOINERS)
            out.append(
                {
                    "query": decorate(q1 + joiner + q2),
                    "tools": tools,
                    "answers": [
                        {"name": k1.name, "arguments": a1},
                        {"name": k2.name, "arguments": a2},
                    ],
                }
            )
        else:
            k = rng.choice(kinds)
            q, a = k.render(rng, templ(k), fresh)
            out.append(
                {
                    "query": decorate(q),
                    "tools": tools,
                    "answers": [{"name": k.name, "arguments": a}],
                }
            )
    return out


def _canon_answers(ex: dict) -> dict:
    ex["answers"] = json.loads(format_answer(ex["answers"], ex["tools"]))
    return ex


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
