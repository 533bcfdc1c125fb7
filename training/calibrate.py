"""``python -m training calibrate LABELLED RESULTS [LABELLED RESULTS ...]``: fit needle-smol's
confidence calibration.

Each ``RESULTS`` is what ``python -m pipeline eval LABELLED --results RESULTS`` wrote with the
shipped model (use validation splits: ``training/data/valid_unseen.jsonl`` and the others;
several pairs are fitted together, which gives the answers of no call more weight than one
split has). The answers' confidences (already calibrated, if the model was) are fitted to
whether each answer was right, by Platt scaling with an intercept of its own for answers of no call
(:func:`workers.confidence.fit_platt_with_none`); the fit, composed with the model's
calibration so far, goes into the manifest, and the built model gets it as GGUF metadata
(the product's sha256 changes; the weights and answers do not).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from pipeline.modelbuild import Manifest
from pipeline.models import SMOL_MANIFEST
from workers.confidence import Calibration, fit_platt_with_none

from .confidence_metrics import auroc
from .scoring import _read_jsonl, calls_equal, request_id
from .ship import CONTEXT_LENGTH, ship


def scored_answers(labelled: Path, results: Path) -> list[tuple[float, bool, bool]]:
    """(confidence, right, no call) for every example whose answer has a confidence."""
    by_id = {str(r.get("id")): r for r in _read_jsonl(results)}
    scored = []
    for line, example in enumerate(_read_jsonl(labelled), start=1):
        result = by_id.get(str(request_id(example, line)))
        if not result or result.get("status") != "ok" or result.get("confidence") is None:
            continue
        calls = result.get("calls") or []
        right = calls_equal(example["answers"], calls)
        scored.append((float(result["confidence"]), right, not calls))
    return scored


def log_loss(scored: list[tuple[float, bool, bool]], calibration: Calibration) -> float:
    total = 0.0
    for score, right, none in scored:
        p = min(max(calibration.for_answer(not none).apply(score), 1e-9), 1 - 1e-9)
        total -= math.log(p if right else 1 - p)
    return total / len(scored)


def calibrate_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training calibrate", description=__doc__)
    ap.add_argument(
        "pairs",
        type=Path,
        nargs="+",
        metavar="LABELLED RESULTS",
        help="a split evaluated (a validation split) and the eval's --results file; "
        "several pairs are fitted together",
    )
    ap.add_argument("--manifest", type=Path, default=SMOL_MANIFEST)
    a = ap.parse_args(argv)
    if len(a.pairs) % 2:
        ap.error("give LABELLED RESULTS in pairs")
    splits = list(zip(a.pairs[::2], a.pairs[1::2], strict=True))
    scored = [s for labelled, results in splits for s in scored_answers(labelled, results)]
    if len(scored) < 20 or len({right for _, right, _ in scored}) < 2:
        print("error: need at least 20 answers with a confidence, right and wrong ones")
        return 2
    manifest = Manifest.read(a.manifest)
    before = Calibration.from_metadata(manifest.metadata()) or Calibration()
    fit = fit_platt_with_none(*zip(*scored, strict=True))
    combined = before.then(fit)
    found = auroc([(fit.for_answer(not none).apply(s), right) for s, right, none in scored])
    none = combined.for_answer(False)
    print(
        f"{len(scored)} answers, {sum(r for _, r, _ in scored)} right "
        f"({sum(n for _, _, n in scored)} of no call); AUROC {found:.3f}; log loss "
        f"{log_loss(scored, Calibration()):.4f} -> {log_loss(scored, fit):.4f}; Platt "
        f"a={combined.a:.4f} b={combined.b:.4f}, no call a={none.a:.4f} b={none.b:.4f}"
    )
    data = json.loads(a.manifest.read_text(encoding="utf-8"))
    calibration = {
        "platt": combined.to_metadata(),
        "platt_none": none.to_metadata(),
        "fit_on": " + ".join(labelled.name for labelled, _ in splits),
        "answers": len(scored),
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
