"""BFCL v4 evaluation: schema conversion, BFCL's answer rules, and the eval command.

The unit tests run on real BFCL lines copied into ``tests/data/bfcl_cases.json`` (no
network). The slow tests fetch the ``bfcl-eval`` wheel with pip (into the usual cache) and
run on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, cli_env

from training import bfcl
from training.bfcl_score import check_entry, format_report, score, standardize
from workers.toolset import ToolSet, answer_schema, normalize_tools

CASES = json.loads((Path(__file__).parent / "data" / "bfcl_cases.json").read_text("utf-8"))


def _entries() -> list[bfcl.BfclEntry]:
    return [
        bfcl.entry(
            case["category"],
            case["question"],
            case["possible_answer"]["ground_truth"] if case["possible_answer"] else None,
        )
        for case in CASES["cases"]
    ]


def _candidates() -> list[tuple[str, bfcl.BfclEntry, dict[str, Any]]]:
    return [
        (f"{e.id}: {c['why']}", e, c)
        for e, case in zip(_entries(), CASES["cases"], strict=True)
        for c in case["candidates"]
    ]


@pytest.mark.parametrize(
    ("entry", "candidate"),
    [(e, c) for _, e, c in _candidates()],
    ids=[label for label, _, _ in _candidates()],
)
def test_bfcl_verdicts(entry: bfcl.BfclEntry, candidate: dict[str, Any]) -> None:
    right, why = check_entry(
        entry.category, entry.functions, entry.ground_truth, candidate["calls"]
    )
    assert right == candidate["right"], why
    assert bool(why) != right


def test_standardize_mirrors_bfcl() -> None:
    assert standardize("New York, NY") == standardize("new york ny") == "newyorkny"
    assert standardize("April 1, 2024") == standardize("April 1,2024")
    assert standardize("x^2") == standardize("x**2") == "x2"
    assert standardize("it's") == 'it"s'
    assert standardize("a_b-c/d.e") == "abcde"


def test_convert_function() -> None:
    doc = {
        "name": "geo.route",
        "description": "Plan a route.",
        "parameters": {
            "type": "dict",
            "properties": {
                "start": {"type": "tuple", "items": {"type": "float"}, "description": "Lat, lon."},
                "stops": {
                    "type": "array",
                    "items": {
                        "type": "dict",
                        "properties": {
                            "name": {"type": "string", "enum": ["a", "b"]},
                            "wait": {"type": "float", "default": 0},
                        },
                        "required": ["name"],
                    },
                },
                "meta": {"type": "any", "description": "Anything."},
                "untyped": {"description": "No type given."},
                "grid": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            },
            "required": ["start"],
        },
    }
    tool = bfcl.convert_function(doc)
    assert tool["name"] == "geo.route" and tool["description"] == "Plan a route."
    params = tool["parameters"]
    assert params["type"] == "object" and params["required"] == ["start"]
    props = params["properties"]
    assert props["start"] == {
        "type": "array",
        "items": {"type": "number"},
        "description": "Lat, lon.",
    }
    stop = props["stops"]["items"]
    assert stop["type"] == "object" and stop["required"] == ["name"]
    assert stop["properties"] == {
        "name": {"type": "string", "enum": ["a", "b"]},
        "wait": {"type": "number", "default": 0},
    }
    # BFCL's GORILLA_TO_OPENAPI: "any" and a missing type become "string"
    assert props["meta"] == {"type": "string", "description": "Anything."}
    assert props["untyped"]["type"] == "string"
    assert props["grid"]["items"]["items"] == {"type": "integer"}
    assert doc["parameters"]["type"] == "dict", "the BFCL doc itself is left as it was"
    ToolSet(normalize_tools([tool]))


def test_case_tools_accepted_by_pipeline() -> None:
    for e in _entries():
        tools = normalize_tools(e.tools)
        ToolSet(tools)
        answer_schema(tools, 8, 128)


def test_query_is_last_user_message() -> None:
    q = [[{"role": "system", "content": "Be nice."}, {"role": "user", "content": "hi"}]]
    assert bfcl.query_text(q) == "hi"


def test_score_counts_error_lines_wrong(tmp_path: Path) -> None:
    entries = {e.id: e for e in _entries()}
    picked = [entries["simple_python_0"], entries["parallel_0"], entries["irrelevance_0"]]
    irrelevant_error = dict(vars(entries["irrelevance_0"]), id="irrelevance_0_error")
    picked.append(bfcl.BfclEntry(**irrelevant_error))
    tri = {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}
    rows = [
        {"id": "simple_python_0", "status": "ok", "calls": [tri]},
        {"id": "parallel_0", "status": "error", "calls": [], "error": {"type": "truncated"}},
        {"id": "irrelevance_0", "status": "ok", "calls": []},
        {"id": "irrelevance_0_error", "status": "error", "error": {"type": "context_overflow"}},
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    s = score(picked, results)
    assert (s["n"], s["correct"], s["errors"]) == (4, 2, 2)
    assert s["per_category"]["simple_python"]["accuracy"] == 1.0
    assert s["per_category"]["parallel"] == {"n": 1, "correct": 0, "errors": 1, "accuracy": 0.0}
    assert s["per_category"]["irrelevance"]["correct"] == 1
    assert s["mean_accuracy"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert {f["why"] for f in s["failures"]} == {
        "error line: truncated",
        "error line: context_overflow",
    }
    report = format_report(s, "title")
    assert "simple_python" in report and "overall" in report and "50.0%" in report


def test_parse_categories() -> None:
    assert bfcl.parse_categories("simple_python, multiple,simple_python") == [
        "simple_python",
        "multiple",
    ]
    with pytest.raises(bfcl.BfclError, match="simple_java"):
        bfcl.parse_categories("simple_python,simple_java")


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NEEDLE_BFCL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bfcl.cache_dir() == tmp_path / "xdg" / "needle-pipeline" / "bfcl"
    monkeypatch.setenv("NEEDLE_BFCL_CACHE", str(tmp_path / "mine"))
    assert bfcl.cache_dir() == tmp_path / "mine"
    with pytest.raises(bfcl.BfclError, match="missing"):
        bfcl.wheel_path(fetch=False)


def test_fetch_failure_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEEDLE_BFCL_CACHE", str(tmp_path))

    def no_network(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(bfcl.subprocess, "run", no_network)
    with pytest.raises(bfcl.BfclError, match=r"could not fetch the BFCL data.*No matching"):
        bfcl.wheel_path()
    assert list(tmp_path.iterdir()) == [], "nothing half-fetched is left behind"


def test_all_texts_on_a_small_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "bfcl_eval-test.whl"
    q = CASES["cases"][0]["question"]
    multi_turn_doc = {"name": "mv", "description": "Move a file.", "parameters": {}}
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("bfcl_eval/data/BFCL_v4_simple_python.json", json.dumps(q) + "\n")
        zf.writestr("bfcl_eval/data/multi_turn_func_doc/x.json", json.dumps(multi_turn_doc))
        zf.writestr(
            "bfcl_eval/data/possible_answer/BFCL_v4_simple_python.json",
            json.dumps({"id": q["id"], "ground_truth": [{"not_a_name": {}}]}),
        )
        zf.writestr("bfcl_eval/data/BFCL_v4_format_sensitivity.json", '{\n "a": ["b"]\n}')
    texts = bfcl.all_texts(wheel)
    assert texts["function_names"] == {"calculate_triangle_area", "mv"}
    assert texts["descriptions"] == {
        "Calculate the area of a triangle given its base and height.",
        "Move a file.",
    }
    assert "The base of the triangle." in texts["parameter_descriptions"]
    assert texts["questions"] == {q["question"][0][0]["content"]}


# --------------------------------------------------------------------------------------------
# On the real wheel (fetched with pip on first use)


@pytest.fixture(scope="module")
def wheel() -> Path:
    return bfcl.wheel_path()


@pytest.mark.slow
def test_cases_are_real_bfcl_lines(wheel: Path) -> None:
    for case in CASES["cases"]:
        category, qid = case["category"], case["question"]["id"]
        (e,) = [e for e in bfcl.load_category(category, wheel) if e.id == qid]
        assert e.functions == case["question"]["function"]
        expected = case["possible_answer"]["ground_truth"] if case["possible_answer"] else None
        assert e.ground_truth == expected


@pytest.mark.slow
def test_pipeline_accepts_every_converted_schema(wheel: Path, test_model: Path) -> None:
    """Every BFCL tool list compiles into the pipeline's own answer grammar (llguidance,
    through the worker's engine; a schema it cannot take raises GrammarError)."""
    from workers.engine import LlamaEngine

    engine = LlamaEngine(test_model, n_threads=1)
    for category in bfcl.CATEGORIES:
        for e in bfcl.load_category(category, wheel):
            tools = normalize_tools(e.tools)
            ToolSet(tools)
            assert engine.compile_grammar(answer_schema(tools, 8, 128)), e.id


