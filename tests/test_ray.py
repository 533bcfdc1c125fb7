"""``--executor ray`` on a real local Ray cluster: one head started for this module
(``ray start --head``, 2 CPUs, no dashboard), shared by every test and stopped at the end.

Each run is compared id by id (status and calls) with ``--executor local`` on the same
input; after each test no actor of ours is alive on the cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, SAMPLE_QUERIES, cli_env, exported_spans, read_jsonl, write_jsonl
from test_reliability_support import many_requests, sample_requests

ray = pytest.importorskip("ray")

NAMESPACE = "needle-pipeline"
AUTH_MODE = "RAY_AUTH_MODE"
HEAD_OPTIONS = ["--include-dashboard=false", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
ADDRESS_LINE = re.compile(r"ray start --address='([^']+)'")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head on 127.0.0.1 with 2 CPUs; this process joins it (to inspect and kill
    actors). Yields its address. ``ray start --block`` stops exactly this cluster when
    it is terminated (``ray stop`` would stop every Ray on the machine)."""
    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    # Without it, a token a local ray.init once left in ~/.ray would switch token auth on
    # for the head but not for every client. Set here, the CLI runs inherit it.
    previous_auth = os.environ.get(AUTH_MODE)
    os.environ[AUTH_MODE] = "disabled"
    node_env = cli_env({"HF_HOME": str(node_hf_home(tmp_path_factory))})
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--port=0", "--num-cpus=2", *HEAD_OPTIONS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=node_env,  # what the node's processes (so the actors) see
        start_new_session=True,
    )
    try:
        address = read_address(head)
        ray.init(address=address, namespace=NAMESPACE, logging_level="WARNING")
        yield address
    finally:
        ray.shutdown()
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        if previous_auth is None:
            os.environ.pop(AUTH_MODE, None)
        else:
            os.environ[AUTH_MODE] = previous_auth


def read_address(head: subprocess.Popen[str]) -> str:
    """The GCS address ``ray start`` prints once the head is up."""
    assert head.stdout is not None
    seen = []
    for line in head.stdout:
        seen.append(line)
        match = ADDRESS_LINE.search(line)
        if match:
            threading.Thread(target=head.stdout.read, daemon=True).start()  # keep it drained
            return match.group(1)
    raise AssertionError("ray start --head failed: " + "".join(seen)[-3000:])


