"""Groups of generated kinds: several requests over one generated tool list (the target
action, some of its object's other actions, unrelated tools); requests for one tool, two
tools or the same tool twice, requests no listed tool handles, and small talk."""

from __future__ import annotations

import random
from typing import Any

from . import data as D
from .schemas_requests import request_for
from .schemas_tools import make_tool
from .schemas_vocab import Example, Vocab


def n_tools(rng: random.Random) -> int:
    """How many tools a list offers: 1 (25%), 2-4 (40%) or 5-10."""
    r = rng.random()
    if r < 0.25:
        return 1
    if r < 0.65:
        return rng.randint(2, 4)
    return rng.randint(5, 10)


JOINERS = [" and ", " and also ", ", then ", ". Also ", " and then ", "; ", ". After that, "]


def generated_group(
    rng: random.Random,
    vocab: Vocab,
    size: int,
    no_fit: float = 0.1,
    near_miss: float = 0.0,
    chitchat: float = 0.04,
) -> list[Example]:
    """A group over one generated tool list.  ``no_fit``: share of requests no tool in the
    list handles; of those, ``near_miss`` ask another action of an object the list has (the
    list can *book* a class, the request *cancels* one), the rest another object.
    ``chitchat``: share of small talk.  The other kinds of request share the rest in the
    proportions they have at the defaults."""
    target = rng.choice(vocab.actions)
    n = n_tools(rng)
    chosen = [target]
    siblings = [a for a in vocab.by_object[target.object_id] if a is not target]
    rng.shuffle(siblings)
    for a in siblings:
        if len(chosen) < n and rng.random() < 0.6:
            chosen.append(a)
    while len(chosen) < n:
        a = rng.choice(vocab.actions)
        if a not in chosen:
            chosen.append(a)
    rng.shuffle(chosen)
    taken: set[str] = set()
    tools = [make_tool(rng, vocab, a, taken) for a in chosen]
    definitions = [t.definition for t in tools]
    objects = {a.object_id for a in chosen}
    out: list[Example] = []
    absent = [a for o in objects for a in vocab.by_object[o] if a not in chosen]
    shift = no_fit + chitchat - 0.14  # the thresholds below are those of the defaults
    for _ in range(size):
        draw = rng.random()
        r = draw - shift
        if draw < no_fit:  # a request no tool in the list handles
            if near_miss and absent and rng.random() < near_miss:
                other = rng.choice(absent)
            else:
                other = rng.choice(vocab.actions)
                if other.object_id in objects:
                    continue
            q, _ = request_for(rng, vocab, make_tool(rng, vocab, other, set()))
            answers: list[dict[str, Any]] = []
        elif draw < no_fit + chitchat:
            q, answers = rng.choice(D.CHITCHAT_TRAIN), []
        elif r < 0.26 and len(tools) >= 2:
            t1, t2 = rng.sample(tools, 2)
            q1, a1 = request_for(rng, vocab, t1)
            q2, a2 = request_for(rng, vocab, t2)
            q = q1 + rng.choice(JOINERS) + q2
            answers = [
                {"name": t1.definition["name"], "arguments": a1},
                {"name": t2.definition["name"], "arguments": a2},
            ]
        elif r < 0.31:  # the same tool twice
            t = rng.choice(tools)
            q1, a1 = request_for(rng, vocab, t)
            q2, a2 = request_for(rng, vocab, t)
            if a1 == a2:
                continue
            q = q1 + rng.choice(JOINERS) + q2
            answers = [
                {"name": t.definition["name"], "arguments": a1},
                {"name": t.definition["name"], "arguments": a2},
            ]
        else:
            t = rng.choice(tools)
            q, a = request_for(rng, vocab, t)
            answers = [{"name": t.definition["name"], "arguments": a}]
        out.append({"query": _decorate(rng, q, answers), "tools": definitions, "answers": answers})
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [x for v in value for x in _strings(v)]
    return []


def _decorate(rng: random.Random, query: str, answers: list[dict[str, Any]]) -> str:
    """Prefix, suffix and capitals as :func:`training.data._decorate` adds them, unless that
    would change a value the answer copies from the query."""
    decorated = D._decorate(rng, query, augment=True)
    copied = [v for a in answers for x in a["arguments"].values() for v in _strings(x)]
    if all(v in decorated for v in copied if v in query):
        return decorated
    return query
