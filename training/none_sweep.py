"""``python -m training sweep-none LABELLED [LABELLED ...]``: choose a model's
``--none-threshold`` on validation splits.

One pipeline run per split at threshold 1 (the answer is always the call the model would
make) with traces on: each request's model span carries the model's probability of
answering none (``needle.none.probability``). At a threshold ``t`` the answer is ``[]``
where that probability is at least ``t``, else the call; so one run gives the accuracy at
every threshold of the grid, scored as ``python -m pipeline eval`` scores
(:func:`training.scoring.calls_equal`). The best threshold over all splits together (the
higher one on a tie) is what ``python -m training ship --none-threshold`` takes.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workers.telemetry.attributes import NONE_PROBABILITY
from workers.telemetry.tracefile import read_spans

from .evaluate import run_pipeline, write_requests
from .scoring import _read_jsonl, calls_equal, request_id

GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02, 0.01)


def none_probabilities(traces: Path) -> dict[str, float]:
    """trace id -> the model's probability of no call, from a ``--traces file`` trace file."""
    return {
        found.span["traceId"]: float(found.attributes[NONE_PROBABILITY])
        for found in read_spans(traces)
        if NONE_PROBABILITY in found.attributes
    }


@dataclass
class Tally:
    """Right answers at one threshold: of the examples whose answer is ``[]``, and of the rest."""

    none_right: int = 0
    none_total: int = 0
    calls_right: int = 0
    calls_total: int = 0

    @property
    def right(self) -> int:
        return self.none_right + self.calls_right

    @property
    def total(self) -> int:
        return self.none_total + self.calls_total

    def line(self, threshold: float) -> str:
        share = self.right / self.total * 100 if self.total else 0.0
        return (
            f"{threshold:<5} no call {self.none_right}/{self.none_total}  calls "
            f"{self.calls_right}/{self.calls_total}  all {self.right}/{self.total} = {share:.1f}%"
        )


@dataclass
class Sweep:
    tallies: dict[float, Tally] = field(default_factory=lambda: {t: Tally() for t in GRID})
    missing: int = 0  # answers without a probability of none (errors, a forced side)

    def add(self, labelled: Path, results: Path, traces: Path) -> None:
        p_none = none_probabilities(traces)
        by_id = {str(r.get("id")): r for r in _read_jsonl(results)}
        for line, example in enumerate(_read_jsonl(labelled), start=1):
            result = by_id.get(str(request_id(example, line))) or {}
            ok = result.get("status") == "ok"
            p = p_none.get(result.get("trace_id") or "")
            self.missing += p is None
            expected = example["answers"]
            none_right = ok and calls_equal(expected, [])
            call_right = ok and calls_equal(expected, result.get("calls") or [])
            for threshold, tally in self.tallies.items():
                right = none_right if p is not None and p >= threshold else call_right
                if expected:
                    tally.calls_right += right
                    tally.calls_total += 1
                else:
                    tally.none_right += right
                    tally.none_total += 1

    def merge(self, other: Sweep) -> None:
        """Add ``other``'s counts to these."""
        self.missing += other.missing
        for threshold, tally in self.tallies.items():
            theirs = other.tallies[threshold]
            tally.none_right += theirs.none_right
            tally.none_total += theirs.none_total
            tally.calls_right += theirs.calls_right
            tally.calls_total += theirs.calls_total

    def best(self) -> float:
        """The threshold with the most right answers; the higher one on a tie."""
        return max(GRID, key=lambda t: (self.tallies[t].right, t))


def sweep_split(
    labelled: Path, work: Path, model: str | None, workers: int | None
) -> tuple[Path, Path]:
    """Run the pipeline on ``labelled`` at threshold 1 with traces: (results, traces)."""
    requests = work / f"{labelled.stem}.requests.jsonl"
    results = work / f"{labelled.stem}.t1.results.jsonl"
    traces = work / f"{labelled.stem}.t1.traces.jsonl"
    write_requests(labelled, requests)
    traces.unlink(missing_ok=True)
    extra = ["-q", "--none-threshold", "1", "--traces", "file", "--traces-file", str(traces)]
    status = run_pipeline(requests, results, model, workers, *extra)
    if status not in (0, 1):
        raise SystemExit(f"error: the pipeline run on {labelled} stopped with status {status}")
    return results, traces


def sweep_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training sweep-none", description=__doc__)
    ap.add_argument("labelled", type=Path, nargs="+", help="validation splits (JSONL)")
    ap.add_argument("--model", help="the model to sweep (default: the pipeline's default)")
    ap.add_argument("--workers", type=int, help="pipeline workers")
    ap.add_argument(
        "--work",
        type=Path,
        help="where the requests, results and traces go (default: a temporary folder)",
    )
    a = ap.parse_args(argv)
    missing = [str(p) for p in a.labelled if not p.is_file()]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="needle-sweep-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        total = Sweep()
        for labelled in a.labelled:
            results, traces = sweep_split(labelled, work, a.model, a.workers)
            one = Sweep()
            one.add(labelled, results, traces)
            total.merge(one)
            t = one.best()
            print(f"{labelled.name}: best {one.tallies[t].line(t)}")
    for threshold in GRID:
        print(total.tallies[threshold].line(threshold))
    best = total.best()
    print(f"best --none-threshold {best} ({total.missing} answers without a probability of none)")
    return 0


if __name__ == "__main__":
    sys.exit(sweep_main())
