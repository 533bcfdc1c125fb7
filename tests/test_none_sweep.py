"""``python -m training sweep-none``: one run at threshold 1 gives the accuracy at every
threshold, and each figure is what an eval run at that threshold scores (needle-tiny, real
pipeline runs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import PROJECT_ROOT, cli_env

LABELLED = PROJECT_ROOT / "inputs" / "labelled.jsonl"
ROW = re.compile(r"^(\d[\d.]*)\s+no call (\d+)/(\d+)\s+calls (\d+)/(\d+)\s+all (\d+)/(\d+)")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_each_threshold_scores_as_an_eval_run_at_it(tmp_path) -> None:
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(LABELLED.read_text().splitlines(keepends=True)[44:70]))
    sweep = _run(
        "-m", "training", "sweep-none", str(labelled), "--model", "needle-tiny",
        "--workers", "1", "--work", str(tmp_path / "work"),
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    rows = {
        float(m[1]): [int(g) for g in m.groups()[1:]]
        for m in map(ROW.match, sweep.stdout.splitlines())
        if m
    }
    assert len(rows) == 17 and all(row[-1] == 26 for row in rows.values())
    assert rows[1.0][0] == 0, "at threshold 1 no answer is left empty"
    assert rows[0.01][1] > 0, "the slice has requests that fit no tool"
    best = float(re.search(r"best --none-threshold ([\d.]+)", sweep.stdout)[1])
    assert rows[best][-2] == max(row[-2] for row in rows.values())
    assert (tmp_path / "work" / "labelled.t1.traces.jsonl").stat().st_size > 0
    for threshold in sorted({best, 0.5, 0.05}):
        run = _run(
            "-m", "pipeline", "eval", str(labelled), "--model", "needle-tiny", "--workers", "1",
            "--none-threshold", str(threshold), "--json",
        )  # fmt: skip
        assert run.returncode in (0, 1), run.stderr
        assert json.loads(run.stdout)["correct"] == rows[threshold][-2], threshold
