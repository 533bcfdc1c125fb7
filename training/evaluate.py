"""Exact-match evaluation of tool calls.

* :func:`score` -- pure: labelled JSONL (``{query, tools, answers}``) against pipeline results
  (``{id, status, calls}``), per tool and overall.
* :func:`eval_cli` -- ``eval DATA.jsonl``: writes a requests file, runs the pipeline
  (``python -m pipeline REQS -o RESULTS --overwrite``) and prints the scores; ``--direct``
  decodes in this process instead, one request at a time, with the worker's own engine and
  llguidance answer grammar (no supervisor, no worker processes).
  ``eval --bfcl CATEGORY[,...]`` does the same on the Berkeley Function Calling Leaderboard
  (:mod:`training.bfcl`, scored by BFCL's rules in :mod:`training.bfcl_score`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .confidence_metrics import confidence_summary
from .confidence_metrics import format_summary as format_confidence
from .scoring import NO_CALL, _canon, _read_jsonl, calls_equal, request_id

if TYPE_CHECKING:
    from workers.engine import DecodingSettings

__all__ = ["NO_CALL", "_canon", "calls_equal", "request_id", "score", "write_requests"]


def write_requests(labelled_path: str | Path, requests_path: str | Path) -> int:
    """``{id, query, tools}`` per line; id = the example's own id, else its line number."""
    n = 0
    with open(requests_path, "w", encoding="utf-8") as out:
        for i, ex in enumerate(_read_jsonl(labelled_path), start=1):
            out.write(
                json.dumps(
                    {"id": request_id(ex, i), "query": ex["query"], "tools": ex["tools"]},
                    ensure_ascii=False,
                )
                + "\n"
            )
            n += 1
    return n


def score(labelled_path: str | Path, results_path: str | Path) -> dict:
    """Exact-match accuracy overall and per tool (a tool's examples are those whose expected
    answer calls it; ``(no call)`` collects the examples whose answer is ``[]``)."""
    labelled = _read_jsonl(labelled_path)
    results = {}
    for r in _read_jsonl(results_path):
        results[str(r.get("id"))] = r
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    correct = 0
    failures = []
    pairs: list[tuple[float, bool]] = []  # (confidence, right) of every example
    # lines the review queue marks beside confidence: [marked, of them right]
    marks = {"ungrounded": [0, 0], "repeated": [0, 0]}
    for i, ex in enumerate(labelled, start=1):
        rid = str(request_id(ex, i))
        r = results.get(rid)
        got = r.get("calls") if r and r.get("status") == "ok" else None
        ok = got is not None and calls_equal(ex["answers"], got)
        correct += ok
        confidence = r.get("confidence") if r else None
        pairs.append((float(confidence) if confidence is not None else 0.0, ok))
        for mark, tally in marks.items():
            if r and r.get(mark):
                tally[0] += 1
                tally[1] += ok
        names = sorted({c["name"] for c in ex["answers"]}) or [NO_CALL]
        for nme in names:
            per[nme][0] += 1
            per[nme][1] += ok
        if not ok:
            failures.append(
                {
                    "id": rid,
                    "query": ex["query"],
                    "expected": ex["answers"],
                    "got": got
                    if r is None or got is not None
                    else {"status": r.get("status"), "error": r.get("error")},
                }
            )
    n = len(labelled)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "per_tool": {
            k: {"n": v[0], "correct": v[1], "accuracy": v[1] / v[0]} for k, v in sorted(per.items())
        },
        "failures": failures,
        "confidence": confidence_summary(pairs),
        "marks": {k: {"lines": v[0], "right": v[1]} for k, v in marks.items()},
        "pairs": pairs,
    }


