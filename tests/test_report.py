"""The eval HTML report (``training/report.py``, ``eval --report``).

The unit tests check its numbers on a small hand-made labelled/results pair and on the real
BFCL lines of ``tests/data/bfcl_cases.json``. The slow tests run ``eval --report`` for real
(on the test model), open the report in headless Chromium (Debian's ``chromium``), take a
screenshot and check that every chart drew something and that the page logged nothing to
the console; a control page (the charts hidden, a console error) shows that the check can
fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, cli_env, write_jsonl

from training import bfcl, report
from training.evaluate import NO_CALL, score

CASES = json.loads((Path(__file__).parent / "data" / "bfcl_cases.json").read_text("utf-8"))
TOOL = {"name": "t", "description": "", "parameters": {"type": "object", "properties": {}}}


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


# (expected answer, result line without its id; None = no line at all)
PAIRS: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = [
    (
        [_call("set_timer", duration_seconds=600)],
        {"calls": [_call("set_timer", duration_seconds=10)]},
    ),
    (
        [_call("set_timer", duration_seconds=180, label="tea")],
        {"calls": [_call("set_timer", duration_seconds=60, label="tea")]},
    ),
    ([_call("get_weather", location="Paris")], {"calls": [_call("get_weather", location="Paris")]}),
    (
        [_call("get_weather", location="Berlin")],
        {"calls": [_call("set_timer", duration_seconds=5)]},
    ),
    ([], {"calls": []}),
    ([], {"calls": [_call("send_message", recipient="Sam", text="hi")]}),
    (
        [_call("send_message", recipient="Alex", text="hi")],
        {"status": "error", "error": {"type": "truncated", "message": "cut off at 256 tokens"}},
    ),
    ([_call("get_weather", location="Rome")], None),
    (
        [_call("set_timer", duration_seconds=60), _call("get_weather", location="Oslo")],
        {"calls": [_call("get_weather", location="Oslo")]},
    ),
    (
        [_call("get_weather", location="Oslo")],
        {"calls": [_call("get_weather", location="Oslo", days_ahead=2)]},
    ),
]
LATENCIES = [100.0, 120.0, 250.0, 260.0, 900.0, 130.0, 40.0, None, 310.0, 95.0]


@pytest.fixture
def labelled_pair(tmp_path: Path) -> tuple[Path, Path]:
    labelled = [
        {"query": f"query {i}", "tools": [TOOL], "answers": answer}
        for i, (answer, _) in enumerate(PAIRS, start=1)
    ]
    results = [
        {"id": i, "status": "ok", "error": None, "model": "m", "latency_ms": ms, **line}
        for i, ((_, line), ms) in enumerate(zip(PAIRS, LATENCIES, strict=True), start=1)
        if line is not None
    ]
    return write_jsonl(tmp_path / "labelled.jsonl", labelled), write_jsonl(
        tmp_path / "results.jsonl", results
    )


def test_labelled_numbers(labelled_pair: tuple[Path, Path]) -> None:
    rows = report.labelled_rows(*labelled_pair)
    assert [r.right for r in rows] == [False] * 2 + [True] + [False] + [True] + [False] * 5
    assert {
        s.name: (s.n, s.right, s.errors) for s in report.accuracy_by(rows, report.tool_keys)
    } == {
        NO_CALL: (2, 1, 0),
        "get_weather": (5, 1, 1),
        "send_message": (1, 0, 1),
        "set_timer": (3, 0, 0),
    }
    assert report.confusion(rows) == {
        ("set_timer", "set_timer"): 2,
        ("get_weather", "get_weather"): 3,
        ("get_weather", "set_timer"): 1,
        (NO_CALL, NO_CALL): 1,
        (NO_CALL, "send_message"): 1,
        ("send_message", report.ERROR): 1,
        ("get_weather", report.ERROR): 1,
        ("set_timer", NO_CALL): 1,
    }
    names, columns, folded = report.fold_confusion(report.confusion(rows), keep=2)
    assert names == ["get_weather", "set_timer", report.OTHER, NO_CALL]
    assert columns == [*names, report.ERROR]
    assert folded[NO_CALL, report.OTHER] == folded[report.OTHER, report.ERROR] == 1
    assert report.choice_counts(rows) == {
        "right tool": 5,
        "no call, as expected": 1,
        "another tool": 1,
        "not called": 1,
        "unexpected call": 1,
        "error line": 2,
    }
    top, second, *rest = report.wrong_arguments(rows)
    assert (top.key, top.wrong, top.compared) == ("set_timer.duration_seconds", 2, 2)
    assert [(r.id, w.expected, w.got) for r, w in top.examples] == [
        ("1", "600", "10"),
        ("2", "180", "60"),
    ]
    assert (second.key, second.wrong, second.compared) == ("get_weather.days_ahead", 1, 1)
    assert second.examples[0][1].expected == report.MISSING and not rest
    assert [(t, [r.id for r in rs]) for t, rs in report.error_types(rows)] == [
        ("missing", ["8"]),
        ("truncated", ["7"]),
    ]
    assert [r.why for r in rows if not r.right][:3] == [
        "wrong arguments: set_timer.duration_seconds",
        "wrong arguments: set_timer.duration_seconds",
        "called set_timer, expected get_weather",
    ]


def test_labelled_rows_agree_with_score(labelled_pair: tuple[Path, Path]) -> None:
    rows, s = report.labelled_rows(*labelled_pair), score(*labelled_pair)
    assert sum(r.right for r in rows) == s["correct"]
    per_tool = {x.name: (x.n, x.right) for x in report.accuracy_by(rows, report.tool_keys)}
    assert per_tool == {k: (v["n"], v["correct"]) for k, v in s["per_tool"].items()}


def test_histogram_and_percentile() -> None:
    width, counts = report.histogram([100, 120, 250, 260, 900, 130, 40, 310, 95], 24)
    assert width == 50 and len(counts) == 19 and sum(counts) == 9
    assert counts[:7] == [1, 1, 3, 0, 0, 2, 1] and counts[18] == 1
    assert report.percentile([1, 2, 3, 4], 50) == 2.5
    assert report.histogram([], 24) == (1.0, [0])


def test_html_is_self_contained(labelled_pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = report.write_labelled(*labelled_pair, tmp_path / "r.html", "labelled.jsonl")
    text = out.read_text("utf-8")
    assert not re.search(r"<script|<link|<img|<iframe|\bsrc=|url\(|@import", text)
    assert set(re.findall(r"https?://[^\"' )]+", text)) == {"http://www.w3.org/2000/svg"}
    assert text.count('<svg class="chart"') == 3  # per tool, latency, error types
    assert "2/10 = 20.0%" in text and "set_timer.duration_seconds" in text
    assert 'title="expected get_weather, called set_timer: 1"' in text
    assert "<th>error.type</th>" in text and ">truncated<" in text


def _entries() -> list[bfcl.BfclEntry]:
    return [
        bfcl.entry(c["category"], c["question"], (c["possible_answer"] or {}).get("ground_truth"))
        for c in CASES["cases"]
    ]


# BFCL cases whose one wrong candidate is wrong in these arguments
WRONG_ARGUMENTS = {
    "height 6 is not an acceptable value": ["calculate_triangle_area.height"],
    "a float where the doc says integer": ["calculate_triangle_area.base"],
    "required height missing": ["calculate_triangle_area.height"],
    "unexpected parameter": ["calculate_triangle_area.color"],
    "another city string": ["vegan_restaurant.find_nearby.location"],
    'operating_hours omitted but its answers have no ""': [
        "vegan_restaurant.find_nearby.operating_hours"
    ],
    "ints in an array of float: BFCL's item type check takes no int for float": [
        "calculate_area_under_curve.interval"
    ],
    "lists compare in order": ["calculate_area_under_curve.interval"],
    "dict key email missing": ["update_user_info.update_info"],
    "unexpected dict key": ["update_user_info.update_info"],
    "durations swapped": ["spotify.play.duration", "spotify.play.duration"],
}


def test_bfcl_rows_follow_bfcl_rules() -> None:
    """Every candidate of the BFCL cases: right or wrong as BFCL decides, no wrong argument
    when right, and the argument BFCL objects to when only an argument is wrong."""
    seen = set()
    for e, case in zip(_entries(), CASES["cases"], strict=True):
        for c in case["candidates"]:
            row = report.bfcl_row(e, {"id": e.id, "status": "ok", "calls": c["calls"]})
            assert row.right == c["right"], c["why"]
            keys = [w.key for w in row.wrong]
            if c["right"]:
                assert keys == [], c["why"]
            elif c["why"] in WRONG_ARGUMENTS:
                assert keys == WRONG_ARGUMENTS[c["why"]], c["why"]
                seen.add(c["why"])
    assert seen == set(WRONG_ARGUMENTS)


def test_bfcl_report_numbers(tmp_path: Path) -> None:
    entries = _entries()
    wrong_first = [next(c for c in case["candidates"] if not c["right"]) for case in CASES["cases"]]
    lines = [
        {"id": e.id, "status": "ok", "calls": c["calls"], "latency_ms": 10.0 * i}
        for i, (e, c) in enumerate(zip(entries, wrong_first, strict=True))
    ]
    lines[1] = {"id": entries[1].id, "status": "error", "error": {"type": "prompt_too_long"}}
    results = write_jsonl(tmp_path / "results.jsonl", lines)
    rows = report.bfcl_rows(entries, results)
    by_category = report.accuracy_by(rows, report.category_keys)
    assert [(s.name, s.n, s.right, s.errors) for s in by_category] == [
        ("irrelevance", 1, 0, 0),
        ("multiple", 1, 0, 0),
        ("parallel", 1, 0, 0),
        ("simple_python", 4, 0, 1),
    ]
    pairs = report.confusion(rows)
    assert pairs[NO_CALL, "determine_body_mass_index"] == 1
    assert pairs["capacitance_calculator.calculate", "resistance_calculator.calculate"] == 1
    assert pairs["vegan_restaurant.find_nearby", report.ERROR] == 1
    assert pairs["spotify.play", "spotify.play"] == 1 and pairs["spotify.play", NO_CALL] == 1
    text = report.write_bfcl(entries, results, tmp_path / "r.html", "some,categories").read_text()
    assert text.count('<svg class="chart"') == 4  # categories, tools, latency, error types
    assert "prompt_too_long" in text and "simple_python 1" in text


# --------------------------------------------------------------------------------------------
# The real thing in headless Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium (apt-get install -y chromium; .ci/run does)"
)
# Reads where the charts are after layout; only ever added to a copy of the report.
LAYOUT_SCRIPT = """<script>(() => {
  const charts = [...document.querySelectorAll("svg.chart")].map((s) => {
    const b = s.getBoundingClientRect();
    return [b.left, b.top + scrollY, b.width, b.height];
  });
  const pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = JSON.stringify({charts, height: document.documentElement.scrollHeight});
  document.body.append(pre);
})();</script>"""
WIDTH = 1200


def chromium(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir()
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"]
    cmd += ["--no-first-run", "--disable-background-networking", "--disable-component-update"]
    cmd += ["--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    proc = subprocess.run([*cmd, *args, url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def chart_boxes(page: Path, tmp: Path) -> tuple[list[list[float]], int]:
    """Where the page's ``svg.chart`` elements are (x, y, width, height) and its height."""
    copy = tmp / f"layout-{page.name}"
    copy.write_text(page.read_text("utf-8").replace("</body>", LAYOUT_SCRIPT + "</body>"))
    dom = chromium(tmp, copy.as_uri(), f"--window-size={WIDTH},1000", "--dump-dom").stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    layout = json.loads(found.group(1).replace("&quot;", '"'))
    return layout["charts"], int(layout["height"])


