"""The worker pool interface: what the supervisor needs from whatever runs the jobs."""

from __future__ import annotations

from typing import Protocol

from anyio.streams.memory import MemoryObjectReceiveStream

from pipeline.outcomes import Outcomes
from pipeline.work import Pending


class WorkerPool(Protocol):
    """Runs jobs on workers. :class:`pipeline.processpool.ProcessPool` is the local one."""

    async def serve(self, jobs: MemoryObjectReceiveStream[Pending], outcomes: Outcomes) -> None:
        """Run every job from ``jobs`` until it ends, then return.

        Each job ends in exactly one call of ``outcomes.replied``, ``outcomes.failed`` or
        ``outcomes.abandon``, also when ``serve`` is cancelled. Raises
        :class:`pipeline.config.FatalRunError` when no worker can run at all.
        """
        ...

    def drain(self) -> None:
        """Take no new job; those in flight may finish (the run is stopping)."""
        ...

    def kill_now(self) -> None:
        """End every worker at once, synchronously (a second signal: exit now)."""
        ...
