"""Phoenix projects: ``--project`` (default ``OTEL_SERVICE_NAME``) is the resource attribute
``openinference.project.name`` of every process's spans."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliRun, exported_spans, sample_tools, write_jsonl

from workers.telemetry.providers import create_tracer_provider, make_resource
from workers.telemetry.settings import PROJECT_ATTRIBUTE, resolve_settings


def test_project_defaults_to_the_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert resolve_settings(None, None, False, {}).project is None
    env = {"OTEL_SERVICE_NAME": "nightly-labels"}
    assert resolve_settings(None, None, False, env).project == "nightly-labels"
    assert resolve_settings(None, None, False, env, project="job-7").project == "job-7"
    assert PROJECT_ATTRIBUTE not in make_resource({}).attributes
    assert make_resource({}, "job-7").attributes[PROJECT_ATTRIBUTE] == "job-7"
    settings = resolve_settings("none", None, False, {}, project="job-8")
    provider = create_tracer_provider(settings, {"process.pid": 1})
    assert provider.resource.attributes[PROJECT_ATTRIBUTE] == "job-8"


@pytest.mark.parametrize(
    ("args", "env", "project"),
    [
        (("--project", "labels-2026"), {"OTEL_SERVICE_NAME": "svc"}, "labels-2026"),
        ((), {"OTEL_SERVICE_NAME": "svc"}, "svc"),
        ((), {}, None),
    ],
)
def test_every_process_files_its_spans_under_the_project(
    run_cli: Callable[..., CliRun],
    tmp_path: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    project: str | None,
) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": i, "query": "Set a timer for 5 minutes", "tools": sample_tools()}
            for i in range(4)
        ],
    )
    spans_file = tmp_path / "spans.jsonl"
    run = run_cli(
        source, "-w", "2", "--traces", "file", "--traces-file", str(spans_file), *args, env=env
    )
    assert run.returncode in (0, 1), run.stderr
    spans = exported_spans(spans_file)
    roles = {span["resource"].get("needle.process.role") for span in spans}
    assert len(roles) >= 2  # the supervisor's and the workers' spans
    assert {span["resource"].get(PROJECT_ATTRIBUTE) for span in spans} == {project}
