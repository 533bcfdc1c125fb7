"""The repairs a worker makes to a valid answer, in order: strings taken from the request put
in the form their parameter asks (:mod:`workers.reformat`), optional integers the request
gives beside their names filled in (:mod:`workers.numberfill`), numbers put in their
parameter's unit (:mod:`workers.units`), optional enum arguments the request names filled
in (:mod:`workers.enumfill`), optional flags it names set (:mod:`workers.flagfill`), the
one date or time it writes filled in where the answer left out its place
(:mod:`workers.datefill`), and the ISO code of the one language, country or currency it
names (:mod:`workers.codefill`).
Each is kept only where the repaired calls still pass the schemas (a ``maximum`` may refuse
a converted value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.codefill import fill_codes
from workers.datefill import fill_dates
from workers.engine import REPAIRS, DecodingSettings
from workers.enumfill import fill_enums
from workers.flagfill import fill_flags
from workers.numberfill import fill_numbers
from workers.reformat import reformat_strings
from workers.toolset import CallValidationError, ToolSet
from workers.units import convert_units

Calls = list[dict[str, Any]]


@dataclass(frozen=True)
class Repairs:
    """What the worker changed in a valid answer, by place (``[]``: nothing)."""

    reformatted: list[dict[str, Any]] = field(default_factory=list)  # workers.reformat
    converted: list[dict[str, Any]] = field(default_factory=list)  # workers.units
    # workers.numberfill ("rule": "number"), workers.enumfill ("enum"), workers.flagfill
    # ("flag"), workers.datefill ("date", "time", "datetime"), workers.codefill ("code")
    filled: list[dict[str, Any]] = field(default_factory=list)


def _checked(calls: Calls, toolset: ToolSet, repaired: tuple[Calls, Calls]) -> tuple[Calls, Calls]:
    """The repaired calls and what changed, where they pass the schemas; else the calls as
    they were and nothing."""
    new_calls, changes = repaired
    if not changes:
        return calls, []
    try:
        return toolset.validate_calls(new_calls), changes
    except CallValidationError:
        return calls, []


_REPAIR = {
    "reformat_strings": reformat_strings,
    "fill_numbers": fill_numbers,
    "convert_units": convert_units,
    "fill_enums": fill_enums,
    "fill_flags": fill_flags,
    "fill_dates": fill_dates,
    "fill_codes": fill_codes,
}


def repair_calls(
    calls: Calls, query: str, toolset: ToolSet, settings: DecodingSettings
) -> tuple[Calls, Repairs]:
    """``calls`` with the repairs ``settings`` asks for, and what each changed."""
    changes: dict[str, Calls] = {"reformatted": [], "converted": [], "filled": []}
    for setting, listed in REPAIRS.items():
        if getattr(settings, setting):
            repaired = _REPAIR[setting](calls, query, toolset.tools)
            calls, made = _checked(calls, toolset, repaired)
            changes[listed].extend(made)
    return calls, Repairs(**changes)
