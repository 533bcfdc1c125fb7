"""``python -m bench.raw share``: a worker's memory and the prompt tokens it decodes, as the
docs' table of served context against saved-state budget reports them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT, SAMPLE_QUERIES


def share(model: Path, *extra: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.raw",
            "share",
            str(SAMPLE_QUERIES),
            "--model",
            str(model),
            *extra,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_context_and_saved_budget_show_in_memory_and_decoded_tokens(test_model) -> None:
    wide = share(test_model, "--n-ctx", "4096", "--saved-mb", "16")
    narrow = share(test_model, "--n-ctx", "1024", "--saved-mb", "0")
    assert (wide["n_ctx"], narrow["n_ctx"]) == (4096, 1024)
    for run in (wide, narrow):
        assert run["requests"] == len(SAMPLE_QUERIES.read_bytes().splitlines())
        assert 0 < run["rss_after_load_mib"] <= run["peak_rss_mib"]
        assert 0 < run["prompt_tokens_decoded"] < run["prompt_tokens"]
    # The KV cache is resident from the start: a smaller context is less memory at once.
    assert narrow["rss_after_load_mib"] < wide["rss_after_load_mib"]
    # With no room for saved states, the tool lists that come back are decoded again.
    assert wide["saved_prefix_hits"] > 0 == narrow["saved_prefix_hits"]
    assert narrow["prompt_tokens_decoded"] > wide["prompt_tokens_decoded"]
