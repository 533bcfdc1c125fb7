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
from pipeline.processpool import ProcessPool

EXECUTORS = ("local", "ray")
RAY_MISSING = "--executor ray needs Ray: pip install -e '.[ray]'"


def join_cluster(executor: str, ray_address: str | None, *, log_to_driver: bool) -> int | None:
    """For ``ray``: join the cluster (ValueError when it cannot be) and return its CPUs;
    locally nothing to join (None). Call it from the main thread, before the event loop."""
    if executor != "ray":
        return None
    raypool = _raypool()
    try:
        raypool.connect(ray_address, log_to_driver=log_to_driver)
    except raypool.RayUnavailable as exc:
        raise ValueError(str(exc)) from None
    return max(1, raypool.cluster_cpus())


def size_pool(
    workers: int | None, threads: int | None, cluster_cpus: int | None
) -> tuple[int, int]:
    """(workers, llama.cpp threads per worker). Locally (``cluster_cpus`` None): one worker
    per core, the cores split between them. On a Ray cluster of ``cluster_cpus``: those
    CPUs divided by ``threads`` (1 by default), or split between ``workers`` actors."""
    if cluster_cpus is None:
        count = workers or default_workers()
        return count, threads or threads_per_worker(count)
    if workers is None:
        threads = threads or 1
        return max(1, cluster_cpus // threads), threads
    threads = threads or max(1, cluster_cpus // workers)
    if workers * threads > cluster_cpus:  # an autoscaling cluster may grow; else some wait
        sys.stderr.write(
            f"needle-pipeline: warning: {workers} actors x {threads} threads need "
            f"{workers * threads} CPUs; the Ray cluster has {cluster_cpus} now\n"
        )
    return workers, threads


def make_pool(config: RunConfig) -> WorkerPool:
    """The pool for ``config.executor``: local worker processes, or Ray actors."""
    if config.executor == "ray":
        pool: WorkerPool = _raypool().RayPool(config)
        return pool
    return ProcessPool.for_run(config)


def _raypool() -> Any:
    try:
        import pipeline.raypool as raypool
    except ImportError as exc:  # Ray is not installed (only pipeline.raypool imports it)
        if exc.name != "ray" and not (exc.name or "").startswith("ray."):
            raise
        raise ValueError(RAY_MISSING) from None
    return raypool