def format_report(s: dict, title: str = "") -> str:
    lines = []
    if title:
        lines.append(title)
    width = max([len(k) for k in s["per_tool"]] + [8])
    for k, v in s["per_tool"].items():
        lines.append(f"  {k:<{width}}  {v['correct']:>4}/{v['n']:<4}  {v['accuracy']:6.1%}")
    lines.append(f"  {'overall':<{width}}  {s['correct']:>4}/{s['n']:<4}  {s['accuracy']:6.1%}")
    if "confidence" in s:
        lines.append(format_confidence(s["confidence"]))
    if "marks" in s:
        lines.append(format_marks(s["marks"]))
    return "\n".join(lines)


def format_marks(marks: dict) -> str:
    """How many lines the review queue marks beside confidence, and how many were right."""
    ungrounded, repeated = marks["ungrounded"], marks["repeated"]
    return (
        f"marked for review: {ungrounded['lines']} with an ungrounded string "
        f"({ungrounded['right']} right), {repeated['lines']} with a repeated value "
        f"({repeated['right']} right)"
    )


# --------------------------------------------------------------------------------------------
# Direct decoding: the pipeline's engine and grammar in this process, without the supervisor.


class DirectDecoder:
    """One request at a time through the worker's own engine (``workers.engine``): the
    Needle prompt, the llguidance answer grammar and greedy decoding, as in the pipeline."""

    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int = 2048,
        threads: int | None = None,
        settings: DecodingSettings | None = None,
    ):
        from workers.engine import DecodingSettings, LlamaEngine
        from workers.prompts import NeedlePromptFormat

        self.engine = LlamaEngine(model_path, n_ctx=n_ctx, n_threads=threads or 2)
        self.settings = settings or DecodingSettings()
        self.prompts = NeedlePromptFormat()
        self._grammars: dict[str, tuple[Any, Any]] = {}  # by tools key: (ToolSet, grammar)

    def decode(self, tools: list[dict], query: str, max_tokens: int | None = None) -> list:
        """The answer's calls; raises ValueError on a cut-off answer."""
        import dataclasses

        from workers.repairs import repair_calls
        from workers.toolset import ToolSet, answer_schema, normalize_tools, tools_key

        tools = normalize_tools(tools)
        key = tools_key(tools)
        if key not in self._grammars:
            schema = answer_schema(tools, self.settings.max_calls, self.settings.max_string_length)
            self._grammars[key] = (ToolSet(tools, key), self.engine.compile_grammar(schema))
        toolset, grammar = self._grammars[key]
        tokens = self.engine.tokenize(self.prompts.render(tools, query))
        settings = self.settings
        if max_tokens is not None:
            settings = dataclasses.replace(settings, max_tokens=max_tokens)
        completion = self.engine.complete(tokens, grammar, settings)
        if completion.finish_reason != "stop":
            raise ValueError(f"the answer did not finish: {completion.text!r}")
        answer, _ = repair_calls(json.loads(completion.text), query, toolset, settings)
        return answer


def direct_results(
    model_path: str | Path,
    labelled_path: str | Path,
    results_path: str | Path,
    limit: int | None = None,
    threads: int | None = None,
    settings: DecodingSettings | None = None,
) -> None:
    dec = DirectDecoder(model_path, threads=threads, settings=settings)
    exs = _read_jsonl(labelled_path)[: limit or None]
    with open(results_path, "w", encoding="utf-8") as out:
        for i, ex in enumerate(exs, start=1):
            try:
                calls = dec.decode(ex["tools"], ex["query"])
                r = {"id": request_id(ex, i), "status": "ok", "calls": calls}
            except Exception as e:
                r = {
                    "id": request_id(ex, i),
                    "status": "error",
                    "error": f"{type(e).__name__}: {e}",
                }
            out.write(json.dumps(r, ensure_ascii=False) + "\n")


