"""Training data that makes a model read the schema: tool definitions by the thousand.

The lines are the same ``{"query", "tools", "answers"}`` records as :mod:`training.data`.
Three or four sources are mixed, group by group (a group is several requests over one tool
list, which the trainer packs into one sequence):

* **generated kinds**: an object and one of its actions (``training/vocab/apis.json``) make a
  tool.  Its name, parameter keys, descriptions and key order are drawn afresh for every
  tool list (naming styles, synonyms, masked names), and its requests are composed from the
  verb's phrasings (``verbs.json``) and one phrase per argument (``concepts.json``), with
  the values copied from the query.  Distractors are the object's other actions (same noun,
  other verb) and unrelated tools; some requests fit no tool.
* **rewritten trained kinds**: the trained tools of :mod:`training.data`, re-declared with
  other names, keys, enum spellings, units and optional parameters, their answers converted
  to match.
* **original trained kinds**: :func:`training.data.make_group` as it is, so that the
  phrasings learnt before are kept.
* **written kinds** (a fourth ``--mix`` share, none unless asked): hand-written tool
  definitions and requests, realistic where the generated kinds are composed, from
  ``training/written/`` or, with ``--written DIR``, your own kinds in that format
  (:mod:`training.schemas_written`).

Names masked by random strings ("function masking", as the Hammer models train) leave only
the descriptions to go by.  Function names of the BFCL evaluation set
(``vocab/bfcl_blocklist.txt``) are never produced.

``python -m training.schemas OUT.jsonl --n 200000 --seed 0`` writes a training file.

This module mixes the sources (:func:`generate`) and is the command line; the parts are
:mod:`training.schemas_vocab` (the vocabulary), :mod:`training.schemas_names` (identifier
styles), :mod:`training.schemas_tools` (generated tool definitions),
:mod:`training.schemas_requests` (requests and their values), :mod:`training.schemas_groups`
(groups of generated kinds), :mod:`training.schemas_trained` (rewritten and original
trained kinds) and :mod:`training.schemas_written` (written kinds).  Their public names are
importable from here too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from .schemas_groups import JOINERS, generated_group
from .schemas_names import D_TOOL_NAME, STYLES, name_key, split_words, styled
from .schemas_names import _article as _article
from .schemas_nesting import nest_group
from .schemas_redeclared import redeclare_group
from .schemas_requests import make_value, request_for
from .schemas_tools import Tool, make_tool, param_schema
from .schemas_trained import Convert, Rewrite, original_group, rewrite_tool, rewritten_group
from .schemas_vocab import VOCAB_DIR, Action, Example, Param, Vocab, load_vocab, masked_name
from .schemas_written import WRITTEN_DIR, load_written, written_group
from .written_spec import SpecError, unwrap

__all__ = [
    "DEFAULT_MIX",
    "D_TOOL_NAME",
    "JOINERS",
    "SOURCES",
    "STYLES",
    "VOCAB_DIR",
    "Action",
    "Convert",
    "Example",
    "Param",
    "Rewrite",
    "Tool",
    "Vocab",
    "generate",
    "generated_group",
    "load_vocab",
    "load_written",
    "main",
    "make_tool",
    "make_value",
    "masked_name",
    "name_key",
    "nest_group",
    "original_group",
    "param_schema",
    "redeclare_group",
    "request_for",
    "rewrite_tool",
    "rewritten_group",
    "split_words",
    "styled",
    "written_group",
]


SOURCES = {
    "generated": generated_group,
    "rewritten": rewritten_group,
    "original": original_group,
    "written": written_group,
}
DEFAULT_MIX = {"generated": 0.55, "rewritten": 0.25, "original": 0.20}


def generate(
    n: int,
    seed: int = 0,
    mix: dict[str, float] | None = None,
    group_size: tuple[int, int] = (8, 24),
    split: str = "train",
    no_fit: float = 0.1,
    near_miss: float = 0.0,
    chitchat: float = 0.04,
    nest: float = 0.0,
    redeclare: float = 0.0,
    written: str | None = None,
    nest_after: float = 0.0,
) -> list[Example]:
    """``n`` examples, deterministic for the arguments; groups drawn from ``mix``.  With
    ``split="valid"``, generated kinds come from the held-out objects only.  ``no_fit``,
    ``near_miss`` and ``chitchat`` shape the generated groups (:func:`generated_group`);
    ``nest`` is the share of tools declared with nested parameters
    (:func:`training.schemas_nesting.nest_group`) and ``redeclare`` that of generated tools
    re-declared as the trained kinds are (:func:`training.schemas_redeclared.redeclare_group`:
    units, enum capitals, optional parameters); 0 draws nothing, so older files are
    reproduced byte for byte.  ``written``: the folder of written kinds (default
    ``training/written``).  ``nest_after``: the share of nested runs chosen among those that
    answers go on after (:func:`training.schemas_nesting.nest_tool`)."""
    vocab = load_vocab(split)
    mix = mix or DEFAULT_MIX
    names, weights = list(mix), [mix[k] for k in mix]
    rng = random.Random(seed * 7919 + 17)
    out: list[Example] = []
    seen: set[tuple[str, str]] = set()
    while len(out) < n:
        source = rng.choices(names, weights)[0]
        size = rng.randint(*group_size)
        if source == "written":  # declared as written: no nesting or re-declaring on top
            group = written_group(rng, load_written(written or str(WRITTEN_DIR)), size, no_fit)
        else:
            if source == "generated":
                group = generated_group(rng, vocab, size, no_fit, near_miss, chitchat)
                redeclare_group(rng, vocab, group, redeclare)
            else:
                group = SOURCES[source](rng, vocab, size)
            nest_group(rng, vocab, group, nest, nest_after)
        for ex in group:
            key = (ex["query"], unwrap(ex["tools"][0])["name"] if ex["tools"] else "")
            if key in seen or len(out) >= n:
                continue
            seen.add(key)
            out.append(ex)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.schemas", description=__doc__.split("\n")[0]
    )
    ap.add_argument("out", help="JSONL file to write")
    ap.add_argument("--n", type=int, default=200000, help="examples (default 200000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--mix",
        type=float,
        nargs="+",
        default=[DEFAULT_MIX[k] for k in DEFAULT_MIX],
        metavar="SHARE",
        help="share of groups from each source: generated, rewritten, original and, "
        "optionally, written (default 0.55 0.25 0.20)",
    )
    ap.add_argument("--group-size", type=int, nargs=2, default=[8, 24], metavar=("MIN", "MAX"))
    ap.add_argument(
        "--split",
        choices=["train", "valid"],
        default="train",
        help="valid: generated kinds from the held-out objects (heldout_objects.json) only",
    )
    ap.add_argument(
        "--no-fit",
        type=float,
        default=0.1,
        help="share of generated-kind requests that no listed tool handles (default 0.1)",
    )
    ap.add_argument(
        "--chitchat",
        type=float,
        default=0.04,
        help="share of generated-kind requests that are small talk (default 0.04)",
    )
    ap.add_argument(
        "--near-miss",
        type=float,
        default=0.0,
        help="of those, the share asking another action of a listed object (default 0)",
    )
    ap.add_argument(
        "--nest",
        type=float,
        default=0.0,
        help="share of tools declared with a run of parameters in one nested object (default 0)",
    )
    ap.add_argument(
        "--nest-after",
        type=float,
        default=0.0,
        help="share of nested runs chosen among those that answers go on after, where a tool "
        "has one (default 0: runs drawn evenly, which mostly hold the last argument an "
        "answer gives)",
    )
    ap.add_argument(
        "--redeclare",
        type=float,
        default=0.0,
        help="share of generated tools re-declared as the trained kinds are (other units, "
        "enum capitals, optional parameters; default 0)",
    )
    ap.add_argument(
        "--written",
        metavar="DIR",
        help="folder of written kinds (*.json in the format of training/written_spec.py) for "
        "the fourth --mix share (default training/written)",
    )
    a = ap.parse_args(argv)
    if len(a.mix) not in (3, 4):
        ap.error("--mix takes 3 or 4 shares (generated, rewritten, original, written)")
    try:
        exs = generate(
            a.n,
            a.seed,
            dict(zip(list(SOURCES)[: len(a.mix)], a.mix, strict=True)),
            tuple(a.group_size),
            a.split,
            a.no_fit,
            a.near_miss,
            a.chitchat,
            a.nest,
            a.redeclare,
            a.written,
            a.nest_after,
        )
    except SpecError as e:  # a written kinds file that does not load
        ap.error(str(e))
    with open(a.out, "w", encoding="utf-8") as f:
        for e in exs:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    print(f"{len(exs)} examples -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
