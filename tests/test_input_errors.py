"""Bad input of every kind: one error line each, with its line number and reason; no crash.

A property-based test (hypothesis) mixes generated bad lines with good ones, runs the
real CLI on them and checks every line against a small model of what it must become.
Each CLI run costs seconds, so each example is one run over a whole generated file.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import test_reliability_support as support
from conftest import SAMPLE_TOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability_support import Cli, read_output

pytestmark = pytest.mark.slow

MAX_LINE_BYTES = 1024
LINE_ERRORS = {"invalid_json", "not_an_object", "invalid_utf8", "line_too_long", "invalid_id"}


@dataclass(frozen=True)
class Line:
    """One generated input line and what it must become.

    ``kind`` is "ok" or the expected error type. ``id_field`` is the line's own id
    (``None``: the line has no id, so its id is its line number) for lines whose id the
    pipeline can read; lines of a LINE_ERRORS kind always report their line number.
    """

    data: bytes
    kind: str
    id_field: Any = None


def encode(value: Any) -> bytes:
    """JSON text (the standard library's: orjson refuses nesting past 254 levels)."""
    return json.dumps(value, ensure_ascii=False).encode()


def document_line(document: dict[str, Any], kind: str) -> Line:
    return Line(encode(document), kind, document.get("id"))


# Ids come from a small pool so that duplicates happen, integers collide with line
# numbers (of error lines, and of lines without an id), and "1" differs from 1.
ids = st.one_of(st.none(), st.integers(1, 40), st.sampled_from(["a", "b", "1", "ü", "x y"]))


def with_id(document: dict[str, Any], request_id: Any) -> dict[str, Any]:
    return document if request_id is None else {"id": request_id, **document}


@st.composite
def good_lines(draw: st.DrawFn, queries: tuple[str, ...]) -> Line:
    return document_line(with_id({"query": draw(st.sampled_from(queries))}, draw(ids)), "ok")


def _is_invalid_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return True
    return False


invalid_json = st.one_of(
    st.text(max_size=30).map(lambda text: "{" + text),
    st.sampled_from(['{"id": 1,}', "{'id': 1}", '{"query": "x"', "nope", "[1, 2", '{"a": NaN}']),
).filter(lambda text: "\n" not in text and _is_invalid_json(text))

not_objects = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=4),
)

bad_ids = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(""),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

bad_queries = st.one_of(
    st.integers(), st.sampled_from(["", "   ", "\t"]), st.lists(st.text(max_size=5), max_size=2)
)


def _nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _nested_schema(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"not": node}
    return {"name": "deep", "parameters": {"type": "object", "properties": {"a": node}}}


not_a_list = st.one_of(st.integers(), st.text(max_size=5), st.just({"name": "x"}))
bad_tool_lists = st.one_of(
    st.sampled_from(
        [
            [{"name": "x", "parameters": {"type": "strin"}}],
            [{"name": "x", "parameters": {"type": "object", "properties": 5}}],
            [{"name": "x", "parameters": {"type": "object", "required": "a"}}],
            [{"name": "x", "parameters": {"type": "object", "pattern": "["}}],
            [{"name": "x", "parameters": {"type": "array"}}],
            [{"name": "x", "parameters": []}],
            [{"name": "1x"}],
            [{"name": "x"}, {"name": "x"}],
            [{"description": "no name"}],
            [5],
            ["a tool"],
        ]
    ),
    st.sampled_from([70, 300]).map(_nested_list),  # past orjson's 254 levels too
    st.sampled_from([70, 90]).map(lambda depth: [_nested_schema(depth)]),
)


@st.composite
def bad_lines(draw: st.DrawFn, queries: tuple[str, ...]) -> Line:
    query = draw(st.sampled_from(queries))
    kind = draw(
        st.sampled_from(
            [
                "invalid_json",
                "not_an_object",
                "invalid_utf8",
                "line_too_long",
                "invalid_id",
                "missing_query",
                "invalid_query",
                "invalid_tools",
                "invalid_tool_schema",
            ]
        )
    )
    request_id = draw(ids)
    if kind == "invalid_json":
        return Line(draw(invalid_json).encode(), kind)
    if kind == "not_an_object":
        return Line(encode(draw(not_objects)), kind)
    if kind == "invalid_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]))
        return Line(b'{"id": "u", "query": "' + query.encode() + bad + b'"}', kind)
    if kind == "line_too_long":
        padding = "x" * draw(st.integers(MAX_LINE_BYTES, 3 * MAX_LINE_BYTES))
        return Line(encode(with_id({"query": query + padding}, request_id)), kind)
    if kind == "invalid_id":
        return Line(encode({"id": draw(bad_ids), "query": query}), kind)
    if kind == "missing_query":
        return document_line(with_id({"text": query}, request_id), kind)
    if kind == "invalid_query":
        return document_line(with_id({"query": draw(bad_queries)}, request_id), kind)
    if kind == "invalid_tools":
        return document_line(with_id({"query": query, "tools": draw(not_a_list)}, request_id), kind)
    tools = draw(bad_tool_lists)
    return document_line(with_id({"query": query, "tools": tools}, request_id), kind)