def node_hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Ray node's own Hugging Face cache (HF_HOME of the head's processes)."""
    return tmp_path_factory.getbasetemp() / "ray-node-hf"


def our_actors() -> dict[str, str]:
    """The pool's actors known to the cluster (name -> state), from the GCS actor table.
    (``ray.util.state.list_actors`` needs the dashboard, which this head runs without.)"""
    from ray._private import state

    return {
        info["Name"]: info["State"]
        for info in state.actors().values()
        if str(info.get("Name", "")).startswith("needle-")
    }


def alive_actors() -> list[str]:
    return [name for name, state in our_actors().items() if state != "DEAD"]


@pytest.fixture
def no_actor_left(ray_cluster: str) -> Iterator[str]:
    assert alive_actors() == []
    yield ray_cluster
    deadline = time.monotonic() + 5  # ray.kill returns before the GCS says DEAD
    while alive_actors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive_actors() == []


def command(
    model: Path, input_path: Path, output: Path, *args: str, address: str | None = None
) -> list[str]:
    line = [sys.executable, "-m", "pipeline", str(input_path), "-o", str(output)]
    line += ["--model", str(model), "--workers", "2", "--threads", "1", *args]
    if address is not None:
        line += ["--executor", "ray", "--ray-address", address]
    return line


def run(line: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        line,
        cwd=PROJECT_ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start(line: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        line,
        cwd=PROJECT_ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def answers(rows: list[dict[str, Any]]) -> dict[Any, tuple[str, Any]]:
    """status and calls by id; every id exactly once."""
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "an id was written twice"
    return {row["id"]: (row["status"], row["calls"]) for row in rows}


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and (lines := path.read_bytes().count(b"\n")) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"the run wrote fewer than {count} lines (status {process.poll()})")


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, test_model: Path) -> tuple[Path, dict]:
    """400 requests and their answers from an uninterrupted --executor local run."""
    folder = tmp_path_factory.mktemp("ray-many")
    requests = write_jsonl(folder / "many.jsonl", many_requests(400, sample_requests()))
    reference = folder / "local.jsonl"
    done = run(command(test_model, requests, reference, "-q"))
    assert done.returncode in (0, 1), done.stderr
    return requests, answers(read_jsonl(reference))


def test_two_actors_match_local_and_trace_both(
    no_actor_left: str, test_model: Path, tmp_path: Path
) -> None:
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    traces = tmp_path / "traces.jsonl"
    local = run(command(test_model, SAMPLE_QUERIES, local_out, "-q"))
    assert local.returncode in (0, 1), local.stderr
    remote_line = command(test_model, SAMPLE_QUERIES, ray_out, address=no_actor_left)
    remote = run([*remote_line, "--traces", "file", "--traces-file", str(traces)])
    assert remote.returncode in (0, 1), remote.stderr
    rows = read_jsonl(ray_out)
    expected_ids = [row.get("id", index + 1) for index, row in enumerate(sample_requests())]
    assert sorted(map(str, answers(rows))) == sorted(map(str, expected_ids))
    assert answers(rows) == answers(read_jsonl(local_out))

    spans = exported_spans(traces)
    workers = [s for s in spans if s["resource"].get("needle.process.role") == "worker"]
    instances = {s["resource"]["service.instance.id"] for s in workers}
    assert len(instances) == 2, "spans from both actors"
    for span in workers:
        resource = span["resource"]
        assert resource["ray.actor.id"] == resource["service.instance.id"]
        assert resource["ray.node.id"]
    by_trace: dict[str, set[str]] = {}
    for span in workers:
        trace = span["traceId"]
        by_trace.setdefault(trace, set()).add(span["resource"]["service.instance.id"])
    assert set(by_trace) == {row["trace_id"] for row in rows}
    assert all(len(actors) == 1 for actors in by_trace.values()), "one actor per attempt"
    assert set().union(*by_trace.values()) == instances


@pytest.mark.slow
def test_killed_actor_loses_and_duplicates_nothing(
    no_actor_left: str, test_model: Path, tmp_path: Path, many: tuple[Path, dict]
) -> None:
    requests, reference = many
    output = tmp_path / "ray.jsonl"
    process = start(command(test_model, requests, output, address=no_actor_left))
    try:
        written = wait_for_lines(output, 40, process)
        victims = alive_actors()
        assert len(victims) == 2
        ray.kill(ray.get_actor(victims[0], namespace=NAMESPACE), no_restart=True)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 1), stderr
    assert written < 400, "the kill came after the end"
    assert "1 worker restarts" in stderr
    assert our_actors()[victims[0]] == "DEAD"
    assert answers(read_jsonl(output)) == reference  # 0 lost, 0 duplicated, same answers


@pytest.mark.slow
def test_killed_actor_with_one_attempt_is_worker_crashed(
    no_actor_left: str, test_model: Path, tmp_path: Path, many: tuple[Path, dict]
) -> None:
    """--max-attempts 1: the request the actor was running ends as worker_crashed; the
    ones queued behind it go to the replacement."""
    requests, reference = many
    output = tmp_path / "ray.jsonl"
    line = command(test_model, requests, output, "--max-attempts", "1", address=no_actor_left)
    process = start(line)
    try:
        wait_for_lines(output, 40, process)
        victim = alive_actors()[0]
        ray.kill(ray.get_actor(victim, namespace=NAMESPACE), no_restart=True)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, stderr
    got = answers(read_jsonl(output))
    crashed = [key for key in got if got[key] != reference[key]]
    assert got.keys() == reference.keys()
    assert len(crashed) == 1, crashed
    rows = {row["id"]: row for row in read_jsonl(output)}
    error = rows[crashed[0]]["error"]
    assert error["type"] == "worker_crashed" and victim in error["message"]


@pytest.mark.slow
def test_sigterm_then_the_same_command_finishes_the_run(
    no_actor_left: str, test_model: Path, tmp_path: Path, many: tuple[Path, dict]
) -> None:
    requests, reference = many
    output = tmp_path / "ray.jsonl"
    line = command(test_model, requests, output, address=no_actor_left)
    process = start(line)
    try:
        wait_for_lines(output, 40, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    first = read_jsonl(output)
    assert 40 <= len(first) < 400
    assert alive_actors() == [], "the drained run left actors behind"
    again = run(line)
    assert again.returncode in (0, 1), again.stderr
    assert "already done (resumed)" in again.stderr
    assert answers(read_jsonl(output)) == reference


def test_executor_ray_without_ray_is_a_usage_error(test_model: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "no-ray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError(\"No module named 'ray'\", name='ray')\n"
    )
    line = command(test_model, SAMPLE_QUERIES, tmp_path / "out.jsonl", address="127.0.0.1:1")
    env = cli_env({"PYTHONPATH": f"{shadow.parent}{os.pathsep}{PROJECT_ROOT}"})
    done = subprocess.run(line, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "pip install -e '.[ray]'" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_unreachable_ray_address_is_a_usage_error(test_model: Path, tmp_path: Path) -> None:
    line = command(test_model, SAMPLE_QUERIES, tmp_path / "out.jsonl", address="127.0.0.1:1")
    done = run(line, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "cannot reach Ray at 127.0.0.1:1" in done.stderr


def cache_in_hub_layout(hf_home: Path, model: Path) -> None:
    """Lay ``model`` out as huggingface_hub's cache does after a download."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_home / "hub" / "models--needle-org--needle-test-GGUF"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, snapshot / "needle-test.gguf")


@pytest.mark.slow
def test_hf_reference_is_resolved_on_the_node(
    no_actor_left: str,
    test_model: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """An hf: model is not shipped: each actor finds it in its own node's cache."""
    driver_hf = tmp_path / "driver-hf"
    cache_in_hub_layout(driver_hf, test_model)
    reference = "hf:needle-org/needle-test-GGUF/needle-test.gguf"
    output = tmp_path / "out.jsonl"
    line = command(test_model, SAMPLE_QUERIES, output, address=no_actor_left)
    line[line.index("--model") + 1] = reference
    env = cli_env({"HF_HOME": str(driver_hf), "HF_HUB_OFFLINE": "1"})

    def run_hf() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            line, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    node_hf = node_hf_home(tmp_path_factory)
    shutil.rmtree(node_hf, ignore_errors=True)
    missing = run_hf()  # in the driver's cache only: the actors cannot load it
    assert missing.returncode == 1, missing.stderr
    assert "not in the Hugging Face cache" in missing.stderr
    assert str(node_hf) in missing.stderr
    cache_in_hub_layout(node_hf, test_model)
    cached = run_hf()
    assert cached.returncode in (0, 1), cached.stderr
    rows = read_jsonl(output)
    assert len(rows) == len(sample_requests()) and rows[0]["model"] == "needle-test"
