"""Exact-match scoring of pipeline results against labelled data."""

from __future__ import annotations

import json

from training.evaluate import calls_equal, format_report, score, write_requests


def _w(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


T = [
    {"name": "a", "description": "", "parameters": {"type": "object", "properties": {}}},
    {"name": "b", "description": "", "parameters": {"type": "object", "properties": {}}},
]


def test_calls_equal():
    x = {"name": "a", "arguments": {"v": 21, "s": "x"}}
    y = {"name": "b", "arguments": {}}
    assert calls_equal([x, y], [y, x])
    assert calls_equal([x], [{"name": "a", "arguments": {"s": "x", "v": 21.0}}])
    assert not calls_equal([x], [{"name": "a", "arguments": {"s": "x", "v": 22}}])
    assert not calls_equal([x], [x, x])
    assert not calls_equal([x], [{"name": "b", "arguments": {"v": 21, "s": "x"}}])
    assert calls_equal([], [])
    assert not calls_equal([], [y])
    assert not calls_equal([x], None)
    assert not calls_equal(
        [{"name": "a", "arguments": {"b": True}}], [{"name": "a", "arguments": {"b": 1}}]
    )


def test_score(tmp_path):
    lab = _w(
        tmp_path / "lab.jsonl",
        [
            {"query": "q1", "tools": T, "answers": [{"name": "a", "arguments": {"x": 1}}]},
            {"query": "q2", "tools": T, "answers": []},
            {
                "query": "q3",
                "tools": T,
                "answers": [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}],
            },
            {"query": "q4", "tools": T, "answers": [{"name": "b", "arguments": {}}]},
            {"query": "q5", "tools": T, "answers": [{"name": "b", "arguments": {}}]},
        ],
    )
    res = _w(
        tmp_path / "res.jsonl",
        [
            {
                "id": 1,
                "status": "ok",
                "calls": [{"name": "a", "arguments": {"x": 1.0}}],
                "ungrounded": [{"call": 0, "path": "x"}],
            },
            {"id": 2, "status": "ok", "calls": [], "ungrounded": [], "repeated": []},
            {
                "id": "3",
                "status": "ok",
                "calls": [{"name": "b", "arguments": {}}, {"name": "a", "arguments": {}}],
            },
            {
                "id": 4,
                "status": "ok",
                "calls": [{"name": "b", "arguments": {"p": 2, "q": 2}}],
                "repeated": [{"call": 0, "path": "q"}],
            },
            # 5 missing
        ],
    )
    s = score(lab, res)
    assert (s["n"], s["correct"]) == (5, 3)
    assert s["accuracy"] == 0.6
    assert s["per_tool"]["a"] == {"n": 2, "correct": 2, "accuracy": 1.0}
    assert s["per_tool"]["b"] == {"n": 3, "correct": 1, "accuracy": 1 / 3}
    assert s["per_tool"]["(no call)"]["correct"] == 1
    assert {f["id"] for f in s["failures"]} == {"4", "5"}
    assert s["marks"] == {
        "ungrounded": {"lines": 1, "right": 1},
        "repeated": {"lines": 1, "right": 0},
    }
    assert "1 with an ungrounded string (1 right), 1 with a repeated value (0 right)" in (
        format_report(s)
    )


def test_score_uses_own_ids(tmp_path):
    lab = _w(
        tmp_path / "lab.jsonl",
        [
            {"id": "q7", "query": "q", "tools": T, "answers": []},
        ],
    )
    reqs = tmp_path / "reqs.jsonl"
    assert write_requests(lab, reqs) == 1
    r = json.loads(reqs.read_text())
    assert r == {"id": "q7", "query": "q", "tools": T}
    res = _w(tmp_path / "res.jsonl", [{"id": "q7", "status": "ok", "calls": []}])
    assert score(lab, res)["correct"] == 1
    lab2 = _w(tmp_path / "lab2.jsonl", [{"query": "q", "tools": T, "answers": []}])
    write_requests(lab2, reqs)
    assert json.loads(reqs.read_text())["id"] == 1
