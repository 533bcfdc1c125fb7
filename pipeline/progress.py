"""The progress bar on stderr (a terminal only): tqdm, with a total for a regular file.

The total is counted on a daemon thread in a first pass over the input (fixed-size
chunks: no memory growth), so the bar starts at once and gets its total and ETA when the
count is done. Lines an earlier run answered count as done from the start.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from typing import IO

from tqdm import tqdm

from pipeline.config import RunSummary

CHUNK_BYTES = 1 << 20


def count_requests(path: str) -> int:
    """Non-blank lines of ``path`` (what the reader turns into one output line each)."""
    count, content = 0, False
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            pieces = chunk.split(b"\n")
            for piece in pieces[:-1]:
                if content or piece.strip():
                    count += 1
                content = False
            content = content or bool(pieces[-1].strip())
    return count + content


def is_regular_file(path: str) -> bool:
    try:
        return path != "-" and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class ProgressBar:
    """Requests done (written or resumed) of the total, rate, ETA, ok and error counts."""

    def __init__(self, input_path: str, resumed: int, stream: IO[str] | None = None) -> None:
        self._total: int | None = None
        self._bar = tqdm(
            total=None,
            initial=resumed,
            unit="req",
            desc="needle",
            file=stream or sys.stderr,
            dynamic_ncols=True,
            leave=False,
            smoothing=0.1,
        )
        if is_regular_file(input_path):
            threading.Thread(
                target=self._count, args=(input_path,), name="needle-count", daemon=True
            ).start()

    def _count(self, path: str) -> None:
        with contextlib.suppress(OSError):  # no total: the bar still counts
            self._total = count_requests(path)

    def update(self, summary: RunSummary) -> None:
        bar = self._bar
        if self._total is not None and bar.total != self._total:
            bar.total = self._total
        postfix = f"ok={summary.ok} errors={summary.errors}"
        if summary.skipped:
            postfix += f" resumed={summary.skipped}"
        bar.set_postfix_str(postfix, refresh=False)
        done = summary.total + summary.skipped
        if done > bar.n:
            bar.update(done - bar.n)
        else:
            bar.refresh()

    def close(self) -> None:
        self._bar.close()