@dataclass
class Screenshot:
    png: Path
    console: list[str]  # console messages the page logged


def screenshot(page: Path, tmp: Path, height: int) -> Screenshot:
    png = tmp / f"{page.stem}.png"
    proc = chromium(tmp, page.as_uri(), f"--window-size={WIDTH},{height}", f"--screenshot={png}")
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Screenshot(png, console)


def blank_charts(png: Path, boxes: list[list[float]]) -> list[int]:
    """The charts whose area in the screenshot is (nearly) one flat colour."""
    from PIL import Image, ImageStat

    with Image.open(png) as image:
        gray = image.convert("L")
        blank = []
        for i, (x, y, w, h) in enumerate(boxes):
            area = gray.crop((int(x), int(y), int(x + w), int(y + h)))
            inked = sum(area.histogram()[:200]) / (area.width * area.height)  # not near-white
            if ImageStat.Stat(area).stddev[0] < 15 or inked < 0.02:
                blank.append(i)
    return blank


def check_renders(page: Path, tmp: Path, charts: int) -> Screenshot:
    boxes, height = chart_boxes(page, tmp)
    assert len(boxes) == charts and all(w > 100 and h > 20 for _, _, w, h in boxes), boxes
    shot = screenshot(page, tmp, height)
    assert shot.console == []
    assert blank_charts(shot.png, boxes) == []
    return shot


