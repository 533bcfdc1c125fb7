"""Variation of the synthetic requests (``templates/variation.json``): the prefixes and
suffixes around a query, and training-time paraphrases of templates (synonyms, dropped
articles, a filler word, a typo)."""

from __future__ import annotations

import random
import re
from typing import Any

from .kinds import Template, too_close
from .slots import load_templates

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
