"""Synthetic examples over the tool kinds: one request with its own tool list
(:func:`make_example`: one call, two calls, no fitting tool, small talk), or a group of
requests sharing one tool list (:func:`make_group`), with distractor tools around the
targets."""

from __future__ import annotations

import random

from .data_chitchat import CHITCHAT_HELD_OUT, CHITCHAT_PLAIN, CHITCHAT_TRAIN
from .data_variation import JOINERS, _decorate, vary_template
from .kinds import KIND_BY_NAME, KINDS, RELATED, SHIPPED, Kind, Template

SHIPPED_ORDER = list(SHIPPED)


def _distractors(
    rng: random.Random, pool: list[Kind], exclude: set[str], n: int, allow_generic: bool = True
) -> list[Kind]:
    cands = [k for k in pool if k.name not in exclude and (allow_generic or k.name not in RELATED)]
    return rng.sample(cands, min(n, len(cands)))


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