def expected_results(lines: list[Line]) -> list[tuple[int, Any, str]]:
    """(line, id, "ok" or error type) for every line, in input order."""
    seen: set[bytes] = set()
    expected = []
    for number, line in enumerate(lines, start=1):
        if line.kind in LINE_ERRORS:
            expected.append((number, number, line.kind))
            continue
        request_id = number if line.id_field is None else line.id_field
        key = orjson.dumps(request_id)  # ids compare as JSON values: 1 and "1" differ
        if key in seen:  # the duplicate's error line has an id of its own
            expected.append((number, f"{request_id} (line {number})", "duplicate_id"))
            continue
        seen.add(key)
        expected.append((number, request_id, line.kind))
    return expected


def by_line(item: tuple[int, Any, str]) -> int:
    return item[0]


def outcome(row: dict[str, Any]) -> tuple[int, Any, str]:
    kind = "ok" if row["status"] == "ok" else row["error"]["type"]
    return (row["line"], row["id"], kind)


@pytest.fixture(scope="module")
def queries(test_model: Path) -> tuple[str, ...]:
    """Queries the test model answers with status ok, with the sample tools file."""
    tools = orjson.loads(SAMPLE_TOOLS.read_bytes())
    good = tuple(row["query"] for row in support.good_samples(test_model) if row["tools"] == tools)
    assert len(good) >= 10
    return good


@pytest.fixture(scope="module")
def run_lines(test_model: Path) -> Iterator[Callable[[list[Line]], tuple[list[dict], list[dict]]]]:
    """Run the CLI over the lines, then the same command again (a resume with nothing left)."""
    token = uuid.uuid4().hex

    def run(lines: list[Line]) -> tuple[list[dict], list[dict]]:
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "in.jsonl"
            source.write_bytes(b"".join(line.data + b"\n" for line in lines))
            output = Path(scratch) / "out.jsonl"
            args = ("-w", "1", "--tools", str(SAMPLE_TOOLS), "--max-line-bytes", "1024")
            first = Cli(test_model, token, source, output, *args)
            code = first.wait()
            assert "Traceback" not in first.stderr, first.stderr
            assert code in (0, 1), first.stderr
            results = read_output(output)
            second = Cli(test_model, token, source, output, *args)
            # Nothing is left to do; the status still describes the whole output.
            assert second.wait() == code, second.stderr
            return results, read_output(output)

    yield run
    support.check_no_survivors(token)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_line_gets_exactly_one_output_line(
    data: st.DataObject,
    queries: tuple[str, ...],
    run_lines: Callable[[list[Line]], tuple[list[dict], list[dict]]],
) -> None:
    lines = data.draw(
        st.lists(
            st.one_of(good_lines(queries), bad_lines(queries)),
            min_size=5,
            max_size=40,
        ),
        label="lines",
    )
    results, after_resume = run_lines(lines)
    expected = expected_results(lines)
    assert sorted(map(outcome, results), key=by_line) == expected
    for row in results:
        if row["status"] != "ok":  # every error here is an input error: it names its line
            assert row["error"]["message"].startswith(f"line {row['line']}: "), row
    # Running the same command again finds everything done and adds nothing.
    assert after_resume == results


def test_error_lines_name_their_line_and_reason(
    tmp_path: Path, run_cli: Callable, queries: tuple[str, ...]
) -> None:
    good = orjson.dumps(queries[0])
    lines = [
        b'{"id": "good", "query": ' + good + b"}",
        b"{not json",
        b"[1, 2, 3]",
        b'{"id": 2.5, "query": "x"}',
        b'{"id": "bad-utf8", "query": "caf\xe9"}',
        b'{"id": "good", "query": "again"}',
        b'{"id": "schema", "query": "x", "tools": [{"name": "t", "parameters": {"type": 7}}]}',
        b'{"query": "' + b"y" * 2000 + b'"}',
        b"",
        b'{"id": 2, "query": ' + good + b"}",  # not a duplicate of line 2 (no id of its own)
        encode({"id": "deep-list", "query": "x", "tools": _nested_list(300)}),
        encode({"id": "deep-schema", "query": "x", "tools": [_nested_schema(80)]}),
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    run = run_cli(source, "-w", "1", "--tools", str(SAMPLE_TOOLS), "--max-line-bytes", "1024")
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    rows = {row["line"]: row for row in run.results()}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]  # blank line 9 is skipped
    errors = {line: (row["error"] or {}).get("type") for line, row in rows.items()}
    assert errors == {
        1: None,
        2: "invalid_json",
        3: "not_an_object",
        4: "invalid_id",
        5: "invalid_utf8",
        6: "duplicate_id",
        7: "invalid_tool_schema",
        8: "line_too_long",
        10: None,
        11: "invalid_tool_schema",
        12: "invalid_tool_schema",
    }
    assert rows[2]["id"] == 2 and rows[2]["error"]["message"].startswith("line 2: not valid JSON")
    assert rows[5]["error"]["message"].startswith("line 5: not valid UTF-8 at byte ")
    assert (
        rows[6]["id"] == "good (line 6)"
        and "already used by an earlier line" in rows[6]["error"]["message"]
    )
    assert "longer than 1024 bytes" in rows[8]["error"]["message"]
    assert "parameters is not a valid JSON Schema" in rows[7]["error"]["message"]
    assert rows[10]["id"] == 2 and rows[10]["status"] == "ok"
