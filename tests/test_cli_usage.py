"""The command line's usage: ``--help`` documents every option, and a bad command line exits
with status 2 and says why."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT, SAMPLE_QUERIES, cli_env

# The command line's public options, kept by hand: a renamed, lost or undocumented
# option fails the test below (and belongs in the README's usage table too).
CLI_OPTIONS = {
    "-h", "--help", "-o", "--output", "--tools", "--overwrite", "--ordered",
    "--max-line-bytes", "-m", "--model", "--prompt-format", "--dispatch", "--engine",
    "--max-tokens", "--temperature", "--seed", "--max-calls", "--max-string-length",
    "--n-ctx", "-w", "--workers", "--threads", "--timeout", "--max-attempts", "--grace",
    "--window", "--traces", "--traces-file", "--capture-content", "--metrics",
    "--metrics-file", "-v", "--verbose", "-q", "--quiet",
    "--executor", "--ray-address",
    "--input-format", "--output-format", "--project",
    "--retry-errors", "--query-column", "--id-column", "--keep-columns",
    "--review-below", "--review-file", "--none-threshold", "--no-answer-cache",
    "--no-reformat", "--no-unit-conversion", "--no-enum-fill", "--no-flag-fill",
    "--no-date-fill", "--no-repairs", "--no-number-fill", "--no-code-fill",
}  # fmt: skip


def test_help_documents_every_option():
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"],
        cwd=PROJECT_ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0
    documented = set()
    for line in completed.stdout.splitlines():
        entry = re.match(r"^  (-[\w-]+(?: [A-Z_.:]+)?(?:, -[\w-]+(?: [A-Z_.:]+)?)*)", line)
        if entry:
            documented.update(re.findall(r"(?:^|, )(-[\w-]+)", entry.group(1)))
    assert documented == CLI_OPTIONS
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = re.findall(r"^\| `(-[\w-]+)", readme, re.M)
    assert table and set(table) <= CLI_OPTIONS  # the README's table names real options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "input file not found"),
        (["{queries}", "--model", "/nonexistent.gguf"], "not found"),
        (["{queries}", "--model", "{readme}"], "not a GGUF file"),
        (["{queries}", "--workers", "0"], "must be at least 1"),
        (["{queries}", "--temperature", "-1"], "must be 0 or more"),
        (["{queries}", "--traces", "file"], "--traces-file"),
        (["{queries}", "--model", "hf:only-two/parts.gguf"], "hf:ORG/REPO/FILE.gguf"),
    ],
)
def test_usage_errors_exit_2(args, message, tmp_path):
    args = [a.format(queries=SAMPLE_QUERIES, readme=PROJECT_ROOT / "pyproject.toml") for a in args]
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", *args, "-o", str(tmp_path / "o.jsonl")],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr


def test_no_repairs_turns_off_every_repair():
    from pipeline.api import options_namespace
    from pipeline.options import REPAIR_OPTIONS, build_parser, repair_settings
    from workers.engine import REPAIRS

    parse = build_parser().parse_args
    assert set(repair_settings(parse(["in.jsonl"])).values()) == {True}
    assert set(repair_settings(parse(["in.jsonl", "--no-repairs"])).values()) == {False}
    one = repair_settings(parse(["in.jsonl", "--no-flag-fill"]))
    assert [field for field, on in one.items() if not on] == ["fill_flags"]
    assert set(
        repair_settings(options_namespace("in.jsonl", None, {"repairs": False})).values()
    ) == {False}
    assert list(REPAIR_OPTIONS) == [
        "reformat_strings",
        "fill_numbers",
        "convert_units",
        "fill_enums",
        "fill_flags",
        "fill_dates",
        "fill_codes",
    ]
    assert list(REPAIR_OPTIONS) == list(REPAIRS)  # an option for each repair, in its order
