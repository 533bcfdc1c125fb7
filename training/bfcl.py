"""The Berkeley Function Calling Leaderboard (BFCL v4) data, read straight out of the
``bfcl-eval`` wheel.

``bfcl-eval`` is not a dependency (it pins numpy and pulls every provider SDK): the wheel is
fetched once with ``pip download --no-deps`` into :func:`cache_dir` and its data files are
read with :mod:`zipfile`; nothing from ``bfcl_eval`` is imported.

* :func:`load_category` -- one category's entries: the query, the tools converted to JSON
  Schema (:func:`convert_function`), BFCL's own function docs and its possible answers.
* :func:`all_texts` -- every function name, description and question in the wheel (all
  categories), for contamination checks against training data.

Scoring is in :mod:`training.bfcl_score`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The checker in training.bfcl_score mirrors this release's ast_checker.py; bump both together.
BFCL_EVAL_VERSION = "2026.3.23"
DATA = "bfcl_eval/data/"
ANSWERS = DATA + "possible_answer/"

# Single-turn Python categories that the AST rules score. The irrelevance ones are right
# when there is no call; live_relevance when there is at least one.
AST_CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
IRRELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance")
RELEVANCE_CATEGORIES = ("live_relevance",)
CATEGORIES = AST_CATEGORIES + IRRELEVANCE_CATEGORIES + RELEVANCE_CATEGORIES

# BFCL's GORILLA_TO_OPENAPI (bfcl_eval/constants/type_mappings.py): the types of its function
# docs as JSON Schema types. Missing or unknown types become "string", as BFCL does.
OPENAPI_TYPES = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "dict": "object",
    "object": "object",
    "tuple": "array",
    "any": "string",
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "double": "number",
    "char": "string",
    "ArrayList": "array",
    "Array": "array",
    "HashMap": "object",
    "Hashtable": "object",
    "Queue": "array",
    "Stack": "array",
    "Any": "string",
    "String": "string",
    "Bigint": "integer",
}


class BfclError(RuntimeError):
    """The BFCL data cannot be had: the wheel could not be fetched or is not as expected."""


@dataclass
class BfclEntry:
    """One BFCL question. ``functions`` are BFCL's own docs (what the checker reads),
    ``tools`` the JSON Schema tools the pipeline gets; ``ground_truth`` is ``None`` for the
    (ir)relevance categories, which have no possible answers."""

    id: str
    category: str
    query: str
    functions: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    ground_truth: list[dict[str, Any]] | None


# --------------------------------------------------------------------------------------------
# The wheel


def cache_dir() -> Path:
    """``$NEEDLE_BFCL_CACHE``, else ``$XDG_CACHE_HOME/needle-pipeline/bfcl``
    (``~/.cache/needle-pipeline/bfcl``)."""
    if os.environ.get("NEEDLE_BFCL_CACHE"):
        return Path(os.environ["NEEDLE_BFCL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "needle-pipeline" / "bfcl"


def wheel_path(fetch: bool = True) -> Path:
    """The cached ``bfcl_eval`` wheel, fetched with pip on first use."""
    wheel = cache_dir() / f"bfcl_eval-{BFCL_EVAL_VERSION}-py3-none-any.whl"
    if wheel.is_file():
        return wheel
    if not fetch:
        raise BfclError(f"BFCL data not in the cache: {wheel} is missing")
    wheel.parent.mkdir(parents=True, exist_ok=True)
    # Download next to the target and rename: a concurrent or interrupted fetch never leaves
    # a partial wheel under the final name.
    with tempfile.TemporaryDirectory(dir=wheel.parent, prefix=".download-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            tmp,
            f"bfcl-eval=={BFCL_EVAL_VERSION}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(Path(tmp).glob("bfcl_eval-*.whl"))
        if proc.returncode != 0 or not found:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BfclError(
                f"could not fetch the BFCL data with `{' '.join(cmd[2:])}`"
                f" (exit {proc.returncode}): {' / '.join(detail) or 'no wheel downloaded'}. "
                f"Put bfcl_eval-{BFCL_EVAL_VERSION}-py3-none-any.whl in {wheel.parent} "
                "(or point NEEDLE_BFCL_CACHE at a folder holding it) to run offline."
            )
        os.replace(found[0], wheel)
    return wheel


def _open(wheel: Path | None) -> zipfile.ZipFile:
    path = wheel or wheel_path()
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BfclError(f"{path} is not a readable wheel ({exc}); delete it to refetch") from None


def _jsonl(zf: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    try:
        text = zf.read(name).decode("utf-8")
    except KeyError:
        raise BfclError(f"{name} is not in {zf.filename}") from None
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# Function docs to JSON Schema


def convert_schema(node: dict[str, Any]) -> dict[str, Any]:
    """One BFCL parameter schema as JSON Schema: BFCL's type names mapped as BFCL maps them
    for OpenAI-style models (``dict`` -> ``object``, ``float`` -> ``number``, ``tuple`` ->
    ``array``, ``any`` and missing types -> ``string``), recursively through ``properties``
    and ``items``. Descriptions, enums, defaults and ``required`` are kept as they are."""
    out = dict(node)
    out["type"] = OPENAPI_TYPES.get(node.get("type"), "string")
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: convert_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = convert_schema(node["items"])
    return out


def convert_function(function: dict[str, Any]) -> dict[str, Any]:
    """A BFCL function doc as a bare tool ``{name, description, parameters}``. Names keep
    their dots (the pipeline allows them), so calls name the functions the answers name."""
    parameters = dict(function.get("parameters") or {})
    parameters["type"] = "object"
    parameters["properties"] = {
        k: convert_schema(v) for k, v in (parameters.get("properties") or {}).items()
    }
    return {
        "name": function["name"],
        "description": function.get("description", ""),
        "parameters": parameters,
    }


def query_text(question: list[list[dict[str, Any]]]) -> str:
    """The pipeline takes one query string: the last user message of the last turn.
    System prompts and earlier turns (a few live entries have them) are left out."""
    users = [m["content"] for m in question[-1] if m.get("role") == "user"]
    return users[-1] if users else ""


# --------------------------------------------------------------------------------------------
# Loading


def load_category(
    category: str, wheel: Path | None = None, limit: int | None = None
) -> list[BfclEntry]:
    """The first ``limit`` (default: all) entries of one category, in BFCL's order."""
    parse_categories(category)
    with _open(wheel) as zf:
        questions = _jsonl(zf, f"{DATA}BFCL_v4_{category}.json")[: limit or None]
        answers: dict[str, Any] = {}
        if category in AST_CATEGORIES:
            for a in _jsonl(zf, f"{ANSWERS}BFCL_v4_{category}.json"):
                answers[a["id"]] = a["ground_truth"]
    missing = [q["id"] for q in questions if category in AST_CATEGORIES and q["id"] not in answers]
    if missing:
        raise BfclError(f"{missing[0]} has no possible answer in the wheel")
    return [entry(category, q, answers.get(q["id"])) for q in questions]


