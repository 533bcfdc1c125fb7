"""Optional integers filled in where the request gives them beside their names
(workers/numberfill.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from conftest import repaired_arguments

from workers.engine import DecodingSettings
from workers.numberfill import fill_numbers
from workers.repairs import Repairs, repair_calls
from workers.toolset import ToolSet, normalize_tools

numbers = partial(repaired_arguments, fill_numbers)

COFFEE: dict[str, Any] = {
    "drink": {"type": "string"},
    "cups": {"type": "integer", "description": "Number of cups"},
    "min_bedrooms": {"type": "integer"},
    "days": {"type": "integer"},
}


def test_a_number_beside_the_name_is_filled_in() -> None:
    calls, filled = fill_numbers(
        [{"name": "f", "arguments": {"drink": "americano"}}],
        "so (drink americano) medium, and (cups 19), launch the coffee machine",
        [{"name": "f", "parameters": {"type": "object", "properties": COFFEE}}],
    )
    assert calls == [{"name": "f", "arguments": {"drink": "americano", "cups": 19}}]
    assert filled == [{"call": 0, "path": "cups", "value": 19, "rule": "number"}]
    assert numbers("and 12 cups of, then", COFFEE) == {"cups": 12}  # before or after
    assert numbers("a cabin with 2+ bedrooms", COFFEE) == {"min_bedrooms": 2}  # "min" aside
    assert numbers("pollen over the next five days?", COFFEE) == {"days": 5}  # a number word


def test_what_it_leaves_alone() -> None:
    # not right beside the name, two numbers, one the answer has, or not a whole number
    assert numbers("cups: I want 12", COFFEE) == {}
    assert numbers("12 cups, no, 14 cups", COFFEE) == {}
    assert numbers("latte for 4, 4 cups", COFFEE, drink="latte", party=4) == {
        "drink": "latte",
        "party": 4,
    }
    assert numbers("2.5 cups", COFFEE) == {}
    # the model gave it, or the parameter is no integer
    assert numbers("12 cups", COFFEE, cups=10) == {"cups": 10}
    assert numbers("12 cups", {"cups": {"type": "string"}}) == {}
    # a name of function words only says nothing it counts
    assert numbers("max 5", {"max": {"type": "integer"}}) == {}


def test_it_comes_before_unit_conversion() -> None:
    tool = {
        "name": "order",
        "parameters": {
            "type": "object",
            "properties": {"dish": {"type": "string"}, "tipCents": {"type": "integer"}},
        },
    }
    toolset = ToolSet(normalize_tools([tool]))
    calls = [{"name": "order", "arguments": {"dish": "beef pho"}}]
    query = "beef pho x2, and add a $5 tip"
    assert repair_calls(calls, query, toolset, DecodingSettings()) == (
        [{"name": "order", "arguments": {"dish": "beef pho", "tipCents": 500}}],
        Repairs(
            converted=[{"call": 0, "path": "tipCents", "from": 5, "to": 500}],
            filled=[{"call": 0, "path": "tipCents", "value": 5, "rule": "number"}],
        ),
    )
    off = DecodingSettings(fill_numbers=False)
    assert repair_calls(calls, query, toolset, off) == (calls, Repairs())
