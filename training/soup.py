"""``python -m training soup OUT.gguf ADAPTER ADAPTER [...]``: the mean of LoRA adapters,
exactly ("model soup" of the exports along one run, or of runs from one adapter).

A LoRA adapter adds ``(alpha / r) * B @ A`` to each weight. Stacking the adapters' ``A``
factors (their ranks summed) beside their ``B`` factors, each times its adapter's
``alpha / r`` and divided by their count, with alpha equal to the summed rank (a scale of
1), gives an adapter whose delta is the mean of theirs, with nothing approximated (float16
rounding of the scaled ``B`` aside: none where the scales and count are powers of two, as
for two adapters of alpha = 2r). It is as large as they are together. Build and sweep it
like any export (``python -m training merge``, ``python -m training sweep-none``). The
adapters must adapt the same tensors; ranks and alphas may differ. ``--rank R`` keeps the
best rank-``R`` approximation of each mean delta (SVD) instead: an adapter of the usual
size, close to the mean where the adapters come from one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.modelbuild import read_lora

from .lora import write_adapter


def truncated(a: np.ndarray, b: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The best rank-``rank`` factors of ``b @ a`` (scale 1) by SVD, and the share of its
    squared norm they keep."""
    u, s, vt = np.linalg.svd(b.astype(np.float64) @ a.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    kept = float((s[:rank] ** 2).sum() / max((s**2).sum(), 1e-300))
    new_a = (root[:, None] * vt[:rank]).astype(np.float32)
    new_b = (u[:, :rank] * root).astype(np.float32)
    return new_a, new_b, kept


def soup(adapters: list[Path], out: Path, rank: int | None = None) -> float:
    """Write the adapter whose delta is the mean of ``adapters``' deltas to ``out``; with
    ``rank``, the best rank-``rank`` approximation of it (the size of one adapter of that
    rank). Returns the least share of a delta's squared norm kept (1.0 without ``rank``)."""
    loaded = [read_lora(path) for path in adapters]
    first = loaded[0][0]
    for path, (factors, _) in zip(adapters, loaded, strict=True):
        if set(factors) != set(first):
            raise SystemExit(
                f"error: {path} adapts other tensors than {adapters[0]} "
                f"({len(factors)} against {len(first)})"
            )
    count = len(loaded)
    # Each B takes its adapter's scale (alpha / r) and 1 / count; the soup's scale is 1.
    mean = {
        name: (
            np.concatenate([np.asarray(f[name][0], np.float32) for f, _ in loaded], axis=0),
            np.concatenate(
                [
                    np.asarray(f[name][1], np.float32) * alpha / f[name][0].shape[0] / count
                    for f, alpha in loaded
                ],
                axis=1,
            ),
        )
        for name in first
    }
    least = 1.0
    if rank is not None:
        for name, (a, b) in mean.items():
            a, b, kept = truncated(a, b, rank)
            mean[name] = (a, b)
            least = min(least, kept)
    out_rank = next(iter(mean.values()))[0].shape[0]  # alpha = rank: a scale of 1
    soup_of = " + ".join(path.name for path in adapters)
    write_adapter(out, mean, float(out_rank), out.stem, {"soup_of": soup_of})
    return least


def soup_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training soup", description=__doc__)
    ap.add_argument("out", type=Path, help="the averaged adapter (GGUF)")
    ap.add_argument("adapters", type=Path, nargs="+", help="LoRA adapters (GGUF), two or more")
    ap.add_argument(
        "--rank",
        type=int,
        help="keep the best approximation of this rank (by SVD) instead of the summed rank",
    )
    a = ap.parse_args(argv)
    if len(a.adapters) < 2:
        ap.error("give two adapters or more")
    missing = [str(path) for path in a.adapters if not path.is_file()]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    if a.rank is not None and a.rank < 1:
        ap.error("--rank: give a rank of 1 or more")
    least = soup(a.adapters, a.out, a.rank)
    size = a.out.stat().st_size / 1e6
    said = f"{size:.1f} MB, the mean of {len(a.adapters)}"
    if a.rank is not None:
        said += f"; at rank {a.rank} each delta keeps >= {least:.6f} of its squared norm"
    print(f"wrote {a.out} ({said})")
    return 0


if __name__ == "__main__":
    sys.exit(soup_main())
