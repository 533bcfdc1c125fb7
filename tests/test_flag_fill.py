"""Optional flags set where the request names them (workers/flagfill.py)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from conftest import default_model_lines, exported_spans, repaired_arguments, write_jsonl

from workers.engine import DecodingSettings
from workers.flagfill import fill_flags
from workers.repairs import Repairs, repair_calls
from workers.toolset import ToolSet, normalize_tools

flags = partial(repaired_arguments, fill_flags)

PLAY = {
    "search_query": {"type": "string", "description": "What to search for."},
    "shuffle": {"type": "boolean", "description": "Shuffle play."},
    "open_now": {"type": "boolean"},
    "avoidHighways": {"type": "boolean"},
    "include_tracklist": {"type": "boolean"},
}


def test_a_flag_the_request_names_is_set() -> None:
    calls, filled = fill_flags(
        [{"name": "f", "arguments": {"search_query": "Focus"}}],
        "shuffle my Focus playlist",
        [{"name": "f", "parameters": {"type": "object", "properties": PLAY}}],
    )
    assert calls == [{"name": "f", "arguments": {"search_query": "Focus", "shuffle": True}}]
    assert filled == [{"call": 0, "path": "shuffle", "value": True, "rule": "flag"}]
    # every word of the name, anywhere, in any case; snake, camel and plural spellings
    assert flags("Korean places OPEN right now", PLAY) == {"open_now": True}
    assert flags("directions home, avoid the highway", PLAY) == {"avoidHighways": True}
    # function words ("include") need not be there
    assert flags("what's on the tracklist of OK Computer?", PLAY) == {"include_tracklist": True}


def test_what_it_leaves_alone() -> None:
    # the model gave the flag (even false), or the request lacks one of its words
    assert flags("shuffle it", PLAY, shuffle=False) == {"shuffle": False}
    assert flags("anything open in Old Town?", PLAY) == {}  # "now" is missing
    assert flags("keep me off the highways", PLAY) == {}  # "avoid" is missing
    assert flags("shuffled", PLAY) == {}  # words, not parts of words
    # negated just before its words
    assert flags("play Blue, don't shuffle", PLAY) == {}
    assert flags("play Blue, don\u2019t shuffle", PLAY) == {}
    assert flags("play Blue without shuffle", PLAY) == {}
    # the words are a string argument's value
    assert flags("search for the song Shuffle", PLAY, search_query="Shuffle") == {
        "search_query": "Shuffle"
    }
    # no words of its own ("include" is a function word), or not a boolean
    odd = {"include": {"type": "boolean"}, "shuffle": {"type": "string"}}
    assert flags("include shuffle", odd) == {}
    # another call of the same tool already sets it: the request named it for that one
    tool = {"name": "f", "parameters": {"type": "object", "properties": PLAY}}
    calls = [
        {"name": "f", "arguments": {"search_query": "Blue", "shuffle": True}},
        {"name": "f", "arguments": {"search_query": "Red"}},
    ]
    assert fill_flags(calls, "shuffle Blue, then play Red", [tool]) == (calls, [])


def test_after_the_enum_fill_and_only_where_the_schema_agrees() -> None:
    tool = {
        "name": "play",
        "parameters": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": ["album", "playlist"]},
                "shuffle": {"type": "boolean"},
            },
        },
    }
    toolset = ToolSet(normalize_tools([tool]))
    calls = [{"name": "play", "arguments": {}}]
    assert repair_calls(calls, "shuffle the playlist", toolset, DecodingSettings()) == (
        [{"name": "play", "arguments": {"kind": "playlist", "shuffle": True}}],
        Repairs(
            filled=[
                {"call": 0, "path": "kind", "value": "playlist", "rule": "enum"},
                {"call": 0, "path": "shuffle", "value": True, "rule": "flag"},
            ]
        ),
    )
    off = DecodingSettings(fill_flags=False)
    assert repair_calls(calls, "shuffle the playlist", toolset, off)[0] == [
        {"name": "play", "arguments": {"kind": "playlist"}}
    ]
    closed = {**tool, "parameters": {**tool["parameters"], "not": {"required": ["shuffle"]}}}
    strict = ToolSet(normalize_tools([closed]))
    assert repair_calls(calls, "shuffle it", strict, DecodingSettings()) == (calls, Repairs())


WEATHER_AND_CALLS: list[dict[str, Any]] = [
    {
        "name": "city_weather",
        "description": "Look up the weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name."},
                "day": {"type": "integer", "description": "0 = today, 1 = tomorrow, up to 6."},
                "hourly": {
                    "type": "boolean",
                    "description": "Return an hour-by-hour breakdown instead of a daily summary.",
                },
            },
            "required": ["city"],
        },
    },
    {
        "name": "start_call",
        "description": "Call a contact.",
        "parameters": {
            "type": "object",
            "properties": {
                "contact": {"type": "string", "description": "Who to call."},
                "video": {"type": "boolean", "description": "Make it a video call."},
            },
            "required": ["contact"],
        },
    },
]


def test_the_pipeline_fills_flags_and_says_so(tmp_path) -> None:
    """needle-smol leaves out ``"hourly": true`` and ``"video": true`` where the request
    names them; the output has them, lists them and counts them on the spans, and
    ``--no-flag-fill`` gives the model's own answer."""
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "hourly", "query": "hourly weather for Lisbon tomorrow please"},
            {"id": "video", "query": "video call Grandpa"},
        ],
    )
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps(WEATHER_AND_CALLS))

    def run(*args: str) -> dict[str, dict[str, Any]]:
        return default_model_lines(source, tools_file, tmp_path / f"out{len(args)}.jsonl", *args)

    spans_file = tmp_path / "spans.jsonl"
    raw = run("--no-flag-fill")
    filled = run("--traces", "file", "--traces-file", str(spans_file))
    assert [c["arguments"] for c in raw["hourly"]["calls"]] == [{"city": "Lisbon", "day": 1}]
    assert [c["arguments"] for c in raw["video"]["calls"]] == [{"contact": "Grandpa"}]
    assert all("filled" not in line for line in raw.values())
    assert [c["arguments"] for c in filled["hourly"]["calls"]] == [
        {"city": "Lisbon", "day": 1, "hourly": True}
    ]
    assert [c["arguments"] for c in filled["video"]["calls"]] == [
        {"contact": "Grandpa", "video": True}
    ]
    assert filled["video"]["filled"] == [
        {"call": 0, "path": "video", "value": True, "rule": "flag"}
    ]
    counts = sorted(
        (span["name"], int(span["attrs"]["needle.filled.count"]))
        for span in exported_spans(spans_file)
        if "needle.filled.count" in span["attrs"]
    )
    assert counts == [("process_request", 1)] * 2 + [("validate", 1)] * 2
