"""Values a call repeats more often than the request says them (workers/repeats.py)."""

from __future__ import annotations

from workers.repeats import repeated_values


def _call(**arguments: object) -> dict[str, object]:
    return {"name": "f", "arguments": arguments}


def test_a_number_given_twice_but_said_once_is_marked() -> None:
    query = "the z-score for 721 where the mean is -678.76 and standard deviation 110"
    calls = [_call(value=-678.76, mean=-678.76, std_dev=110)]
    assert repeated_values(calls, query) == [{"call": 0, "path": "mean"}]
    assert repeated_values([_call(value=721, mean=-678.76, std_dev=110)], query) == []


def test_a_value_said_as_often_as_it_is_given_is_not_marked() -> None:
    query = "split 12 apples and 12 pears"
    assert repeated_values([_call(apples=12, pears=12.0)], query) == []
    assert repeated_values([_call(apples=12, pears=12, plums=12)], query) == [
        {"call": 0, "path": "plums"}
    ]
    # "-5" says 5 too; a value never said in digits counts as said no times
    assert repeated_values([_call(x=5, y=5)], "from -5 to 5") == []
    assert repeated_values([_call(x=7, y=7)], "seven by seven") == [{"call": 0, "path": "y"}]


def test_strings_compare_after_case_and_space_folding() -> None:
    query = "front is Ancient History, back is the same: ancient  history"
    assert repeated_values([_call(front="ancient history", back="Ancient History")], query) == []
    once = "a flashcard with ancient history on the back, front react hooks"
    calls = [_call(front="Ancient  history", back="ancient history", deck="react hooks")]
    assert repeated_values(calls, once) == [{"call": 0, "path": "back"}]


def test_each_object_and_each_call_on_its_own() -> None:
    query = "book Dhaka for 2024-05-06 and pollen for Dhaka"
    # the same value in two calls, or in an object and the object inside it, is not a repeat
    calls = [_call(city="Dhaka"), _call(city="Dhaka", date="2024-05-06")]
    assert repeated_values(calls, query) == []
    nested = [_call(city="Dhaka", where={"city": "Dhaka", "town": "dhaka"})]
    assert repeated_values(nested, "a room in Dhaka") == [{"call": 0, "path": "where/town"}]
    # booleans, nulls, lists and empty strings are not looked at
    calls = [_call(a=True, b=True, c=None, d=None, e=[1], f=[1], g="", h="")]
    assert repeated_values(calls, query) == []
