"""The one date or time an answer left out, filled in from the request (workers/datefill.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from conftest import repaired_arguments

from workers.datefill import fill_dates
from workers.engine import DecodingSettings
from workers.repairs import Repairs, repair_calls
from workers.toolset import ToolSet, normalize_tools

filled = partial(repaired_arguments, fill_dates)

HHMM = {"type": "string", "description": "Arrival time, HH:MM."}
DATE = {"type": "string", "format": "date"}
MOMENT = {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}$"}
TRIP: dict[str, Any] = {"destination": {"type": "string"}, "arrive_by": HHMM}


def test_the_one_value_the_request_writes_is_filled_in() -> None:
    assert filled("directions to 221 Elm Street, I have to arrive by 9am", TRIP) == {
        "arrive_by": "09:00"
    }
    twelve = {"type": "string", "pattern": "^(1[0-2]|[1-9]):[0-5]\\d (AM|PM)$"}
    assert filled("a taxi for noon", {"at": twelve}) == {"at": "12:00 PM"}
    assert filled("gift card on May 22nd, 2026", {"deliver_on": DATE}) == {
        "deliver_on": "2026-05-22"
    }
    # null, as a strict tool's left-out argument is, counts as left out
    assert filled("at 4 pm", TRIP, arrive_by=None) == {"arrive_by": "16:00"}
    assert filled("dentist March 3, 2026 at 2:30 pm", {"start": MOMENT}) == {
        "start": "2026-03-03T14:30"
    }


def test_what_it_leaves_alone() -> None:
    # the model gave it; the request writes two, none it reads, or says one in words
    assert filled("arrive by 9am", TRIP, arrive_by="10:00") == {"arrive_by": "10:00"}
    assert filled("arrive by 9am or 10am", TRIP) == {}
    assert filled("arrive by 9:30", TRIP) == {}  # morning or evening?
    assert filled("at 9am, or half past 6", TRIP) == {}
    assert filled("gift card on May 22nd", {"deliver_on": DATE}) == {}  # no year
    # the tool has two such parameters: which one?
    stay = {"check_in": DATE, "check_out": DATE}
    assert filled("a room from March 20, 2026", stay) == {}
    # a date-and-time needs the one date and the one time
    assert filled("dentist at 2:30 pm", {"start": MOMENT}) == {}
    # another call gives a time already, or two calls leave one out
    tool = {"name": "f", "parameters": {"type": "object", "properties": TRIP}}
    given = [{"name": "f", "arguments": {"arrive_by": "08:00"}}, {"name": "f", "arguments": {}}]
    assert fill_dates(given, "be there by 9am", [tool]) == (given, [])
    two = [{"name": "f", "arguments": {}}, {"name": "f", "arguments": {}}]
    assert fill_dates(two, "be there by 9am", [tool]) == (two, [])


def test_it_comes_last_and_is_listed() -> None:
    tool = {"name": "ride", "parameters": {"type": "object", "properties": TRIP}}
    toolset = ToolSet(normalize_tools([tool]))
    calls = [{"name": "ride", "arguments": {"destination": "Elm Street"}}]
    query = "ride to Elm Street, arrive by 4 pm"
    assert repair_calls(calls, query, toolset, DecodingSettings()) == (
        [{"name": "ride", "arguments": {"destination": "Elm Street", "arrive_by": "16:00"}}],
        Repairs(filled=[{"call": 0, "path": "arrive_by", "value": "16:00", "rule": "time"}]),
    )
    off = DecodingSettings(fill_dates=False)
    assert repair_calls(calls, query, toolset, off) == (calls, Repairs())
