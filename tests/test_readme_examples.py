"""The README's example answers are what the shipped default model gives.

The table under "## Models" lists sample requests (from inputs/queries.jsonl) and the calls
the default model makes for them, right or wrong.  This runs those requests through the
pipeline with no --model and checks each call, name and arguments, against the table.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT, SAMPLE_QUERIES, cli_env, read_jsonl, write_jsonl

README = PROJECT_ROOT / "README.md"
ROW = re.compile(r"^\| (?P<request>[^|]+?) \| (?P<calls>.+) \|$")
CALL = re.compile(r"`(?P<name>[A-Za-z_][\w.\-]*) (?P<args>\{.*?\})`(?=,|\s|$)")


def readme_examples() -> list[tuple[str, list[dict]]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Models", 1)[1].split("\n## ", 1)[0]
    table = section.split("| request | calls |", 1)[1].split("\n\n", 1)[0]
    examples = []
    for line in table.splitlines()[2:]:
        m = ROW.match(line.strip())
        assert m, f"unreadable README example row: {line!r}"
        cell = m["calls"]
        if cell.startswith("`[]`"):
            examples.append((m["request"], []))
            continue
        cell = re.sub(r"\(wrong: [^)]*\)", "", cell)
        calls = [
            {"name": c["name"], "arguments": json.loads(c["args"])} for c in CALL.finditer(cell)
        ]
        assert calls, f"no calls read from README row: {line!r}"
        examples.append((m["request"], calls))
    return examples


def test_readme_examples_are_what_the_default_model_answers(tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) >= 5
    samples = {r["query"]: r for r in read_jsonl(SAMPLE_QUERIES)}
    requests = []
    for i, (query, _) in enumerate(examples):
        assert query in samples, f"README example {query!r} is not in inputs/queries.jsonl"
        requests.append({"id": i, "query": query, "tools": samples[query]["tools"]})
    source = write_jsonl(tmp_path / "readme.jsonl", requests)
    output = tmp_path / "out.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", str(source), "-o", str(output), "--ordered"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, completed.stderr
    got = {r["id"]: r for r in read_jsonl(output)}
    for i, (query, calls) in enumerate(examples):
        assert got[i]["status"] == "ok", got[i]
        assert got[i]["calls"] == calls, (query, got[i]["calls"])
