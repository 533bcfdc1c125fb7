"""Optional ISO-code arguments filled in from the language, country or currency the request
names (workers/codefill.py)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from conftest import default_model_lines, exported_spans, repaired_arguments, write_jsonl

from workers.codefill import fill_codes
from workers.codes import names_in
from workers.engine import DecodingSettings
from workers.repairs import Repairs, repair_calls
from workers.toolset import ToolSet, normalize_tools

filled = partial(repaired_arguments, fill_codes)

CURRENCY = {"type": "string", "description": "ISO 4217 currency code"}
COUNTRY = {"type": "string", "description": "ISO 3166-1 alpha-2 country code"}
LANGUAGE = {"type": "string", "description": "Target language, ISO 639-1 code"}
SPLIT: dict[str, Any] = {"amount": {"type": "number"}, "currency": CURRENCY}
FORECAST: dict[str, Any] = {"city": {"type": "string"}, "country": COUNTRY}


def test_the_code_of_what_the_request_names_is_filled_in() -> None:
    assert filled("we spent 230 euros at dinner, split it", SPLIT, amount=230) == {
        "amount": 230,
        "currency": "EUR",
    }
    assert filled("the bill is 75 quid", SPLIT) == {"currency": "GBP"}
    assert filled("split €96 among 4", SPLIT) == {"currency": "EUR"}
    assert filled("the balance, shown in AUD please", SPLIT) == {"currency": "AUD"}
    assert filled("forecast for Toronto, Canada tomorrow", FORECAST, city="Toronto") == {
        "city": "Toronto",
        "country": "CA",
    }
    assert filled("say thank you in Korean", {"lang": LANGUAGE}) == {"lang": "ko"}
    alpha_3 = {"type": "string", "description": "ISO 3166-1 alpha-3 country code"}
    assert filled("visa rules for Japan", {"country": alpha_3}) == {"country": "JPN"}
    # an enum of codes takes the code as the enum spells it
    enum = {"type": "string", "enum": ["usd", "eur", "gbp"]}
    assert filled("a 50 pounds gift card", {"currency": enum}) == {"currency": "gbp"}
    # null, as a strict tool's left-out argument is, counts as left out
    assert filled("230 euros", SPLIT, currency=None) == {"currency": "EUR"}


def test_what_it_leaves_alone() -> None:
    # the model gave it; the request names two, or none
    assert filled("230 euros", SPLIT, currency="USD") == {"currency": "USD"}
    assert filled("230 euros or 200 pounds", SPLIT) == {}
    assert filled("split 230 between 4", SPLIT) == {}
    # "$" and "¥" stand for more than one currency
    assert filled("split $230", SPLIT) == {}
    assert filled("split ¥2300", SPLIT) == {}
    # a name a string argument holds names no country: "Mexico City"
    assert filled("weather in Mexico City", FORECAST, city="Mexico City") == {"city": "Mexico City"}
    # capitals that are a code only beside a number or after "in"/"to"
    assert filled("delete ALL of it", SPLIT) == {}
    # not a code parameter, not a code of the enum, the default
    assert filled("230 euros", {"note": {"type": "string"}}) == {}
    assert filled("230 euros", {"currency": {"enum": ["USD", "GBP"]}}) == {}
    assert filled("230 euros", {"currency": {**CURRENCY, "default": "EUR"}}) == {}
    # a place with the code in it ("Lyon, FR") is the reformat rules' matter
    place = {"type": "string", "description": "City and ISO 3166 country code, e.g. 'Lyon, FR'"}
    assert filled("weather in Lyon, France", {"location": place}) == {}
    # another argument of the answer already gives the code
    tool = {"name": "f", "parameters": {"type": "object", "properties": SPLIT}}
    given = [{"name": "f", "arguments": {"currency": "EUR"}}, {"name": "f", "arguments": {}}]
    assert fill_codes(given, "pay 20 euros twice", [tool]) == (given, [])


def test_names_signs_and_written_codes() -> None:
    assert names_in("currency", "75 quid, or £70") == {"quid": "GBP", "£": "GBP"}
    assert names_in("currency", "120 AUD") == {"aud": "AUD"}
    assert names_in("currency", "convert to CHF") == {"chf": "CHF"}
    assert names_in("currency", "a TOP priority, 12 usd") == {}  # capitals only
    assert names_in("country", "Berlin (Germany)") == {"germany": "DE"}


def test_it_comes_last_and_is_listed() -> None:
    tool = {"name": "split", "parameters": {"type": "object", "properties": SPLIT}}
    toolset = ToolSet(normalize_tools([tool]))
    calls = [{"name": "split", "arguments": {"amount": 230}}]
    query = "we spent 230 euros at dinner, split it"
    assert repair_calls(calls, query, toolset, DecodingSettings()) == (
        [{"name": "split", "arguments": {"amount": 230, "currency": "EUR"}}],
        Repairs(filled=[{"call": 0, "path": "currency", "value": "EUR", "rule": "code"}]),
    )
    off = DecodingSettings(fill_codes=False)
    assert repair_calls(calls, query, toolset, off) == (calls, Repairs())


BILL_AND_FORECAST = [
    {
        "type": "function",
        "function": {
            "name": "split_bill",
            "description": "Split a restaurant bill between people.",
            "parameters": {
                "type": "object",
                "properties": {
                    "amount": {"type": "number", "description": "Total of the bill"},
                    "people": {"type": "integer", "description": "How many people share it"},
                    "currency": CURRENCY,
                },
                "required": ["amount", "people"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_forecast",
            "description": "Weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "country": COUNTRY,
                    "days_ahead": {"type": "integer"},
                },
                "required": ["city"],
            },
        },
    },
]


def test_the_pipeline_fills_codes_and_says_so(tmp_path) -> None:
    """needle-smol leaves out the currency of "230 euros" and the country of "Munich,
    Germany"; the output has them, lists them (grounded) and counts them on the spans, and
    ``--no-code-fill`` gives the model's own answer."""
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "euros", "query": "we spent 230 euros at dinner, 4 people, split it"},
            {"id": "germany", "query": "weather in Munich, Germany"},
        ],
    )
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps(BILL_AND_FORECAST))

    def run(*args: str) -> dict[str, dict[str, Any]]:
        return default_model_lines(source, tools_file, tmp_path / f"out{len(args)}.jsonl", *args)

    spans_file = tmp_path / "spans.jsonl"
    raw = run("--no-code-fill")
    filled_lines = run("--traces", "file", "--traces-file", str(spans_file))
    assert [c["arguments"] for c in raw["euros"]["calls"]] == [{"amount": 230, "people": 4}]
    assert [c["arguments"] for c in raw["germany"]["calls"]] == [{"city": "Munich"}]
    assert all("filled" not in line for line in raw.values())
    assert [c["arguments"] for c in filled_lines["euros"]["calls"]] == [
        {"amount": 230, "people": 4, "currency": "EUR"}
    ]
    assert [c["arguments"] for c in filled_lines["germany"]["calls"]] == [
        {"city": "Munich", "country": "DE"}
    ]
    assert filled_lines["germany"]["filled"] == [
        {"call": 0, "path": "country", "value": "DE", "rule": "code"}
    ]
    # taken from what the request writes, so not for review as ungrounded
    assert [filled_lines[key]["ungrounded"] for key in ("euros", "germany")] == [[], []]
    counts = sorted(
        (span["name"], int(span["attrs"]["needle.filled.count"]))
        for span in exported_spans(spans_file)
        if "needle.filled.count" in span["attrs"]
    )
    assert counts == [("process_request", 1)] * 2 + [("validate", 1)] * 2
