"""``--executor``: which worker pool runs the jobs, and how many workers it has.

``local`` is :class:`pipeline.processpool.ProcessPool` (worker processes on this
machine); ``ray`` is :class:`pipeline.raypool.RayPool` (Ray actors across a cluster),
imported only when asked for, since Ray is an optional extra.
"""

from __future__ import annotations

import sys
from typing import Any

from pipeline.config import RunConfig, default_workers, threads_per_worker
from pipeline.pool import WorkerPool

EXECUTORS = ("local", "ray")
RAY_MISSING = "--executor ray needs Ray: pip install -e '.[ray]'"


def size_pool(
    executor: str,
    workers: int | None,
    threads: int | None,
    *,
    ray_address: str | None = None,
    log_to_driver: bool = False,
) -> tuple[int, int]:
    """(workers, llama.cpp threads per worker). Locally: one worker per core, the cores
    split between them. On Ray (joined here; ValueError when it cannot be): the cluster's
    CPUs divided by ``threads`` (1 by default), or split between ``workers`` actors."""
    if executor != "ray":
        count = workers or default_workers()
        return count, threads or threads_per_worker(count)
    raypool = _raypool()
    try:
        raypool.connect(ray_address, log_to_driver=log_to_driver)
    except raypool.RayUnavailable as exc:
        raise ValueError(str(exc)) from None
    cpus = max(1, raypool.cluster_cpus())
    if workers is None:
        threads = threads or 1
        return max(1, cpus // threads), threads
    threads = threads or max(1, cpus // workers)
    if workers * threads > cpus:  # an autoscaling cluster may grow; else some wait to start
        sys.stderr.write(
            f"needle-pipeline: warning: {workers} actors x {threads} threads need "
            f"{workers * threads} CPUs; the Ray cluster has {cpus} now\n"
        )
    return workers, threads


def make_pool(executor: str, config: RunConfig) -> WorkerPool | None:
    """The pool for ``executor`` (None: the supervisor's default, the process pool)."""
    if executor != "ray":
        return None
    pool: WorkerPool = _raypool().RayPool(config)
    return pool


def _raypool() -> Any:
    try:
        import pipeline.raypool as raypool
    except ImportError as exc:  # Ray is not installed (only pipeline.raypool imports it)
        if exc.name != "ray" and not (exc.name or "").startswith("ray."):
            raise
        raise ValueError(RAY_MISSING) from None
    return raypool
