"""The one-line progress display on stderr (a terminal only)."""

from __future__ import annotations

import sys

from pipeline.config import RunSummary


def show_progress(summary: RunSummary, elapsed: float) -> None:
    rate = summary.total / elapsed if elapsed > 0 else 0.0
    sys.stderr.write(
        f"\r{summary.total} done ({summary.ok} ok, {summary.errors} errors"
        + (f", {summary.skipped} resumed" if summary.skipped else "")
        + f")  {rate:.1f} req/s  {elapsed:.0f}s\x1b[K"
    )
    sys.stderr.flush()
