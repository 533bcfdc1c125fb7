"""``python -m training ship ADAPTER.gguf``: make a trained adapter the shipped needle-smol.

Copies the adapter to ``workers/models/needle-smol.lora.gguf``, builds the served model from
it once (:mod:`pipeline.modelbuild`, into a scratch folder) and writes the manifest
``workers/models/needle-smol.json`` with the three sha256 digests the build checks: the
base GGUF's, the adapter's and the product's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline.modelbuild import merge_lora, model_metadata, sha256_of
from pipeline.models import MODELS_DIR, NEEDLE_SMOL, SMOLLM2_FILE, SMOLLM2_PACKAGE
from pipeline.models import smollm2_path as base_gguf

# Served context. Training prompts are at most 1,536 tokens, the longest BFCL prompt seen is
# 2,757 (live_multiple); llama.cpp keeps the whole KV cache resident from load (23 KB a
# token), so 3,072 instead of 4,096 keeps 22 MiB less per worker. `--n-ctx` raises it.
CONTEXT_LENGTH = 3072


def ship(
    adapter: Path,
    name: str = NEEDLE_SMOL,
    models_dir: Path = MODELS_DIR,
    context_length: int = CONTEXT_LENGTH,
    calibration: dict[str, Any] | None = None,
    none_threshold: dict[str, Any] | None = None,
) -> Path:
    """Ship ``adapter``; ``calibration`` (``{"platt": "a,b", "platt_none": "a,b", ...}``, from
    :mod:`training.calibrate`) and ``none_threshold`` (``{"value": t, ...}``: the model's
    own ``--none-threshold``) go into the manifest and the built model's metadata."""
    base = base_gguf()
    shipped = models_dir / f"{name}.lora.gguf"
    if adapter.resolve() != shipped.resolve():
        shutil.copyfile(adapter, shipped)
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "built.gguf"
        metadata = model_metadata(
            calibration["platt"] if calibration else None,
            none_threshold["value"] if none_threshold else None,
            calibration.get("platt_none") if calibration else None,
        )
        merge_lora(base, shipped, built, name, context_length, metadata)
        product = sha256_of(built)
    manifest = {
        "_doc": "Built by pipeline/modelbuild.py into the user's cache on first use; written "
        "by `python -m training ship`.",
        "name": name,
        "base": {"package": SMOLLM2_PACKAGE, "file": SMOLLM2_FILE, "sha256": sha256_of(base)},
        "adapter": {"file": shipped.name, "sha256": sha256_of(shipped)},
        "sha256": product,
        "context_length": context_length,
    }
    if calibration:
        manifest["calibration"] = calibration
    if none_threshold:
        manifest["none_threshold"] = none_threshold
    path = models_dir / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def ship_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training ship", description=__doc__)
    ap.add_argument("adapter", type=Path, help="LoRA adapter GGUF from `train --lora-rank`")
    ap.add_argument("--name", default=NEEDLE_SMOL)
    ap.add_argument(
        "--none-threshold",
        type=float,
        metavar="P",
        help="the model's own --none-threshold (choose it on a validation split)",
    )
    ap.add_argument("--chosen-on", default="", help="what --none-threshold was chosen on")
    a = ap.parse_args(argv)
    threshold = None
    if a.none_threshold is not None:
        threshold = {"value": a.none_threshold, "chosen_on": a.chosen_on}
    print(f"wrote {ship(a.adapter, a.name, none_threshold=threshold)}")
    return 0


def merge_main(argv: list[str] | None = None) -> int:
    """``python -m training merge ADAPTER OUT.gguf``: a candidate adapter built the way the
    shipped model is (merged into the SmolLM2 base, Q8_0), without shipping it, for
    ``pipeline eval --model OUT.gguf`` and ``training sweep-none --model OUT.gguf`` on
    validation splits."""
    ap = argparse.ArgumentParser(prog="python -m training merge", description=merge_main.__doc__)
    ap.add_argument("adapter", type=Path, help="LoRA adapter GGUF from `train --lora-rank`")
    ap.add_argument("out", type=Path, help="the merged model to write")
    ap.add_argument("--name", default=f"{NEEDLE_SMOL}-candidate")
    ap.add_argument(
        "--none-threshold", type=float, metavar="P", help="its own --none-threshold, if any"
    )
    a = ap.parse_args(argv)
    metadata = model_metadata(None, a.none_threshold)
    merge_lora(base_gguf(), a.adapter, a.out, a.name, CONTEXT_LENGTH, metadata)
    print(f"wrote {a.out} (sha256 {sha256_of(a.out)})")
    return 0


if __name__ == "__main__":
    sys.exit(ship_main())
