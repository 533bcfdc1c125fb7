"""``python -m bench --executor ray``: the pipeline on Ray actors against the pipeline on
local worker processes, same requests, same model, same cores.

A Ray head is started for the benchmark (``ray start --head --block --num-cpus=<cores>``,
no dashboard, on 127.0.0.1) and stopped afterwards: the cluster is there before the run, as
it would be in production, so the Ray run's wall time includes joining it, creating the
actors and loading the model in each, but not booting Ray. Both runs use the same
``--workers`` and ``--threads`` (default: one worker per core, one thread each).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.runs import _env, _results, compare_outputs, pipeline_command, timed_pipeline

ADDRESS_LINE = re.compile(r"ray start --address='([^']+)'")


def _ray_env() -> dict[str, str]:
    """A throwaway cluster on 127.0.0.1: no token auth (else a token left in ~/.ray by an
    earlier local ray.init turns it on for the head only)."""
    return {**_env(), "RAY_AUTH_MODE": "disabled"}


def start_head(cpus: int) -> tuple[subprocess.Popen[str], str]:
    """``ray start --head --block``: terminating it stops exactly this cluster."""
    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    command = [ray_cli, "start", "--head", "--block", "--port=0", f"--num-cpus={cpus}"]
    command += ["--include-dashboard=false", "--node-ip-address=127.0.0.1"]
    command += ["--disable-usage-stats"]
    head = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_ray_env(),
        start_new_session=True,
    )
    assert head.stdout is not None
    seen = []
    for line in head.stdout:
        seen.append(line)
        match = ADDRESS_LINE.search(line)
        if match:
            threading.Thread(target=head.stdout.read, daemon=True).start()  # keep it drained
            return head, match.group(1)
    stop_head(head)
    raise RuntimeError("ray start failed: " + "".join(seen)[-2000:])


def stop_head(head: subprocess.Popen[str]) -> None:
    head.terminate()
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def run_one(
    args: argparse.Namespace, requests: Path, model: Path, out: Path, *extra: str
) -> dict[str, Any]:
    command = pipeline_command(args, requests, out, model, "--max-tokens", str(args.max_tokens))
    command += list(extra)
    wall, watch, returncode = timed_pipeline(command, out, _ray_env())
    if returncode not in (0, 1):
        raise RuntimeError(f"pipeline {' '.join(extra)} failed with status {returncode}")
    rows = _results(out)
    return {"wall_s": wall, "rows": rows, "first_line_s": watch.first_line_s or 0.0}


def run_executors(args: argparse.Namespace, requests: Path, model: Path, workdir: Path) -> int:
    cores = len(os.sched_getaffinity(0))
    if not args.workers:
        args.workers = cores
    if not args.threads:
        args.threads = max(1, cores // args.workers)
    head, address = start_head(cores)
    try:
        local = run_one(args, requests, model, workdir / "local.results.jsonl")
        remote = run_one(
            args,
            requests,
            model,
            workdir / "ray.results.jsonl",
            "--executor",
            "ray",
            "--ray-address",
            address,
        )
    finally:
        stop_head(head)
    print(format_executors(local, remote, args, cores), flush=True)
    return 0


def format_executors(
    local: dict[str, Any], remote: dict[str, Any], args: argparse.Namespace, cores: int
) -> str:
    count = len(local["rows"])
    local_rps, ray_rps = count / local["wall_s"], len(remote["rows"]) / remote["wall_s"]

    def steady(run: dict[str, Any]) -> float:  # after the first result line
        return (len(run["rows"]) - 1) / max(1e-9, run["wall_s"] - run["first_line_s"])

    match = compare_outputs(local["rows"], remote["rows"])
    return "\n".join(
        [
            f"{count} requests; {args.workers} workers x {args.threads} threads on {cores} cores; "
            "local: worker processes; ray: actors on a local Ray head (started beforehand)",
            f"{'':34} {'local':>12} {'ray':>12} {'ratio':>8}",
            f"{'requests/s':34} {local_rps:12.2f} {ray_rps:12.2f} {ray_rps / local_rps:7.2f}x",
            f"{'wall time (s)':34} {local['wall_s']:12.2f} {remote['wall_s']:12.2f}",
            f"{'time to first result line (s)':34} {local['first_line_s']:12.2f} "
            f"{remote['first_line_s']:12.2f}",
            f"{'requests/s after the first line':34} {steady(local):12.2f} {steady(remote):12.2f}"
            f" {steady(remote) / steady(local):7.2f}x",
            f"{'outputs identical (status+calls)':34} {match['exact']:>6}/{match['total']:<5}"
            + (f"; DIFFER: {match['differ'][:5]}" if match["differ"] else ""),
        ]
    )