def run_pipeline(
    requests: Path, results: Path, model: str | None, workers: int | None, *extra: str
) -> int:
    """``python -m pipeline REQUESTS -o RESULTS --overwrite``, run in this process through
    the same supervisor; its exit status (1 when some requests failed, which an
    evaluation expects)."""
    from pipeline.cli import main as pipeline_main

    argv = [str(requests), "-o", str(results), "--overwrite"]
    if model:
        argv += ["--model", model]
    if workers:
        argv += ["--workers", str(workers)]
    argv += list(extra)
    print("running: python -m pipeline", " ".join(argv), file=sys.stderr, flush=True)
    try:
        return pipeline_main(argv)
    except SystemExit as stop:  # a usage error
        return stop.code if isinstance(stop.code, int) else 2


def _answer(a: argparse.Namespace, requests: Path, results: Path, *extra: str) -> int:
    """Answer a requests file (``{id, query, tools}``) into ``results``; 0 when there is a
    results file to score."""
    from pipeline.options import REPAIR_OPTIONS, repair_settings

    if a.direct:
        from pipeline.models import resolve_model
        from workers.engine import DecodingSettings

        if a.none_threshold is not None:
            print("--direct does not take --none-threshold", file=sys.stderr)
            return 2
        if a.prompt_format not in (None, "needle"):
            print("--direct decodes the needle prompt format only", file=sys.stderr)
            return 2
        direct_results(
            resolve_model(a.model).path,
            requests,
            results,
            threads=a.threads,
            settings=DecodingSettings(**repair_settings(a)),
        )
        return 0
    if a.prompt_format:
        extra = (*extra, "--prompt-format", a.prompt_format)
    if a.none_threshold is not None:
        extra = (*extra, "--none-threshold", str(a.none_threshold))
    repairs = repair_settings(a)
    extra = (*extra, *(option for field, option in REPAIR_OPTIONS.items() if not repairs[field]))
    rc = run_pipeline(requests, results, a.model, a.workers, *extra)
    if rc != 0 and not results.exists():
        print(f"pipeline failed (exit {rc})", file=sys.stderr)
        return rc or 1
    return 0


def eval_cli(argv: list[str] | None = None) -> int:
    from pipeline.options import REPAIR_OPTIONS

    ap = argparse.ArgumentParser(
        prog="python -m pipeline eval",
        description="Exact-match accuracy of tool calls "
        "on labelled data ({query, tools, answers} per line), or BFCL accuracy with --bfcl.",
    )
    ap.add_argument("data", nargs="?", help="labelled JSONL (not with --bfcl)")
    ap.add_argument(
        "--bfcl",
        metavar="CATEGORY[,CATEGORY...]",
        help="evaluate on these Berkeley Function Calling Leaderboard v4 categories, scored "
        "by BFCL's rules (the data is fetched once with pip into $NEEDLE_BFCL_CACHE, default "
        "$XDG_CACHE_HOME/needle-pipeline/bfcl); e.g. simple_python,multiple,parallel,"
        "parallel_multiple,live_simple,live_multiple,irrelevance,live_irrelevance",
    )
    ap.add_argument("--model", help="GGUF to evaluate (default: the pipeline's default model)")
    ap.add_argument("--workers", type=int, help="pipeline workers")
    ap.add_argument(
        "--prompt-format",
        help="the pipeline's --prompt-format (needle, chat, ...; default: the pipeline's)",
    )
    ap.add_argument(
        "--none-threshold",
        type=float,
        metavar="P",
        help="the pipeline's --none-threshold (default: the model's own)",
    )
    ap.add_argument(
        "--no-repairs",
        dest="repairs",
        action="store_false",
        help="the pipeline's --no-repairs: score the model's own answers",
    )
    for field, option in REPAIR_OPTIONS.items():
        ap.add_argument(option, dest=field, action="store_false", help=f"the pipeline's {option}")
    ap.add_argument("--results", help="keep the results file here")
    ap.add_argument(
        "--direct",
        action="store_true",
        help="decode in this process with the pipeline's engine and grammar, one request "
        "at a time, instead of running the pipeline",
    )
    ap.add_argument(
        "--limit", type=int, help="only the first N examples (of each category with --bfcl)"
    )
    ap.add_argument("--threads", type=int, help="llama.cpp threads (with --direct)")
    ap.add_argument("--show-failures", type=int, default=10, metavar="N")
    ap.add_argument("--json", action="store_true", help="print the scores as JSON")
    ap.add_argument(
        "--report",
        metavar="HTML",
        help="also write a self-contained HTML report (per tool and category, confusion "
        "table, wrong arguments, latency, error types)",
    )
    a = ap.parse_args(argv)
    if (a.data is None) == (a.bfcl is None):
        ap.error("give either DATA.jsonl or --bfcl CATEGORY[,CATEGORY...]")

    t0, c0 = time.time(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="needle-eval-") as tmp:
        results = Path(a.results) if a.results else Path(tmp) / "results.jsonl"
        if a.bfcl is not None:
            rc = _eval_bfcl(a, Path(tmp), results)
        else:
            rc = _eval_labelled(a, Path(tmp), results)
    print(
        f"eval wall {time.time() - t0:.1f}s, CPU (this process) {time.process_time() - c0:.1f}s",
        file=sys.stderr,
    )
    return rc


