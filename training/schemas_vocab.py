"""The vocabulary generated tools are made of (``training/vocab/``): objects and their actions
(``apis.json``), verbs, value pools, synonyms and concepts, for the training objects or the
held-out ones; and the names and descriptions drawn from it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .schemas_names import D_TOOL_NAME, name_key, split_words

VOCAB_DIR = Path(__file__).resolve().parent / "vocab"
Example = dict[str, Any]  # one training line: {"query", "tools", "answers"}


@dataclass(frozen=True)
class Param:
    key: str
    concept: str
    label: str
    desc: str
    spec: dict[str, Any]

    @property
    def phrases(self) -> list[str]:
        return list(self.spec.get("phrases") or [])


@dataclass(frozen=True)
class Action:
    obj: str
    obj_names: tuple[str, ...]
    verb: str
    params: tuple[Param, ...]
    required: frozenset[str]
    object_id: int


@dataclass(frozen=True)
class Vocab:
    actions: tuple[Action, ...]
    verbs: dict[str, dict[str, Any]]
    pools: dict[str, list[str]]
    synonyms: dict[str, list[str]]
    concepts: dict[str, Any]
    blocklist: frozenset[str]
    by_object: dict[int, tuple[Action, ...]] = field(default_factory=dict)


def _read(name: str) -> Any:
    return json.loads((VOCAB_DIR / name).read_text(encoding="utf-8"))


@cache
def load_vocab(split: str = "train") -> Vocab:
    """The vocabulary of ``split``: ``train`` leaves out the objects named in
    ``heldout_objects.json``, ``valid`` has only those (unseen kinds to validate on)."""
    apis = _read("apis.json")
    heldout = set(_read("heldout_objects.json"))
    if split not in ("train", "valid"):
        raise ValueError(f"unknown split {split!r}")
    actions: list[Action] = []
    for oid, o in enumerate(apis):
        if (o["object"] in heldout) != (split == "valid"):
            continue
        params = {
            key: Param(
                key, p["concept"], p.get("label", key.replace("_", " ")), p.get("desc", ""), p
            )
            for key, p in o["params"].items()
        }
        for a in o["actions"]:
            actions.append(
                Action(
                    obj=o["object"],
                    obj_names=tuple(o["names"]),
                    verb=a["verb"],
                    params=tuple(params[k] for k in a["params"]),
                    required=frozenset(a.get("required", [])),
                    object_id=oid,
                )
            )
    blockfile = VOCAB_DIR / "bfcl_blocklist.txt"
    blocklist = (
        frozenset(
            name_key(x.strip())
            for x in blockfile.read_text().splitlines()
            if x.strip() and not x.startswith("#")
        )
        if blockfile.exists()
        else frozenset()
    )
    by_object: dict[int, list[Action]] = {}
    for a in actions:
        by_object.setdefault(a.object_id, []).append(a)
    return Vocab(
        actions=tuple(actions),
        verbs=_read("verbs.json"),
        pools=_read("pools.json"),
        synonyms=_read("synonyms.json"),
        concepts=_read("concepts.json"),
        blocklist=blocklist,
        by_object={k: tuple(v) for k, v in by_object.items()},
    )


# --------------------------------------------------------------------------------------------
# Names and descriptions drawn from the vocabulary


def masked_name(rng: random.Random, vocab: Vocab) -> str:
    stem = rng.choice(vocab.concepts["masked_names"])
    tail = "".join(
        rng.choice("abcdefghijkmnpqrstuvwxyz0123456789") for _ in range(rng.randint(2, 4))
    )
    return f"{stem}_{tail}"


def accepted_tool_name(
    rng: random.Random, vocab: Vocab, propose: Callable[[], str], masked: bool, taken: set[str]
) -> str:
    """A tool name for a list: up to six proposals (each replaced by a masked name when
    ``masked``) until one is allowed, valid and not ``taken``, else a numbered masked name;
    added to ``taken``. Every proposal is drawn even when masked, so the draws stay in order."""
    for _ in range(6):
        name = propose()
        if masked:
            name = masked_name(rng, vocab)
        if name_key(name) not in vocab.blocklist and name not in taken and D_TOOL_NAME.match(name):
            break
    else:
        name = masked_name(rng, vocab) + str(rng.randint(100, 999))
    taken.add(name)
    return name


def _synonym(rng: random.Random, vocab: Vocab, word: str, p: float) -> list[str]:
    alts = vocab.synonyms.get(word)
    if alts and rng.random() < p:
        return split_words(rng.choice(alts))
    return [word]


def _renamed(rng: random.Random, vocab: Vocab, words: list[str], p: float) -> list[str]:
    return [w for word in words for w in _synonym(rng, vocab, word, p)]


def _describe(rng: random.Random, vocab: Vocab, desc: str) -> str:
    """One of the usual ways of wording a tool's description around its plain sentence."""
    desc = desc.strip()
    if not desc:
        return desc
    body = desc[0].lower() + desc[1:]
    body = body.rstrip(".")
    wrap = rng.choice(vocab.concepts["generic_descriptions"])
    return wrap.replace("{Desc}", desc if desc.endswith(".") else desc + ".").replace(
        "{desc}", body + "."
    )
