"""Comparing calls: what counts as the same answer, shared by the evaluation, its report
and the calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NO_CALL = "(no call)"


def _canon(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, int | float):
        return v
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_canon(x) for x in v]
    return v


def _call_key(call: Any) -> str:
    if not isinstance(call, dict):
        return json.dumps(_canon(call), sort_keys=True, ensure_ascii=False)
    c = {"name": call.get("name"), "arguments": _canon(call.get("arguments") or {})}
    return json.dumps(c, sort_keys=True, ensure_ascii=False)


def calls_equal(expected: list, got: list) -> bool:
    """Same calls (names and arguments equal as JSON values), order-insensitive across calls."""
    if not isinstance(got, list):
        return False
    return sorted(map(_call_key, expected)) == sorted(map(_call_key, got))


def _read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def request_id(example: dict, line_no: int) -> str | int:
    rid = example.get("id")
    return rid if isinstance(rid, str | int) and not isinstance(rid, bool) else line_no
