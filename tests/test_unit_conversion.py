"""Numbers copied in the request's unit where the parameter names another (workers/units.py)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from conftest import default_model_lines, exported_spans, repaired_arguments, write_jsonl

from workers.engine import DecodingSettings
from workers.repairs import Repairs, repair_calls
from workers.toolset import ToolSet, normalize_tools
from workers.units import convert_units, mentions, parameter_unit

WAVELENGTH = {
    "name": "em_wavelength",
    "description": "Wavelength of an electromagnetic wave with the given frequency, in meters.",
    "parameters": {
        "type": "object",
        "properties": {
            "frequency_hz": {"type": "number", "description": "Frequency in hertz"},
            "medium": {"type": "string", "enum": ["vacuum", "air", "water", "glass"]},
        },
        "required": ["frequency_hz"],
    },
}
LOAN = {
    "name": "personalLoanQuote",
    "description": "Get an indicative personal loan quote.",
    "parameters": {
        "type": "object",
        "properties": {
            "amount_cents": {"type": "integer", "description": "Amount to borrow, in cents"},
            "term_years": {"type": "integer", "minimum": 1, "maximum": 7},
            "credit_band": {"type": "string", "enum": ["excellent", "good", "fair", "poor"]},
        },
        "required": ["amount_cents", "term_years"],
    },
}


_converted = partial(repaired_arguments, convert_units)


def test_a_number_copied_in_the_requests_unit_is_put_in_the_parameters() -> None:
    calls, converted = convert_units(
        [{"name": "em_wavelength", "arguments": {"frequency_hz": 2.4, "medium": "vacuum"}}],
        "convert frequency to wavelength: 2.4 GHz, in a vacuum",
        [WAVELENGTH],
    )
    assert calls == [
        {"name": "em_wavelength", "arguments": {"frequency_hz": 2400000000, "medium": "vacuum"}}
    ]
    assert converted == [{"call": 0, "path": "frequency_hz", "from": 2.4, "to": 2400000000}]
    # a multiplier, a currency sign, a money word; the unit in the name or the description
    cents = {"amount_cents": {"type": "integer"}}
    assert _converted("$30k, 3 years", cents, amount_cents=30) == {"amount_cents": 3000000}
    assert _converted("$30k, 3 years", cents, amount_cents=30000) == {"amount_cents": 3000000}
    assert _converted("a 12 grand loan", cents, amount_cents=12) == {"amount_cents": 1200000}
    assert _converted("$47.50 for 5 of us", cents, amount_cents=47.5) == {"amount_cents": 4750}
    usage = {"monthly_usage_kwh": {"type": "number"}}
    assert _converted("we use 2k kWh a month", usage, monthly_usage_kwh=2) == {
        "monthly_usage_kwh": 2000
    }
    seconds = {"duration": {"type": "integer", "description": "How long, in seconds"}}
    assert _converted("a 5-minute pasta timer", seconds, duration=5) == {"duration": 300}
    assert _converted("remind me in 2 hours", {"delayMs": {"type": "integer"}}, delayMs=2) == {
        "delayMs": 7200000
    }
    hours = {"duration_hours": {"type": "number"}}
    assert _converted("a 90 minute call", hours, duration_hours=90) == {"duration_hours": 1.5}
    term = {"term_months": {"type": "integer"}}
    assert _converted("$22,500 over 4 yrs", term, term_months=4) == {"term_months": 48}
    # months and years convert to each other only, not to days
    days = {"duration_days": {"type": "number"}}
    assert _converted("for 2 months", days, duration_days=2) == {"duration_days": 2}
    nested = {"trip": {"type": "object", "properties": {"distance_meters": {"type": "number"}}}}
    calls, converted = convert_units(
        [{"name": "f", "arguments": {"trip": {"distance_meters": 10}}}],
        "log a 10 km run",
        [{"name": "f", "parameters": {"type": "object", "properties": nested}}],
    )
    assert calls[0]["arguments"] == {"trip": {"distance_meters": 10000}}
    assert converted == [{"call": 0, "path": "trip/distance_meters", "from": 10, "to": 10000}]


def test_a_number_the_request_does_not_write_becomes_its_one_quantity() -> None:
    """A number the model worked out wrong ("amount_cents": 1000 for "$100") gives way to
    the request's one quantity of the parameter's kind, converted."""
    cents = {"amount_cents": {"type": "integer"}}
    assert _converted("a $100 gift card", cents, amount_cents=1000) == {"amount_cents": 10000}
    term = {"term_months": {"type": "integer"}}
    assert _converted("loan calc $22,500 4 yrs 9.9%", term, term_months=40) == {"term_months": 48}
    ms = {"durationMs": {"type": "integer"}}
    assert _converted("a 90 second countdown", ms, durationMs=9000) == {"durationMs": 90000}
    # two quantities of that kind, one said in words, or none: the model's
    assert _converted("$100 or $50", cents, amount_cents=1000) == {"amount_cents": 1000}
    minutes = {"minutes": {"type": "integer"}}
    assert _converted("an hour and 10 minutes", minutes, minutes=60) == {"minutes": 60}
    assert _converted("a gift card", cents, amount_cents=1000) == {"amount_cents": 1000}


def test_numbers_it_cannot_be_sure_of_are_left_alone() -> None:
    hz = {"frequency_hz": {"type": "number"}}
    # already converted, or the request's unit is the parameter's
    assert _converted("2.4 GHz", hz, frequency_hz=2400000000) == {"frequency_hz": 2400000000}
    assert _converted("1420 MHz", {"f_mhz": {"type": "number"}}, f_mhz=1420) == {"f_mhz": 1420}
    # the request also writes the number bare, or in two units
    minutes = {"duration_seconds": {"type": "integer"}}
    query = "a 30 min meeting for 30 people"
    assert _converted(query, minutes, duration_seconds=30) == {"duration_seconds": 30}
    assert _converted("5 min, then 5 hours", minutes, duration_seconds=5) == {"duration_seconds": 5}
    # no unit in the parameter, a rate, a name word that means something else
    assert _converted("wifi on 5 GHz, 5 guests", {"guests": {"type": "integer"}}, guests=5) == {
        "guests": 5
    }
    assert _converted("5 min per km", {"min_per_km": {"type": "number"}}, min_per_km=5) == {
        "min_per_km": 5
    }
    bedrooms = {"min_bedrooms": {"type": "integer"}}
    assert _converted("2 km away, 2 bedrooms", bedrooms, min_bedrooms=2) == {"min_bedrooms": 2}
    # an integer parameter that the converted value would not fit
    hours = {"duration_hours": {"type": "integer"}}
    assert _converted("90 minutes", hours, duration_hours=90) == {"duration_hours": 90}
    # a value of another dimension, booleans and strings
    grams = {"weight_kg": {"type": "number"}}
    assert _converted("5 minutes", grams, weight_kg=5) == {"weight_kg": 5}
    flags = {"on_hz": {"type": "boolean"}, "label_hz": {"type": "string"}}
    assert _converted("1 GHz", flags, on_hz=True, label_hz="1") == {"on_hz": True, "label_hz": "1"}


def test_a_conversion_the_schema_refuses_leaves_the_models_value() -> None:
    gift = {
        "name": "gift_card",
        "parameters": {
            "type": "object",
            "properties": {"amount_cents": {"type": "integer", "maximum": 50000}},
            "required": ["amount_cents"],
        },
    }
    toolset = ToolSet(normalize_tools([gift]))
    calls = [{"name": "gift_card", "arguments": {"amount_cents": 100}}]
    settings = DecodingSettings()
    assert repair_calls(calls, "a $100 gift card", toolset, settings) == (
        [{"name": "gift_card", "arguments": {"amount_cents": 10000}}],
        Repairs(converted=[{"call": 0, "path": "amount_cents", "from": 100, "to": 10000}]),
    )
    calls = [{"name": "gift_card", "arguments": {"amount_cents": 1000}}]
    assert repair_calls(calls, "a $1000 gift card", toolset, settings) == (calls, Repairs())


def test_the_table_reads_units_names_and_descriptions() -> None:
    found = mentions("$2m deal, 15K race, 1,200.50 dollars, 3 years")
    assert [(m.number, m.multiplier) for m in found] == [
        (2.0, 1e6),
        (15.0, 1e3),
        (1200.5, 1.0),
        (3.0, 1.0),
    ]
    dimensions = [m.unit.dimension if m.unit else None for m in found]
    assert dimensions == ["money", None, "money", "months"]
    assert parameter_unit("amountCents", {}).scale == 0.01  # type: ignore[union-attr]
    assert parameter_unit("speed", {"description": "in meters per second"}) is None
    assert parameter_unit("speed", {"description": "Speed in m/s"}) is None
    assert parameter_unit("size", {"description": "Size in GB"}) is None  # not in the table


def test_the_pipeline_converts_fills_and_says_so(tmp_path) -> None:
    """needle-smol copies "2.4" for "2.4 GHz" and "12" for "12 grand", and leaves out the
    credit band (valid_written); the output has the converted and filled values, lists of
    them and span attributes, and ``--no-repairs`` gives the
    model's own answer."""
    tools = [WAVELENGTH, LOAN]
    loan = "My credit is excellent. What would a 12 grand personal loan over five years cost me?"
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "ghz", "query": "convert frequency to wavelength: 2.4 GHz, in a vacuum"},
            {"id": "loan", "query": loan},
        ],
    )
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps(tools))

    def run(*args: str) -> dict[str, dict[str, Any]]:
        return default_model_lines(source, tools_file, tmp_path / f"out{len(args)}.jsonl", *args)

    spans_file = tmp_path / "spans.jsonl"
    raw = run("--no-repairs")
    repaired = run("--traces", "file", "--traces-file", str(spans_file))
    assert [c["arguments"] for c in raw["ghz"]["calls"]] == [
        {"frequency_hz": 2.4, "medium": "vacuum"}
    ]
    assert [c["arguments"] for c in raw["loan"]["calls"]] == [{"amount_cents": 12, "term_years": 5}]
    assert all("converted" not in line and "filled" not in line for line in raw.values())
    assert [c["arguments"]["frequency_hz"] for c in repaired["ghz"]["calls"]] == [2400000000]
    assert [c["arguments"] for c in repaired["loan"]["calls"]] == [
        {"amount_cents": 1200000, "term_years": 5, "credit_band": "excellent"}
    ]
    assert repaired["loan"]["converted"] == [
        {"call": 0, "path": "amount_cents", "from": 12, "to": 1200000}
    ]
    assert repaired["loan"]["filled"] == [
        {"call": 0, "path": "credit_band", "value": "excellent", "rule": "enum"}
    ]
    assert "filled" not in repaired["ghz"]  # "vacuum" was the model's own
    spans = exported_spans(spans_file)
    counts = sorted(
        (span["name"], key, int(span["attrs"][key]))
        for span in spans
        for key in ("needle.converted.count", "needle.filled.count")
        if key in span["attrs"]
    )
    assert counts == [
        ("process_request", "needle.converted.count", 1),
        ("process_request", "needle.converted.count", 1),
        ("process_request", "needle.filled.count", 1),
        ("validate", "needle.converted.count", 1),
        ("validate", "needle.converted.count", 1),
        ("validate", "needle.filled.count", 0),
        ("validate", "needle.filled.count", 1),
    ]
