"""Optional enum arguments filled in where the request names a value (workers/enumfill.py)."""

from __future__ import annotations

from typing import Any

from workers.enumfill import fill_enums


def _tool(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"name": "f", "parameters": {"type": "object", "properties": properties}}


def _filled(query: str, tool: dict[str, Any], **arguments: Any) -> dict[str, Any]:
    calls, _ = fill_enums([{"name": "f", "arguments": arguments}], query, [tool])
    return calls[0]["arguments"]


BAND = {"type": "string", "enum": ["excellent", "good", "fair", "poor"]}
PLAN = {"type": "string", "enum": ["fixed", "variable", "time_of_use"]}


def test_a_value_the_request_names_is_filled_in() -> None:
    calls, filled = fill_enums(
        [{"name": "f", "arguments": {"amount": 8000}}],
        "Loan quote for $8k over 3 years, fair credit.",
        [_tool(amount={"type": "integer"}, credit_band=BAND)],
    )
    assert calls == [{"name": "f", "arguments": {"amount": 8000, "credit_band": "fair"}}]
    assert filled == [{"call": 0, "path": "credit_band", "value": "fair", "rule": "enum"}]
    # spelled with spaces or hyphens, any case
    assert _filled("Any time-of-use plans in 79401?", _tool(plan=PLAN)) == {"plan": "time_of_use"}
    assert _filled("any Time of Use plans", _tool(plan=PLAN)) == {"plan": "time_of_use"}


def test_what_it_leaves_alone() -> None:
    # the model gave the argument, or the request names two values, or none as a word
    assert _filled("fair credit", _tool(credit_band=BAND), credit_band="good") == {
        "credit_band": "good"
    }
    assert _filled("good or fair credit?", _tool(credit_band=BAND)) == {}
    assert _filled("unfairly priced", _tool(credit_band=BAND)) == {}  # words, not parts
    # the value is the default, or what the description says it defaults to
    drink = {"type": "string", "enum": ["water", "tea"], "description": "Defaults to water."}
    assert _filled("log 24 oz of water", _tool(beverage=drink)) == {}
    assert _filled("log 24 oz of tea", _tool(beverage=drink)) == {"beverage": "tea"}
    assert _filled("fair", _tool(credit_band={**BAND, "default": "fair"})) == {}
    # another argument of the answer already has the value
    mode = {"type": "string", "enum": ["phone", "video"]}
    calls = [
        {"name": "f", "arguments": {"format": "phone"}},
        {"name": "f", "arguments": {}},
    ]
    tool = _tool(format=mode)
    assert fill_enums(calls, "a phone interview, then another one", [tool]) == (calls, [])
    # not a string enum
    sizes = {"type": "integer", "enum": [1, 2, 3]}
    assert _filled("size 2", _tool(size=sizes)) == {}
