"""``python -m training soup OUT.gguf ADAPTER ADAPTER [...]``: the mean of LoRA adapters,
exactly ("model soup" of the exports along one run, or of runs from one adapter).

A LoRA adapter adds ``(alpha / r) * B @ A`` to each weight. Stacking the adapters' ``A``
factors (their ranks summed) beside their ``B`` factors, each times its adapter's
``alpha / r`` and divided by their count, with alpha equal to the summed rank (a scale of
1), gives an adapter whose delta is the mean of theirs, with nothing approximated (float16
rounding of the scaled ``B`` aside: none where the scales and count are powers of two, as
for two adapters of alpha = 2r). It is as large as they are together. Build and sweep it
like any export (``python -m training merge``, ``python -m training sweep-none``). The
adapters must adapt the same tensors; ranks and alphas may differ.
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
    rank = next(iter(mean.values()))[0].shape[0]
    soup_of = " + ".join(path.name for path in adapters)
    write_adapter(out, mean, float(rank), out.stem, {"soup_of": soup_of})
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
