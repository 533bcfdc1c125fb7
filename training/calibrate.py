"""``python -m training calibrate LABELLED RESULTS``: fit needle-smol's confidence calibration.

``RESULTS`` is what ``python -m pipeline eval LABELLED --results RESULTS`` wrote with the
shipped model (use a validation split: ``training/data/valid_unseen.jsonl``). The answers'
confidences (already calibrated, if the model was) are fitted to whether each answer was
right, by Platt scaling (:func:`workers.confidence.fit_platt`); the fit, composed with the
model's calibration so far, goes into the manifest, and the built model gets it as GGUF
metadata (the product's sha256 changes; the weights and answers do not).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from pipeline.modelbuild import Manifest
from pipeline.models import SMOL_MANIFEST
from workers.confidence import Calibration, fit_platt

from .confidence_metrics import auroc
from .scoring import _read_jsonl, calls_equal, request_id
from .ship import CONTEXT_LENGTH, ship


def scored_confidences(labelled: Path, results: Path) -> list[tuple[float, bool]]:
    """(confidence, right) for every example whose answer has a confidence."""
    by_id = {str(r.get("id")): r for r in _read_jsonl(results)}
    pairs = []
    for line, example in enumerate(_read_jsonl(labelled), start=1):
        result = by_id.get(str(request_id(example, line)))
        if not result or result.get("status") != "ok" or result.get("confidence") is None:
            continue
        right = calls_equal(example["answers"], result.get("calls") or [])
        pairs.append((float(result["confidence"]), right))
    return pairs


def log_loss(pairs: list[tuple[float, bool]], calibration: Calibration) -> float:
    total = 0.0
    for score, right in pairs:
        p = min(max(calibration.apply(score), 1e-9), 1 - 1e-9)
        total -= math.log(p if right else 1 - p)
    return total / len(pairs)


def calibrate_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training calibrate", description=__doc__)
    ap.add_argument("labelled", type=Path, help="the split evaluated (a validation split)")
    ap.add_argument("results", type=Path, help="the eval's --results file")
    ap.add_argument("--manifest", type=Path, default=SMOL_MANIFEST)
    a = ap.parse_args(argv)
    pairs = scored_confidences(a.labelled, a.results)
    if len(pairs) < 20 or len({right for _, right in pairs}) < 2:
        print("error: need at least 20 answers with a confidence, right and wrong ones")
        return 2
    manifest = Manifest.read(a.manifest)
    before = Calibration.from_metadata(manifest.metadata()) or Calibration()
    fit = fit_platt([score for score, _ in pairs], [right for _, right in pairs])
    combined = before.then(fit)
    found = auroc(pairs)
    print(
        f"{len(pairs)} answers, {sum(r for _, r in pairs)} right; AUROC "
        f"{found:.3f}; log loss {log_loss(pairs, Calibration()):.4f} -> "
        f"{log_loss(pairs, fit):.4f}; Platt a={combined.a:.4f} b={combined.b:.4f}"
    )
    data = json.loads(a.manifest.read_text(encoding="utf-8"))
    calibration = {
        "platt": combined.to_metadata(),
        "fit_on": a.labelled.name,
        "answers": len(pairs),
        "auroc": round(found or 0.0, 4),
    }
    context = data.get("context_length") or CONTEXT_LENGTH
    path = ship(
        manifest.adapter,
        data["name"],
        a.manifest.parent,
        context,
        calibration,
        data.get("none_threshold"),
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(calibrate_main())
