"""The review queue: the output lines marked ``"review": true``, copied to their own file.

Written after the run from the whole output file, so a resumed run's queue holds the
lines of earlier runs too. The file is replaced whole (written aside, then renamed).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.results import ResultLineError, decode_line


def write_review_file(output_path: str | Path, review_path: str | Path) -> int:
    """Copy the output's review lines to ``review_path``; returns how many."""
    target = Path(review_path)
    aside = target.with_name(f".{target.name}.partial")
    count = 0
    with open(output_path, "rb") as source, open(aside, "wb") as queue:
        for raw in source:
            try:
                marked = raw.strip() and decode_line(raw).review
            except ResultLineError:
                continue
            if marked:
                queue.write(raw if raw.endswith(b"\n") else raw + b"\n")
                count += 1
    os.replace(aside, target)
    return count
