"""Tool kinds: a tool's schema, its slots and its query templates, read from
``training/templates/`` (``kinds.json``; ``phrasings.json`` adds training phrasings,
``blind.json`` holds the blind test phrasings).

A template is query text with ``{slot}`` placeholders, optionally with arguments it fixes
(``{"text": "lock the {door}", "args": {"action": "lock"}}``).  Each kind lists its
``train`` templates and, separately, its ``held_out`` ones (the ``test_phrasing`` split);
``held_out_kinds`` names the kinds kept out of training altogether (``test_tools``).
"""

from __future__ import annotations

import copy
import difflib
import json
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .slots import Pick, Slot, load_templates, make_slot, spell_numbers

Template = tuple[str, dict[str, Any]]
# A template as the data files write it: plain text, or text with the arguments it fixes.
TemplateData = str | dict[str, Any] | tuple[str, dict[str, Any]]


def as_template(t: TemplateData) -> Template:
    """A template as (text, fixed arguments); a bare string fixes none."""
    if isinstance(t, str):
        return t, {}
    if isinstance(t, dict):
        return t["text"], t.get("args", {})
    return t


def order_arguments(arguments: dict, parameters: dict) -> dict:
    """Required properties in schema order, then optional ones in schema order."""
    props = list((parameters or {}).get("properties", {}))
    required = set((parameters or {}).get("required", []))
    ordered = [k for k in props if k in required] + [k for k in props if k not in required]
    out = {k: arguments[k] for k in ordered if k in arguments}
    for k in arguments:  # keys not in the schema (should not happen) keep their order at the end
        if k not in out:
            out[k] = arguments[k]
    return out


class Kind:
    """One tool and the ways of asking for it: ``train`` templates for training data,
    ``held_out`` ones for the unseen-phrasing test."""

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict,
        slots: dict[str, Slot],
        train: Iterable[TemplateData],
        held_out: Iterable[TemplateData] = (),
        group: str | None = None,
    ):
        self.name = name
        self.tool = {"name": name, "description": description, "parameters": parameters}
        self.slots = slots
        self.train = [as_template(t) for t in train]
        self.held_out = [as_template(t) for t in held_out]
        self.group = group or name

    @property
    def templates(self) -> list[Template]:
        return self.train + self.held_out

    def train_templates(self) -> list[Template]:
        return list(self.train)

    def test_templates(self) -> list[Template]:
        return list(self.held_out)

    def with_held_out(self, held_out: Iterable[TemplateData]) -> Kind:
        """A copy with the same training templates and other held-out ones."""
        k = copy.copy(self)
        k.train = list(self.train)
        k.held_out = [as_template(t) for t in held_out]
        return k

    def render(
        self, rng: random.Random, template: Template, fresh: float = 0.0
    ) -> tuple[str, dict]:
        """Query and arguments.  With ``fresh`` (training-time variety), copied values are
        made up with probability ``fresh`` and numbers that only stand for a value ("5
        minutes" -> 300) are sometimes spelled out ("five minutes")."""
        text, fixed = template
        args: dict = dict(fixed)

        def sub(m: re.Match) -> str:
            slot = self.slots[m.group(1)]
            if fresh and isinstance(slot, Pick) and rng.random() < fresh:
                surface, a = slot.fresh(rng)
            else:
                surface, a = slot(rng)
                if (
                    fresh
                    and not any(isinstance(v, str) and re.search(r"\d", v) for v in a.values())
                    and rng.random() < fresh * 0.8
                ):  # spelling out a number copied into a string would change the answer
                    surface = spell_numbers(surface)
            args.update(a)
            return surface

        query = re.sub(r"\{(\w+)\}", sub, text)
        return query, order_arguments(args, self.tool["parameters"])


# --------------------------------------------------------------------------------------------
# Near copies


_SIMILARITY_STOPWORDS = set(load_templates("variation")["similarity_stopwords"])


def _content_words(template: str) -> list[str]:
    words = re.findall(r"\{\w+\}|[a-z0-9']+", template.lower())
    return [w for w in words if w not in _SIMILARITY_STOPWORDS]


