"""Choose and lay out what a training call on a lent GPU machine brings back under ``$OUT``.

A call brings back at most 8 files of at most 16 MiB each, 64 MiB in all (the device
tool's limits). An adapter of all 30 SmolLM2 blocks at rank 32 is 19.6 MB, so a file over
:data:`PIECE` is split into ``NAME.part0``, ``NAME.part1``, ... (join them in order:
``cat NAME.part* > NAME``, or :func:`join`). The stage's own adapter comes first, then the
exports along the way, the last first and then spread back over the run, while they fit.

``python3 -m training.device_return OUT WORK``: what ``training/device_stage.sh`` runs last.
``python3 -m training.device_return --latest OUT WORK``: the newest export alone, as
``latest.partial.gguf`` (the copy kept while training, for a call stopped at its limit).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

FILES = 8
FILE_BYTES = 16 << 20
TOTAL_BYTES = 64 << 20
PIECE = 15 << 20


def pieces(size: int) -> int:
    return max(1, -(-size // PIECE))


def export_step(path: Path) -> int:
    found = re.search(r"\.step(\d+)\.gguf$", path.name)
    return int(found.group(1)) if found else -1


def exports_in(work: Path) -> list[Path]:
    """The exports along the way in ``work``, in step order."""
    return sorted(work.glob("*.step*.gguf"), key=export_step)


def spread(exports: list[Path]) -> list[Path]:
    """The last export, then the others from three quarters, half and a quarter of the way,
    then the rest from the end backwards: each earlier pick is the one to keep if space runs out."""
    if not exports:
        return []
    count = len(exports)
    order = [count - 1] + [(q * count + 3) // 4 - 1 for q in (3, 2, 1)]
    order += list(range(count - 1, -1, -1))
    seen: list[int] = []
    for index in order:
        if index not in seen:
            seen.append(index)
    return [exports[i] for i in seen]


def choose(work: Path, already_files: int = 0, already_bytes: int = 0) -> list[Path]:
    """The files of ``work`` to bring back, within the limits left after what is already there."""
    adapters = sorted(
        p for p in work.glob("*.gguf") if p.name != "base.gguf" and export_step(p) < 0
    )
    exports = exports_in(work)
    chosen: list[Path] = []
    files, total = already_files, already_bytes
    for path in adapters + spread(exports)[:4]:
        size = path.stat().st_size
        if files + pieces(size) > FILES or total + size > TOTAL_BYTES:
            continue
        chosen.append(path)
        files += pieces(size)
        total += size
    return chosen


def lay_out(path: Path, out: Path, name: str | None = None) -> list[Path]:
    """Copy ``path`` into ``out`` (as ``name``), split in pieces when it is over :data:`PIECE`;
    each file appears whole (written under a hidden name, then renamed)."""
    name = name or path.name
    count = pieces(path.stat().st_size)
    written = []
    with path.open("rb") as source:
        for index in range(count):
            target = out / (name if count == 1 else f"{name}.part{index}")
            (out / f".{target.name}.copying").write_bytes(source.read(PIECE))
            (out / f".{target.name}.copying").replace(target)
            written.append(target)
    return written


def join(first: Path) -> Path:
    """Join ``NAME.part0``, ``NAME.part1``, ... (give any of them) back into ``NAME``."""
    stem = first.name.rsplit(".part", 1)[0]
    parts = sorted(
        first.parent.glob(f"{stem}.part*"), key=lambda p: int(p.name.rsplit(".part", 1)[1])
    )
    target = first.with_name(stem)
    with target.open("wb") as joined:
        for part in parts:
            joined.write(part.read_bytes())
    return target


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.device_return", description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--latest", action="store_true", help="only the newest export")
    a = ap.parse_args(argv)
    if a.latest:
        exports = exports_in(a.work)
        if exports:
            lay_out(exports[-1], a.out, "latest.partial.gguf")
        return
    for stale in [*a.out.glob("latest.partial.gguf*"), *a.out.glob(".*.copying")]:
        stale.unlink()  # the copy kept while training, and any copy the copier left half-done
    present = [p for p in a.out.iterdir() if p.is_file()]
    for path in choose(a.work, len(present), sum(p.stat().st_size for p in present)):
        for written in lay_out(path, a.out):
            print(f"{written.name} {written.stat().st_size}")


if __name__ == "__main__":
    main()