def _eval_labelled(a: argparse.Namespace, tmp: Path, results: Path) -> int:
    labelled = Path(a.data)
    if a.limit:
        lim = tmp / "labelled.jsonl"
        with open(labelled, encoding="utf-8") as f:
            lim.write_text("".join(f.readlines()[: a.limit]), encoding="utf-8")
        labelled = lim
    reqs = tmp / "requests.jsonl"
    write_requests(labelled, reqs)
    rc = _answer(a, reqs, results)
    if rc:
        return rc
    s = score(labelled, results)
    if a.report:
        from .report import write_labelled

        print(f"report: {write_labelled(labelled, results, a.report, a.data)}", file=sys.stderr)
    if a.json:
        print(json.dumps({k: v for k, v in s.items() if k not in ("failures", "pairs")}, indent=1))
    else:
        print(format_report(s, f"exact match on {a.data}:"))
        for f in s["failures"][: a.show_failures]:
            print(
                f"  FAIL {f['id']}: {f['query']!r}\n"
                f"    expected {json.dumps(f['expected'], ensure_ascii=False)}\n"
                f"    got      {json.dumps(f['got'], ensure_ascii=False)}"
            )
    return 0


# BFCL's parallel answers have up to 8 calls (the pipeline's default --max-calls is 4).
BFCL_MAX_CALLS = 8


def _eval_bfcl(a: argparse.Namespace, tmp: Path, results: Path) -> int:
    from . import bfcl, bfcl_score

    try:
        categories = bfcl.parse_categories(a.bfcl)
        entries = [e for c in categories for e in bfcl.load_category(c, limit=a.limit)]
    except bfcl.BfclError as exc:
        print(f"python -m pipeline eval: error: {exc}", file=sys.stderr)
        return 2
    reqs = tmp / "bfcl-requests.jsonl"
    bfcl.write_requests(entries, reqs)
    rc = _answer(a, reqs, results, "--max-calls", str(BFCL_MAX_CALLS))
    if rc:
        return rc
    s = bfcl_score.score(entries, results)
    if a.report:
        from .report import write_bfcl

        print(f"report: {write_bfcl(entries, results, a.report, a.bfcl)}", file=sys.stderr)
    if a.json:
        print(json.dumps({k: v for k, v in s.items() if k != "failures"}, indent=1))
        return 0
    title = f"BFCL v4 (bfcl-eval {bfcl.BFCL_EVAL_VERSION}), BFCL's AST rules:"
    print(bfcl_score.format_report(s, title))
    for f in s["failures"][: a.show_failures]:
        print(
            f"  FAIL {f['id']}: {f['query']!r}\n"
            f"    expected {json.dumps(f['expected'], ensure_ascii=False)}\n"
            f"    got      {json.dumps(f['got'], ensure_ascii=False)}\n"
            f"    why      {f['why']}"
        )
    return 0
