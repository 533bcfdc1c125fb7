"""An optional date, time of day or date-and-time the model left out, where the request
writes exactly one.

"remind me to submit the expense report on the 9th of May, 2026 at 9am" gives no
``"time"``, "I have to arrive by 9am" no ``"arrive_by"``. Where the answer gives no
parameter of that kind, exactly one of its calls leaves out (or sets to ``null``) the one
parameter of that kind its tool has, and the request writes one such value that it reads
(:mod:`workers.request_values`: a date with its year, a time whose half of the day is known,
none said in words it does not read), the value is filled in, in the parameter's form
(:mod:`workers.value_forms`). A date-and-time takes the request's one date and one time.
Top-level parameters only.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workers.request_values import dates, times
from workers.value_forms import date_form, datetime_form, fits_pattern, time_form, time_in_form

# How each kind's parameters are recognised: (key, schema) -> its form, or None.
_FORM: dict[str, Callable[[str, Mapping[str, Any]], str | None]] = {
    "date": lambda _key, schema: date_form(schema),
    "time": time_form,
    "datetime": lambda _key, schema: datetime_form(schema),
}


def _values(query: str) -> dict[str, Callable[[str], str] | None]:
    """For each kind, how to write the request's one value of it in a form, or None where
    the request does not write exactly one that it reads."""
    said_dates, said_times = dates(query), times(query)
    one_date = said_dates[0] if len(said_dates) == 1 else None
    one_time = said_times[0] if len(said_times) == 1 else None
    moment = None
    if one_date is not None and one_time is not None:
        moment = datetime.datetime.combine(one_date, datetime.time(*divmod(one_time, 60)))
    return {
        "date": None if one_date is None else one_date.strftime,
        "time": None if one_time is None else (lambda form: time_in_form(one_time, form)),
        "datetime": None if moment is None else moment.strftime,
    }


def fill_dates(
    calls: Sequence[Mapping[str, Any]], query: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``calls`` with the date, time or date-and-time the request writes filled in where the
    answer left out its one place, and ``{"call", "path", "value", "rule"}`` for each."""
    parameters = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    result = [{**call, "arguments": dict(call.get("arguments") or {})} for call in calls]
    filled: list[dict[str, Any]] = []
    for kind, write in _values(query).items():
        if write is None:
            continue
        given = 0
        open_places: list[tuple[int, str, str, Mapping[str, Any]]] = []
        for index, call in enumerate(result):
            properties = parameters.get(call.get("name"), {}).get("properties") or {}
            places = [
                (key, form, schema)
                for key, schema in properties.items()
                if isinstance(schema, Mapping) and (form := _FORM[kind](key, schema))
            ]
            given += sum(call["arguments"].get(key) is not None for key, _, _ in places)
            if len(places) == 1 and call["arguments"].get(places[0][0]) is None:
                open_places.append((index, *places[0]))
        if given or len(open_places) != 1:
            continue
        index, key, form, schema = open_places[0]
        value = write(form)
        if fits_pattern(schema.get("pattern"), value):
            result[index]["arguments"][key] = value
            filled.append({"call": index, "path": key, "value": value, "rule": kind})
    return result, filled
