"""Groups of hand-written kinds: several requests over one tool list, from the data files in
``training/written/`` (the format of :mod:`training.written_spec`).

The generated kinds (:mod:`training.schemas_groups`) teach reading a schema, but their
requests are composed from phrase lists ("sign up for the trademark called X of Y") and
their definitions from one naming scheme. The written kinds are what real traffic looks
like: tools as different API authors declare them (wrappers, namespaces, units, enum
codes, nesting) and requests as people type them, with values to convert and several
values of one type to bind to the right keys. The kinds avoid the trained and held-out
kinds and the held-out objects of ``valid_unseen`` and ``valid_written``
(``tests/test_written_data.py``)."""

from __future__ import annotations

import copy
import functools
import random
from pathlib import Path
from typing import Any

from .schemas_groups import n_tools
from .schemas_vocab import Example
from .written_spec import (
    Requests,
    Rewrite,
    Spec,
    SpecError,
    draw,
    ends_in_slot,
    join_requests,
    load_spec,
    render,
)

WRITTEN_DIR = Path(__file__).resolve().parent / "written"
TWO_CALLS = 0.12  # share of requests that ask two listed tools at once
SAME_TWICE = 0.05  # share that ask one listed tool twice (BFCL calls this "parallel")


@functools.cache
def load_written(directory: str = str(WRITTEN_DIR)) -> tuple[Spec, ...]:
    """Every data file of ``directory``, in name order, checked as it loads."""
    specs = tuple(load_spec(p) for p in sorted(Path(directory).glob("*.json")))
    if not specs:
        raise SpecError(f"no written kinds (*.json) in {directory}")
    return specs


def _tool_list(rng: random.Random, spec: Spec) -> list[Rewrite]:
    """1-10 rewrites of distinct kinds, no two of which could serve each other's request."""
    n = n_tools(rng)
    kinds = [rng.choice(spec.kinds)]
    candidates = [k for k in spec.kinds if k != kinds[0]]
    rng.shuffle(candidates)
    for kind in candidates:
        if len(kinds) >= n:
            break
        if not any(kind in spec.conflicts[k] for k in kinds):
            kinds.append(kind)
    return [rng.choice(spec.by_kind[k]) for k in kinds]


def _unserved(
    rng: random.Random, spec: Spec, offered: list[Rewrite], requests: Requests, used: set[str]
) -> str | None:
    """A request no listed tool serves: one of the file's ``no_fit`` requests whose
    ``exclude`` misses the list, or a request of a kind not listed and in conflict with none
    listed. None when the draw cannot give one."""
    listed = {rw.kind for rw in offered}
    if spec.no_fit and rng.random() < 0.5:
        nf = rng.choice(spec.no_fit)
        if nf.exclude & listed:
            return None
        return render(nf.template, draw(nf.template, rng))[0]
    blocked = set(listed).union(*(spec.conflicts[k] for k in listed))
    pool = [k for k in spec.kinds if k not in blocked]
    if not pool:
        return None
    return requests.request(rng.choice(spec.by_kind[rng.choice(pool)]), used)[0]


def _same_twice(
    rng: random.Random, offered: list[Rewrite], requests: Requests
) -> tuple[str | None, list[dict[str, Any]]]:
    """Two requests of one listed tool as one line; None where both calls came out alike."""
    rw = rng.choice(offered)
    qa, ca, ta = requests.request(rw, set())
    qb, cb, _ = requests.request(rw, {qa})
    if ca == cb:
        return None, []
    return join_requests(qa, qb, ends_in_slot(ta.text), rng), [ca, cb]


def written_group(
    rng: random.Random, specs: tuple[Spec, ...], size: int, no_fit: float = 0.1
) -> list[Example]:
    """Up to ``size`` requests over one tool list of a file drawn by its number of kinds:
    ``no_fit`` of them served by no listed tool (answer ``[]``), :data:`TWO_CALLS` asking
    two listed tools at once, :data:`SAME_TWICE` one listed tool twice (and the two-tool share
    where one tool is listed), the rest one call; no query twice."""
    spec = rng.choices(specs, [len(s.kinds) for s in specs])[0]
    offered = _tool_list(rng, spec)
    tools = [copy.deepcopy(rw.tool) for rw in offered]
    requests = Requests(rng)
    used: set[str] = set()
    out: list[Example] = []
    for _ in range(size):
        d = rng.random()
        answers: list[dict[str, Any]] = []
        try:
            if d < no_fit:
                query = _unserved(rng, spec, offered, requests, used)
            elif d < no_fit + TWO_CALLS and len(offered) >= 2:
                query, answers = requests.joined(*rng.sample(offered, 2))
            elif d < no_fit + TWO_CALLS + SAME_TWICE:
                query, answers = _same_twice(rng, offered, requests)
            else:
                query, call, _ = requests.request(rng.choice(offered), used)
                answers = [call]
        except SpecError:  # a rewrite whose requests this group has all used
            continue
        if query is None or query in used:
            continue
        used.add(query)
        out.append({"query": query, "tools": tools, "answers": answers})
    return out