@pytest.mark.slow
def test_all_texts_cover_every_category(wheel: Path) -> None:
    texts = bfcl.all_texts(wheel)
    assert {"math.factorial", "spotify.play", "mv", "get_stock_info"} <= texts["function_names"]
    assert "What is my first name?" in texts["questions"]  # a memory category question
    assert CASES["cases"][0]["question"]["question"][0][0]["content"] in texts["questions"]
    assert len(texts["questions"]) > 4000 and len(texts["descriptions"]) > 2000


@pytest.mark.slow
def test_eval_bfcl_end_to_end(wheel: Path) -> None:
    cmd = [sys.executable, "-m", "pipeline", "eval", "--bfcl", "simple_python,irrelevance"]
    cmd += ["--limit", "5", "--workers", "1"]
    text = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert text.returncode == 0, text.stderr
    assert "simple_python" in text.stdout and "overall" in text.stdout
    as_json = subprocess.run(
        [*cmd, "--json"], cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True
    )
    assert as_json.returncode == 0, as_json.stderr
    s = json.loads(as_json.stdout)
    assert s["n"] == 10
    assert {c: v["n"] for c, v in s["per_category"].items()} == {
        "simple_python": 5,
        "irrelevance": 5,
    }


def test_score_reports_confidence_when_the_results_carry_it(tmp_path: Path) -> None:
    entries = {e.id: e for e in _entries()}
    picked = [entries["simple_python_0"], entries["irrelevance_0"]]
    tri = {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}
    rows = [
        {"id": "simple_python_0", "status": "ok", "calls": [tri], "confidence": 0.9},
        {"id": "irrelevance_0", "status": "ok", "calls": [tri], "confidence": 0.2},
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    s = score(picked, results)
    assert s["confidence"]["auroc"] == 1.0  # the right answer is the surer one
    assert s["confidence"]["precision_at_50"] == 1.0
    assert "confidence: AUROC 1.000" in format_report(s)
    for row in rows:
        del row["confidence"]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert "confidence" not in score(picked, results)