def too_close(template: str, held_out: list[str], threshold: float = 0.8) -> bool:
    """Whether ``template`` is a near copy of a held-out template: the sequences of their
    content words (politeness and articles dropped) are at least ``threshold`` alike."""
    a = _content_words(template)
    return any(
        difflib.SequenceMatcher(None, a, _content_words(h)).ratio() >= threshold for h in held_out
    )


# --------------------------------------------------------------------------------------------
# Loading


def _load_shipped_tools() -> dict[str, dict]:
    path = Path(__file__).resolve().parent.parent / "inputs" / "tools.json"
    try:
        return {t["name"]: t for t in json.loads(path.read_text())}
    except (OSError, ValueError):
        return {}


SHIPPED = _load_shipped_tools()


def kind_from_data(entry: dict[str, Any]) -> Kind:
    """A kind from its ``kinds.json`` entry.  A ``shipped`` kind takes its description and
    parameters from ``inputs/tools.json`` when that file is there."""
    description, parameters = entry["description"], entry["parameters"]
    shipped = SHIPPED.get(entry["name"]) if entry.get("shipped") else None
    if shipped is not None:
        description, parameters = shipped["description"], shipped["parameters"]
    return Kind(
        entry["name"],
        description,
        parameters,
        {name: make_slot(spec) for name, spec in entry["slots"].items()},
        entry["train"],
        entry["held_out"],
        entry.get("group"),
    )


def add_phrasings(kinds: list[Kind], extra: dict[str, list[TemplateData]]) -> int:
    """Append ``extra`` templates to each kind's training templates, skipping those it has
    already and near copies of a held-out one.  Returns how many were skipped."""
    skipped = 0
    by_name = {k.name: k for k in kinds}
    for name, templates in extra.items():
        k = by_name[name]
        held_texts = [t for t, _ in k.held_out]
        known = {t for t, _ in k.templates}
        for text, fixed in map(as_template, templates):
            if text in known or too_close(text, held_texts):
                skipped += 1
                continue
            k.train.append((text, fixed))
    return skipped


def blind_kinds(kinds: list[Kind], blind: dict[str, list[TemplateData]]) -> list[Kind]:
    """Copies of ``kinds`` whose held-out templates are the ``blind`` ones, keeping only
    those that are not near copies of any of the kind's own templates (trained or held out);
    kinds left with none are dropped."""
    out = []
    for k in kinds:
        own = [t for t, _ in k.templates]
        written = [as_template(t) for t in blind.get(k.name, [])]
        kept = [t for t in written if not too_close(t[0], own)]
        if kept:
            out.append(k.with_held_out(kept))
    return out


_KINDS_DATA: dict[str, Any] = load_templates("kinds")
_PHRASINGS: dict[str, dict[str, list[TemplateData]]] = load_templates("phrasings")
EXTRA = _PHRASINGS["extra"]  # hand-written training phrasings
VOCABULARY = _PHRASINGS["vocabulary"]  # a second pass: other verbs, nouns and word orders
BLIND: dict[str, list[TemplateData]] = load_templates("blind")

KINDS = [kind_from_data(entry) for entry in _KINDS_DATA["kinds"]]
SKIPPED_PHRASINGS = add_phrasings(KINDS, EXTRA) + add_phrasings(KINDS, VOCABULARY)
KIND_BY_NAME = {k.name: k for k in KINDS}
HELDOUT_KINDS: list[str] = _KINDS_DATA["held_out_kinds"]
if unknown := set(HELDOUT_KINDS) - set(KIND_BY_NAME):
    raise ValueError(f"kinds.json: held_out_kinds names unknown kinds {sorted(unknown)}")
TRAIN_KINDS = [k for k in KINDS if k.name not in HELDOUT_KINDS]
TEST_KINDS = [k for k in KINDS if k.name in HELDOUT_KINDS]
BLIND_KINDS = blind_kinds(TRAIN_KINDS, BLIND)
# Tools that could serve almost any request: a "no match" example never offers them.
RELATED: set[str] = set(_KINDS_DATA["related"])
