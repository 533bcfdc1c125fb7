"""Shared fixtures: the generated test model, and running the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_QUERIES = PROJECT_ROOT / "inputs" / "queries.jsonl"
SAMPLE_TOOLS = PROJECT_ROOT / "inputs" / "tools.json"

# Helper modules with asserts of their own: failures show the compared values, as in tests.
pytest.register_assert_rewrite("tinytrain")


@pytest.fixture(scope="session")
def test_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small deterministic llama GGUF the project generates (no network needed)."""
    from testmodel import write_test_model

    path = tmp_path_factory.mktemp("model") / "needle-test.gguf"
    write_test_model(path)
    return path


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    output: Path

    def results(self) -> list[dict[str, Any]]:
        return read_jsonl(self.output)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(extra or {})
    return env


def repaired_arguments(
    repair: Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    query: str,
    properties: dict[str, Any],
    **arguments: Any,
) -> dict[str, Any]:
    """The arguments of one call of a tool ``f`` with ``properties`` after a worker's repair
    (``repair(calls, query, tools)``: workers.units, workers.reformat)."""
    tool = {"name": "f", "parameters": {"type": "object", "properties": properties}}
    calls, _ = repair([{"name": "f", "arguments": arguments}], query, [tool])
    return calls[0]["arguments"]


def default_model_lines(
    source: Path, tools_file: Path, output: Path, *args: str
) -> dict[str, dict[str, Any]]:
    """Run ``python -m pipeline`` on the default model (needle-smol) with one worker; the
    output lines by id."""
    command = [sys.executable, "-m", "pipeline", str(source), "-o", str(output)]
    command += ["--tools", str(tools_file), "--workers", "1", *args]
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, env=cli_env(), capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr
    return {line["id"]: line for line in read_jsonl(output)}


@pytest.fixture
def run_cli(test_model: Path, tmp_path: Path) -> Callable[..., CliRun]:
    """Run ``python -m pipeline`` for real; ``--model`` defaults to the test model."""

    def run(
        input_path: Path | str,
        *args: str,
        output: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> CliRun:
        output = output or tmp_path / "results.jsonl"
        command = [sys.executable, "-m", "pipeline", str(input_path), "-o", str(output)]
        if "--model" not in args and "-m" not in args:
            command += ["--model", str(test_model)]
        command += list(args)
        completed = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=cli_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return CliRun(completed.returncode, completed.stdout, completed.stderr, output)

    return run


def sample_tools() -> list[dict[str, Any]]:
    return orjson.loads(SAMPLE_TOOLS.read_bytes())


def exported_spans(trace_file: Path) -> list[dict[str, Any]]:
    """Flatten OTLP/JSON lines into spans, each with its ``resource`` and ``attrs`` as dicts
    and ``pid``, its process id as a string."""
    spans = []
    for message in read_jsonl(trace_file):
        for resource_spans in message["resourceSpans"]:
            resource = {
                a["key"]: next(iter(a["value"].values()))
                for a in resource_spans["resource"]["attributes"]
            }
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    attrs = {
                        a["key"]: next(iter(a["value"].values()), None)
                        for a in span.get("attributes", [])
                    }
                    spans.append(
                        {
                            **span,
                            "resource": resource,
                            "attrs": attrs,
                            "pid": str(resource.get("process.pid")),
                        }
                    )
    return spans


@pytest.fixture
def start_cli(test_model: Path) -> Iterator[Callable[..., Any]]:
    """Start the real CLI in the background (see test_reliability_support.cli_starter)."""
    import test_reliability_support as support

    yield from support.cli_starter(test_model)


@pytest.fixture
def samples(test_model: Path) -> tuple[dict[str, Any], ...]:
    """Sample requests the test model answers ``ok`` (it is random: a few truncate)."""
    import test_reliability_support as support

    return support.good_samples(test_model)
