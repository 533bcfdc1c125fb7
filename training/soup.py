"""``python -m training soup OUT.gguf ADAPTER ADAPTER [...]``: the mean of LoRA adapters,
exactly ("model soup" of the exports along one run, or of runs from one adapter).

A LoRA adapter adds ``(alpha / r) * B @ A`` to each weight. Stacking the adapters' ``A``
factors (rank ``n * r``) beside their ``B`` factors divided by ``n``, with alpha scaled to
keep ``alpha / rank``, gives an adapter whose delta is the mean of theirs, with nothing
approximated (float16 rounding of ``B / n`` aside; exact for two or four). It is ``n`` times
the size. Build and sweep it like any export (``python -m training merge``, ``python -m
training sweep-none``). The adapters must adapt the same tensors with the same rank and alpha.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.modelbuild import read_lora

from .lora import write_adapter


def soup(adapters: list[Path], out: Path) -> Path:
    """Write the adapter whose delta is the mean of ``adapters``' deltas to ``out``."""
    loaded = [read_lora(path) for path in adapters]
    first, alpha = loaded[0]
    rank = next(iter(first.values()))[0].shape[0]
    for path, (factors, their_alpha) in zip(adapters, loaded, strict=True):
        ranks = {a.shape[0] for a, _ in factors.values()}
        if set(factors) != set(first) or ranks != {rank} or their_alpha != alpha:
            raise SystemExit(
                f"error: {path} adapts other tensors, or with another rank or alpha, than "
                f"{adapters[0]} (rank {rank}, alpha {alpha:g}, {len(first)} tensors)"
            )
    count = len(loaded)
    mean = {
        name: (
            np.concatenate([np.asarray(f[name][0], np.float32) for f, _ in loaded], axis=0),
            np.concatenate([np.asarray(f[name][1], np.float32) / count for f, _ in loaded], axis=1),
        )
        for name in first
    }
    soup_of = " + ".join(path.name for path in adapters)
    write_adapter(out, mean, alpha * count, out.stem, {"soup_of": soup_of})
    return out


def soup_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training soup", description=__doc__)
    ap.add_argument("out", type=Path, help="the averaged adapter (GGUF)")
    ap.add_argument("adapters", type=Path, nargs="+", help="LoRA adapters (GGUF), two or more")
    a = ap.parse_args(argv)
    if len(a.adapters) < 2:
        ap.error("give two adapters or more")
    missing = [str(path) for path in a.adapters if not path.is_file()]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    path = soup(a.adapters, a.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, the mean of {len(a.adapters)})")
    return 0


if __name__ == "__main__":
    sys.exit(soup_main())
