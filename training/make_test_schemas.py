"""The ``test_schemas`` split: the 41 trained tool kinds under *rewritten* tool definitions.

``python -m training.make_test_schemas OUT.jsonl [--seed 0] [--n 400]`` writes ``n`` lines
``{"query", "tools", "answers": [{"name", "arguments"}]}``, the same bytes for the same seed.
The stored split is ``training/data/test_schemas.jsonl`` (seed 0, 400 lines).

Data file (``training/heldout/test_schemas.json``), written from the trained schemas alone,
apart from the training templates, in the format of :mod:`training.written_spec` (each
trained kind with two ``rewrites``, each a tool as a user would send it and its request
templates; ``conflicts``; ``no_fit``). ``--data`` takes another file of that format: the
validation split ``valid_written`` is made that way.

Lines: 8% answer ``[]`` (half requests from ``no_fit``, half a kind's request offered
without that kind), 10% ask for two things at once (two calls, to two tools of the list),
the rest one call, every rewrite taking an equal share. Each list offers the target
rewrite(s) plus 2-7 distractors (2-6 with two targets; 3-8 tools when nothing fits), each a
rewrite of another kind, at most one rewrite per kind, in shuffled order.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .written_spec import (
    TRIES,
    NoFit,
    Requests,
    Rewrite,
    Spec,
    SpecError,
    draw,
    load_spec,
    render,
    unwrap,
)

__all__ = ["DATA_FILE", "STORED_SPLIT", "SpecError", "generate", "generate_text", "main", "unwrap"]

DATA_FILE = Path(__file__).resolve().parent / "heldout" / "test_schemas.json"
STORED_SPLIT = Path(__file__).resolve().parent / "data" / "test_schemas.jsonl"

NO_CALL_SHARE = 0.08
TWO_CALL_SHARE = 0.10
DISTRACTORS = (2, 7)
DISTRACTORS_TWO = (2, 6)
TOOLS_NO_FIT = (3, 8)


class _Builder:
    def __init__(self, spec: Spec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.used: set[str] = set()
        self.requests = Requests(rng)

    def tools(self, targets: Sequence[Rewrite], avoid: set[str], k: int) -> list[dict[str, Any]]:
        """The targets' tools plus ``k`` distractors of other, non-conflicting kinds."""
        blocked = set(avoid)
        for rw in targets:
            blocked |= {rw.kind} | self.spec.conflicts[rw.kind]
        pool = [kind for kind in self.spec.kinds if kind not in blocked]
        if len(pool) < k:
            raise SpecError(f"only {len(pool)} distractor kinds for {[t.name for t in targets]}")
        chosen = [self.rng.choice(self.spec.by_kind[kind]) for kind in self.rng.sample(pool, k)]
        offered = [rw.tool for rw in (*targets, *chosen)]
        self.rng.shuffle(offered)
        return copy.deepcopy(offered)

    def line(self, query: str, tools: list[dict[str, Any]], answers: list[Any]) -> dict[str, Any]:
        if query in self.used:
            raise SpecError(f"duplicate query {query!r}")
        self.used.add(query)
        return {"query": query, "tools": tools, "answers": answers}

    def single(self, rw: Rewrite) -> dict[str, Any]:
        query, call, _ = self.requests.request(rw, self.used)
        return self.line(query, self.tools([rw], set(), self.rng.randint(*DISTRACTORS)), [call])

    def double(self) -> dict[str, Any]:
        spec, rng = self.spec, self.rng
        while True:
            a, b = rng.sample(spec.rewrites, 2)
            if a.kind != b.kind and b.kind not in spec.conflicts[a.kind]:
                break
        for _ in range(TRIES):
            query, calls = self.requests.joined(a, b)
            if query not in self.used:
                tools = self.tools([a, b], set(), rng.randint(*DISTRACTORS_TWO))
                return self.line(query, tools, calls)
        raise SpecError(f"cannot find a distinct two-call request for {a.name} + {b.name}")

    def unoffered(self, rw: Rewrite) -> dict[str, Any]:
        """A request for ``rw``'s kind, offered only tools that cannot serve it."""
        query, _, _ = self.requests.request(rw, self.used)
        blocked = {rw.kind} | self.spec.conflicts[rw.kind]
        return self.line(query, self.tools([], blocked, self.rng.randint(*TOOLS_NO_FIT)), [])

    def out_of_scope(self, nf: NoFit) -> dict[str, Any]:
        for _ in range(TRIES):
            query, _ = render(nf.template, draw(nf.template, self.rng))
            if query not in self.used:
                tools = self.tools([], set(nf.exclude), self.rng.randint(*TOOLS_NO_FIT))
                return self.line(query, tools, [])
        raise SpecError(f"{nf.template.where}: cannot find another distinct request")


def generate(spec: Spec, seed: int = 0, n: int = 400) -> list[dict[str, Any]]:
    """``n`` labelled lines, the same for the same spec and seed."""
    rng = random.Random(seed)
    b = _Builder(spec, rng)
    n_none = round(n * NO_CALL_SHARE)
    n_two = round(n * TWO_CALL_SHARE)
    n_single = n - n_none - n_two
    n_scope = n_none // 2
    lines: list[dict[str, Any]] = []
    targets: list[Rewrite] = []
    while len(targets) < n_single:
        targets += rng.sample(spec.rewrites, len(spec.rewrites))
    lines += [b.single(rw) for rw in targets[:n_single]]
    lines += [b.double() for _ in range(n_two)]
    scopes: list[NoFit] = []
    while len(scopes) < n_scope:
        scopes += rng.sample(spec.no_fit, len(spec.no_fit))
    lines += [b.out_of_scope(nf) for nf in scopes[:n_scope]]
    lines += [b.unoffered(rng.choice(spec.rewrites)) for _ in range(n_none - n_scope)]
    rng.shuffle(lines)
    return lines


def dumps(lines: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def generate_text(seed: int = 0, n: int = 400, path: str | Path = DATA_FILE) -> str:
    """The split as JSONL text, as ``main`` writes it."""
    return dumps(generate(load_spec(path), seed=seed, n=n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.make_test_schemas", description=__doc__.split("\n")[0]
    )
    ap.add_argument("out", help="output JSONL file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--data", default=str(DATA_FILE), help="definitions and templates (JSON)")
    args = ap.parse_args(argv)
    text = generate_text(seed=args.seed, n=args.n, path=args.data)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
