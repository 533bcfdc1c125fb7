"""CSV and Parquet in, Parquet out: real files through the real CLI (needle-tiny).

Every row ends as exactly one output line, bad cells as error lines that name the row;
a missing column or an unreadable file stops the run before it starts (exit 2); a resumed
run redoes only the rows without a line; ``-o *.parquet`` converts the finished lines.
"""

from __future__ import annotations

import csv
import datetime
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import PROJECT_ROOT, SAMPLE_TOOLS, cli_env, read_jsonl

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.slow

QUERIES = [
    "Set a timer for 5 minutes",
    "what's the weather in Paris",
    "play some jazz",
    "turn off the kitchen lights",
]


def run(input_path: Path, output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", str(input_path), "-o", str(output)]
    command += ["--model", "needle-tiny", "-w", "1", "--tools", str(SAMPLE_TOOLS), *args]
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
    )


def test_csv_rows_become_requests(tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    with table.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["key", "text", "note"])
        for index, query in enumerate(QUERIES):
            writer.writerow([f"k{index}", query, f"n{index}"])
        writer.writerow(["k-empty", "", "blank query"])
    out = tmp_path / "out.jsonl"
    done = run(table, out, "--query-column", "text", "--id-column", "key", "--keep-columns", "note")
    assert done.returncode == 1, done.stderr  # one row has no query
    lines = {line["id"]: line for line in read_jsonl(out)}
    assert sorted(lines) == ["k-empty", "k0", "k1", "k2", "k3"]
    assert lines["k-empty"]["error"]["type"] == "invalid_query"
    assert lines["k-empty"]["line"] == 5 and "line 5" in lines["k-empty"]["error"]["message"]
    assert lines["k-empty"]["columns"] == {"note": "blank query"}
    assert lines["k0"]["calls"][0]["name"] == "set_timer"
    assert all(lines[f"k{i}"]["columns"] == {"note": f"n{i}"} for i in range(4))
    assert all(lines[f"k{i}"]["status"] == "ok" for i in range(4))


def write_parquet(path: Path, queries: list[object]) -> None:
    count = len(queries)
    pq.write_table(
        pa.table(
            {
                "query": pa.array(queries),
                "day": [datetime.date(2026, 1, 1 + i) for i in range(count)],
                "score": [float(i) for i in range(count)],
            }
        ),
        path,
        row_group_size=2,  # several row groups: read batch by batch
    )


def test_parquet_in_bad_cells_resume_and_parquet_out(tmp_path: Path) -> None:
    table = tmp_path / "rows.parquet"
    write_parquet(table, [*QUERIES, None, *QUERIES])
    out = tmp_path / "out.parquet"
    done = run(table, out, "--keep-columns", "day,score")
    assert done.returncode == 1, done.stderr
    lines = read_jsonl(Path(f"{out}.jsonl"))
    assert sorted(line["line"] for line in lines) == list(range(1, 10))
    by_line = {line["line"]: line for line in lines}
    assert by_line[5]["error"]["type"] == "missing_query"
    assert by_line[6]["columns"] == {"day": "2026-01-06", "score": 5.0}
    assert f"output {out}" in done.stderr
    written = pq.read_table(out).to_pylist()
    assert len(written) == 9 and {row["line"] for row in written} == set(range(1, 10))
    row = next(r for r in written if r["line"] == 1)
    assert orjson.loads(row["calls"])[0]["name"] == "set_timer"
    assert 0 < row["confidence"] <= 1 and orjson.loads(row["columns"])["score"] == 0.0

    # An interrupted run: the JSONL lines of rows 7-9 never got written.
    working = Path(f"{out}.jsonl")
    kept = [raw for raw in working.read_bytes().splitlines() if orjson.loads(raw)["line"] < 7]
    working.write_bytes(b"".join(raw + b"\n" for raw in kept))
    again = run(table, out, "--keep-columns", "day,score")
    assert "6 already done (resumed)" in again.stderr, again.stderr
    lines = read_jsonl(working)
    assert sorted(line["line"] for line in lines) == list(range(1, 10))
    assert pq.read_table(out).num_rows == 9


