"""Re-declaring some tools of a group after it is made: :func:`redeclare_tools` swaps a share
of a tool list's definitions for new ones and converts the answers that call them; a share
of 0 draws nothing, so older files are reproduced byte for byte.

:func:`redeclare_group` uses it for generated kinds, with
:func:`training.schemas_trained.rewrite_tool` (other names and keys, a quantity in another
unit, enum values in other capitals, optional parameters dropped or added, a default), so
that those rewrites are learnt on tools the model has not seen before as well as on the
trained kinds; :func:`training.schemas_nesting.nest_group` uses it to nest parameters.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .schemas_trained import rewrite_tool
from .schemas_vocab import Example, Vocab

Arguments = dict[str, Any]
ConvertArguments = Callable[[Arguments], Arguments]
# A tool's new definition and how its calls' arguments change, or None to keep it.
Redeclare = Callable[[dict[str, Any]], tuple[dict[str, Any], ConvertArguments] | None]


def redeclare_tools(
    rng: random.Random, group: list[Example], share: float, redeclare: Redeclare
) -> None:
    """Offer each tool of ``group`` (one tool list) to ``redeclare`` with probability
    ``share``, in place; answers that call a re-declared tool take its new name and
    converted arguments."""
    if not group or share <= 0:
        return
    converters: dict[str, tuple[str, ConvertArguments]] = {}
    tools = []
    for tool in group[0]["tools"]:
        new = redeclare(tool) if rng.random() < share else None
        if new is None:
            tools.append(tool)
            continue
        definition, convert = new
        converters[tool["name"]] = (definition["name"], convert)
        tools.append(definition)
    if not converters:
        return
    for ex in group:
        ex["tools"] = tools
        answers = []
        for answer in ex["answers"]:
            if answer["name"] in converters:
                name, convert = converters[answer["name"]]
                answer = {"name": name, "arguments": convert(answer["arguments"])}
            answers.append(answer)
        ex["answers"] = answers


def redeclare_group(rng: random.Random, vocab: Vocab, group: list[Example], share: float) -> None:
    """Re-declare each tool of ``group`` as the trained kinds are rewritten, with
    probability ``share``, in place."""
    if not group:
        return
    taken = {tool["name"] for tool in group[0]["tools"]}

    def rewritten(tool: dict[str, Any]) -> tuple[dict[str, Any], ConvertArguments]:
        taken.discard(tool["name"])
        rewrite = rewrite_tool(rng, vocab, tool, taken)
        return rewrite.definition, rewrite.answer

    redeclare_tools(rng, group, share, rewritten)