def entry(
    category: str, question: dict[str, Any], ground_truth: list[dict[str, Any]] | None
) -> BfclEntry:
    """An entry from a line of a BFCL question file and its ``ground_truth``."""
    return BfclEntry(
        id=question["id"],
        category=category,
        query=query_text(question["question"]),
        functions=question["function"],
        tools=[convert_function(f) for f in question["function"]],
        ground_truth=ground_truth,
    )


def parse_categories(text: str) -> list[str]:
    """``"simple_python,multiple"`` -> the list, each checked, duplicates dropped."""
    names = list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown or not names:
        raise BfclError(
            f"unknown BFCL categories {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(CATEGORIES)}"
        )
    return names


def write_requests(entries: list[BfclEntry], path: str | Path) -> int:
    """The pipeline's input: ``{id, query, tools}`` per entry (BFCL ids are unique across
    categories)."""
    with open(path, "w", encoding="utf-8") as out:
        for e in entries:
            line = {"id": e.id, "query": e.query, "tools": e.tools}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(entries)


# --------------------------------------------------------------------------------------------
# Every text in the wheel, for contamination checks


def all_texts(wheel: Path | None = None) -> dict[str, set[str]]:
    """Function names, function descriptions, parameter descriptions and user questions of
    every BFCL data file in the wheel (all categories, multi-turn function docs and memory
    conversations included; the possible answers hold nothing new)."""
    texts: dict[str, set[str]] = {
        "function_names": set(),
        "descriptions": set(),
        "parameter_descriptions": set(),
        "questions": set(),
    }
    with _open(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(DATA) and name.endswith(".json") and "/possible_answer/" not in name:
                for doc in _documents(zf.read(name).decode("utf-8")):
                    _collect(doc, texts)
    for values in texts.values():
        values.discard("")
    return texts


def _documents(text: str) -> list[Any]:
    """A data file's JSON values: most are JSON lines, a few one JSON document."""
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError:
        return [json.loads(text)]


def _collect(node: Any, texts: dict[str, set[str]]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, texts)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("name"), str) and isinstance(node.get("parameters"), dict):
        texts["function_names"].add(node["name"])
        if isinstance(node.get("description"), str):
            texts["descriptions"].add(node["description"])
        _collect_parameter_descriptions(node["parameters"], texts["parameter_descriptions"])
    if node.get("role") == "user" and isinstance(node.get("content"), str):
        texts["questions"].add(node["content"])
    if isinstance(node.get("question"), str):  # the unused "chatable" set
        texts["questions"].add(node["question"])
    for value in node.values():
        if isinstance(value, list | dict):
            _collect(value, texts)


def _collect_parameter_descriptions(schema: Any, into: set[str]) -> None:
    if not isinstance(schema, dict):
        return
    for prop in (schema.get("properties") or {}).values():
        if isinstance(prop, dict):
            if isinstance(prop.get("description"), str):
                into.add(prop["description"])
            _collect_parameter_descriptions(prop, into)
            _collect_parameter_descriptions(prop.get("items"), into)
    _collect_parameter_descriptions(schema.get("items"), into)