def test_a_missing_column_or_a_broken_file_stops_before_the_run(tmp_path: Path) -> None:
    table = tmp_path / "rows.parquet"
    write_parquet(table, QUERIES)
    done = run(table, tmp_path / "out.jsonl", "--query-column", "question")
    assert done.returncode == 2
    assert "no column 'question'" in done.stderr and "'query', 'day', 'score'" in done.stderr
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    done = run(broken, tmp_path / "out.jsonl")
    assert done.returncode == 2 and "cannot read" in done.stderr and "Parquet" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_non_string_query_cell_is_that_rows_error(tmp_path: Path) -> None:
    numbers = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"query": [1, 2]}), numbers)
    done = run(numbers, tmp_path / "out.jsonl")
    assert done.returncode == 1
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["error"]["type"] for line in lines] == ["invalid_query", "invalid_query"]


def test_a_malformed_csv_row_is_that_rows_error_only(tmp_path: Path) -> None:
    from pipeline.tables import TableColumns, TableSource

    table = tmp_path / "rows.csv"
    table.write_text("query\nplay jazz\n" + "x" * 300 + "\nturn off the lights\n", "utf-8")
    limit = csv.field_size_limit(100)  # the middle row's one field is over it
    source = TableSource(str(table), "csv", TableColumns())
    try:
        source.open()
        batch = source._read_batch()
    finally:
        csv.field_size_limit(limit)
        source.close()
    assert batch is not None and [raw.number for raw in batch] == [1, 2, 3]
    assert [raw.problem is not None for raw in batch] == [False, True, False]
    assert batch[1].problem is not None and batch[1].problem.startswith("row 2: field larger")


def test_jsonl_keep_columns_on_answers_and_error_lines(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "query": QUERIES[0], "batch": 7, "note": {"by": "ann"}},
        {"id": "b", "batch": 8},  # no query: an error line, which keeps its fields too
        {"id": "a", "query": QUERIES[1], "batch": 9},  # a duplicate id
        {"id": "c", "query": QUERIES[2]},  # has neither field
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"{not json\n")
    out = tmp_path / "out.jsonl"
    done = run(source, out, "--keep-columns", "batch,note")
    assert done.returncode == 1, done.stderr
    by_line = {line["line"]: line for line in read_jsonl(out)}
    assert by_line[1]["status"] == "ok"
    assert by_line[1]["columns"] == {"batch": 7, "note": {"by": "ann"}}
    assert by_line[2]["error"]["type"] == "missing_query" and by_line[2]["columns"] == {"batch": 8}
    assert by_line[3]["error"]["type"] == "duplicate_id" and by_line[3]["columns"] == {"batch": 9}
    assert by_line[4]["columns"] == {}
    assert by_line[5]["error"]["type"] == "invalid_json" and by_line[5].get("columns") is None


def test_a_resume_does_not_redo_a_malformed_csv_row(tmp_path: Path) -> None:
    """The row's error line has no id of its own: a resume finds it by its line number."""
    table = tmp_path / "rows.csv"
    big = "x" * 200_000  # over the csv module's field size limit (131,072)
    table.write_text(f"query\nplay jazz\n{big}\nturn off the lights\n", "utf-8")
    out = tmp_path / "out.jsonl"
    first = run(table, out)
    assert first.returncode == 1, first.stderr
    kinds = {line["line"]: (line["error"] or {}).get("type") for line in read_jsonl(out)}
    assert kinds == {1: None, 2: "invalid_row", 3: None}
    again = run(table, out)
    assert "3 already done (resumed)" in again.stderr, again.stderr
    assert sorted(line["line"] for line in read_jsonl(out)) == [1, 2, 3]
