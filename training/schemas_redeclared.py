"""Generated kinds re-declared: :func:`training.schemas_trained.rewrite_tool` (other names and
keys, a quantity in another unit, enum values in other capitals, optional parameters dropped
or added, a default) applied to the tools of a generated group, with the answers converted
to match, so that those rewrites are learnt on tools the model has not seen before as well as
on the trained kinds.

Applied to a whole group after it is made (:func:`redeclare_group`); a share of 0 draws
nothing, so older files are reproduced byte for byte.
"""

from __future__ import annotations

import random

from .schemas_trained import Rewrite, rewrite_tool
from .schemas_vocab import Example, Vocab


def redeclare_group(rng: random.Random, vocab: Vocab, group: list[Example], share: float) -> None:
    """Re-declare each tool of ``group`` (one tool list) with probability ``share``, in
    place; answers that call a re-declared tool are renamed and converted to match."""
    if not group or share <= 0:
        return
    taken = {tool["name"] for tool in group[0]["tools"]}
    rewrites: dict[str, Rewrite] = {}
    tools = []
    for tool in group[0]["tools"]:
        if rng.random() >= share:
            tools.append(tool)
            continue
        taken.discard(tool["name"])
        rewrite = rewrite_tool(rng, vocab, tool, taken)
        rewrites[tool["name"]] = rewrite
        tools.append(rewrite.definition)
    if not rewrites:
        return
    for ex in group:
        ex["tools"] = tools
        answers = []
        for answer in ex["answers"]:
            rewrite = rewrites.get(answer["name"])
            if rewrite is None:
                answers.append(answer)
                continue
            answers.append(
                {
                    "name": rewrite.definition["name"],
                    "arguments": rewrite.answer(answer["arguments"]),
                }
            )
        ex["answers"] = answers
