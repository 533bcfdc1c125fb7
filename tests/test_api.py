"""``from pipeline import run``: the supervisor driven from Python, as the CLI drives it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_jsonl, sample_tools, write_jsonl

from pipeline import Summary, run
from pipeline.sink import ResumeRefused


def test_run_from_python_then_resume(test_model: Path, tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "query": f"Set a timer for {i + 1} minutes"} for i in range(6)]
    rows.append({"id": "bad"})  # no query: an error line, the run goes on
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(sample_tools()))
    output = tmp_path / "out.jsonl"
    options = {"model": test_model, "workers": 2, "tools": tools, "max_string_length": 12}

    summary = run(source, output, ordered=True, **options)
    assert isinstance(summary, Summary)
    assert summary.total == 7 and summary.ok + summary.errors == 7
    assert summary.error_types["missing_query"] == 1
    assert summary.model_name == "needle-test"
    lines = read_jsonl(output)
    assert [line["id"] for line in lines] == [row["id"] for row in rows]  # ordered=True

    again = run(source, output, **options)  # the same job again: nothing left to do
    assert (again.total, again.skipped) == (0, 7)
    assert read_jsonl(output) == lines
    with pytest.raises(ResumeRefused, match="overwrite=True") as refused:
        run(source, output, **options, max_tokens=100)
    assert "--overwrite" not in str(refused.value)  # Python callers pass a keyword


def test_options_are_checked_as_on_the_command_line(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"query": "x", "tools": []}])
    with pytest.raises(TypeError, match="no_such_option"):
        run(source, tmp_path / "o.jsonl", no_such_option=1)
    with pytest.raises(ValueError, match="no_such_option"):  # as the README says
        run(source, tmp_path / "o.jsonl", no_such_option=1)
    with pytest.raises(ValueError, match="workers"):
        run(source, tmp_path / "o.jsonl", workers=0)
    with pytest.raises(ValueError, match="input file not found"):
        run(tmp_path / "missing.jsonl", tmp_path / "o.jsonl")
    # Keywords are typed values, checked without building a command line.
    with pytest.raises(ValueError, match=r"workers must be an integer, got 2\.5"):
        run(source, tmp_path / "o.jsonl", workers=2.5)
    with pytest.raises(ValueError, match="ordered must be True or False"):
        run(source, tmp_path / "o.jsonl", ordered="yes")
    with pytest.raises(ValueError, match="executor must be one of local, ray"):
        run(source, tmp_path / "o.jsonl", executor="spark")
    with pytest.raises(ValueError, match="none_threshold: must be between 0 and 1"):
        run(source, tmp_path / "o.jsonl", none_threshold=1.5)