def run_eval(tmp: Path, model: Path | str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pipeline", "eval", *args, "--model", str(model)]
    cmd += ["--workers", "1", "--json", "--report", str(tmp / "report.html")]
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def labelled_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``eval --report`` on 24 held-out lines and one with a tool the pipeline refuses, with
    needle-tiny (trained on these tools: right and wrong answers, so every chart has data)."""
    tmp = tmp_path_factory.mktemp("report")
    data = tmp / "labelled.jsonl"
    lines = (PROJECT_ROOT / "training/data/test_phrasing.jsonl").read_text("utf-8").splitlines()
    bad = {"query": "hi", "tools": [{**TOOL, "name": "bad name!"}], "answers": []}
    data.write_text("\n".join([*lines[:24], json.dumps(bad)]) + "\n", encoding="utf-8")
    s = run_eval(tmp, "needle-tiny", str(data))
    assert 0 < s["correct"] < s["n"]
    text = (tmp / "report.html").read_text("utf-8")
    assert f"{s['correct']}/{s['n']} = " in text and s["n"] == 25
    assert "invalid_tool_schema" in text
    return tmp / "report.html"


@pytest.mark.slow
@needs_chromium
def test_labelled_report_renders(labelled_report: Path, tmp_path: Path) -> None:
    check_renders(labelled_report, tmp_path, charts=5)


@pytest.mark.slow
@needs_chromium
def test_bfcl_report_renders(tmp_path: Path) -> None:
    bfcl.wheel_path()  # fetched with pip on first use, as the other BFCL tests do
    s = run_eval(
        tmp_path, "needle-smol", "--bfcl", "simple_python,multiple,irrelevance", "--limit", "4"
    )
    text = (tmp_path / "report.html").read_text("utf-8")
    assert f"{s['correct']}/{s['n']} = " in text and s["n"] == 12
    assert "Per category" in text and "simple_python" in text
    # confidence (2), categories, tools, latency, and error types if some line failed
    charts = 5 if "No error lines." in text else 6
    check_renders(tmp_path / "report.html", tmp_path, charts=charts)


@pytest.mark.slow
@needs_chromium
def test_render_check_can_fail(labelled_report: Path, tmp_path: Path) -> None:
    """The same report with its charts hidden and a script that logs an error."""
    control = tmp_path / "control.html"
    broken = labelled_report.read_text("utf-8").replace(
        '<svg class="chart"', '<svg class="chart" style="visibility: hidden"'
    )
    control.write_text(broken.replace("</body>", '<script>console.error("boom")</script></body>'))
    boxes, height = chart_boxes(control, tmp_path)
    shot = screenshot(control, tmp_path, height)
    assert len(shot.console) == 1 and '"boom"' in shot.console[0]
    assert blank_charts(shot.png, boxes) == [0, 1, 2, 3, 4]
