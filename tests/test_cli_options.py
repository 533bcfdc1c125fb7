"""Options whose effect shows only in a real run: --metrics console|file, --window and
--max-attempts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import test_reliability_support as support
from conftest import exported_spans, read_jsonl, write_jsonl
from test_reliability_support import Cli, read_output

pytestmark = pytest.mark.slow


def metric_points(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Metric name -> its data points, over every OTLP/JSON line of a --metrics-file."""
    points: dict[str, list[dict[str, Any]]] = {}
    for message in read_jsonl(path):
        for resource_metrics in message["resourceMetrics"]:
            for scope in resource_metrics["scopeMetrics"]:
                for metric in scope["metrics"]:
                    data = next(v for k, v in metric.items() if k in ("sum", "histogram", "gauge"))
                    points.setdefault(metric["name"], []).extend(data["dataPoints"])
    return points


def test_metrics_file_counts_every_request(run_cli, tmp_path, samples):
    requests = write_jsonl(tmp_path / "in.jsonl", support.many_requests(6, samples))
    metrics = tmp_path / "metrics.jsonl"
    run = run_cli(requests, "-w", "1", "--metrics", "file", "--metrics-file", str(metrics))
    assert run.returncode == 0, run.stderr
    points = metric_points(metrics)
    finished = {
        p["attributes"][0]["value"]["stringValue"]: int(p["asInt"])
        for p in points["needle.requests"]
    }
    assert finished == {"ok": 6}
    usage = points["gen_ai.client.token.usage"]
    assert sum(int(p["count"]) for p in usage) == 2 * 6  # input and output, per request
    assert "needle.queue.depth" in points and "needle.worker.busy_time" in points


def test_metrics_console_goes_to_stderr(run_cli, tmp_path, samples):
    requests = write_jsonl(tmp_path / "in.jsonl", support.many_requests(3, samples))
    run = run_cli(requests, "-w", "1", "--metrics", "console", "-o", "-")
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 3  # stdout holds the results only
    assert all(orjson.loads(line)["status"] == "ok" for line in run.stdout.splitlines())
    for name in ("needle.requests", "gen_ai.client.token.usage", "needle.worker.requests"):
        assert f'"name": "{name}"' in run.stderr, run.stderr[-2000:]


def most_at_once(spans: list[dict[str, Any]]) -> int:
    """The most root spans (requests between read and written) open at one moment."""
    events = []
    for span in spans:
        if span["name"] == "process_request":
            events += [(int(span["startTimeUnixNano"]), 1), (int(span["endTimeUnixNano"]), -1)]
    open_now = most = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        open_now += change
        most = max(most, open_now)
    return most


@pytest.mark.parametrize("window", [1, 3])
def test_window_bounds_the_requests_in_flight(run_cli, tmp_path, samples, window):
    requests = write_jsonl(tmp_path / "in.jsonl", support.many_requests(24, samples))
    traces = tmp_path / "spans.jsonl"
    args = ["-w", "2", "--window", str(window), "--traces", "file", "--traces-file", str(traces)]
    run = run_cli(requests, *args)
    assert run.returncode == 0, run.stderr
    assert len(run.results()) == 24
    assert most_at_once(exported_spans(traces)) == window


@pytest.mark.parametrize("attempts", [1, 3])
def test_max_attempts_is_how_often_a_crashing_request_runs(
    tmp_path: Path, start_cli: Callable[..., Cli], samples: tuple[dict, ...], attempts: int
) -> None:
    marker = f"CRASH-{uuid.uuid4().hex[:8]}"
    rows = support.many_requests(6, samples)
    rows[2]["query"] += f" {marker}"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    env = {support.CRASH_MARKER_ENV: marker}
    cli = start_cli(source, output, "-w", "1", "--max-attempts", str(attempts), env=env)
    assert cli.wait() == 1, cli.stderr
    results = {r["id"]: r for r in read_output(output)}
    crashed = results.pop(rows[2]["id"])
    assert crashed["error"]["type"] == "worker_crashed"
    assert f"gave up after {attempts} attempts" in crashed["error"]["message"]
    assert all(r["status"] == "ok" for r in results.values())
    assert f"{attempts} worker restarts" in cli.stderr
