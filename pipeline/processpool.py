"""The worker pool's slots, and the local pool: one spawned ``python -m workers`` process
per slot.

One slot task per worker owns that worker, restarts it when it dies, hangs or breaks the
protocol, and re-runs (up to ``max_attempts``) the request that was in flight. What a
slot starts comes from a :data:`WorkerFactory`: a local process by default, a Ray actor
in :class:`pipeline.raypool.RayPool`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from pipeline.config import FatalRunError, RunConfig
from pipeline.outcomes import Outcomes
from pipeline.work import Pending
from pipeline.workerproc import WorkerDied, WorkerProcess, WorkerStartError
from workers.messages import Init, Job, Ready, Result

# Jobs sent to a worker ahead of its answers: the next is in its pipe when it finishes.
JOBS_AHEAD = 2


class SlotWorker(Protocol):
    """What a slot drives: a process (:class:`pipeline.workerproc.WorkerProcess`) or a
    Ray actor (:class:`pipeline.raypool.ActorWorker`). It answers jobs in the order they
    were sent; a dead or broken one raises :class:`WorkerDied`."""

    index: int
    ready: Ready

    @property
    def pid(self) -> int: ...

    async def send(self, message: Job) -> None: ...

    async def receive(self) -> Result: ...

    async def death_message(self, broke: str) -> str: ...

    async def stop(self) -> None: ...

    async def kill(self) -> None: ...

    def kill_now(self) -> None: ...


# Starts a ready worker for a slot: (slot index, its Init, the slot's task group for the
# worker's pumps, the pool's set of live workers, which it joins) -> the worker; raises
# WorkerStartError.
WorkerFactory = Callable[[int, Init, TaskGroup, set[Any]], Awaitable[SlotWorker]]


class ProcessPool:
    def __init__(
        self,
        workers: int,
        init_message: Callable[[int], Init],
        *,
        timeout_s: float = 60.0,
        max_attempts: int = 2,
        start_timeout_s: float = 300.0,
        verbose: bool = False,
        command: Sequence[str] | None = None,  # the worker program (default python -m workers)
        start_worker: WorkerFactory | None = None,  # default: a local worker process
        jobs_ahead: int = JOBS_AHEAD,  # per worker
    ) -> None:
        self.workers = workers
        self.init_message = init_message
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.start_timeout_s = start_timeout_s
        self.verbose = verbose
        self.command = command
        self.start_worker = start_worker or self._start_process
        self.jobs_ahead = jobs_ahead
        self.live: set[Any] = set()  # SlotWorkers started and not yet reaped
        self._stopping = False

    @classmethod
    def for_run(cls, config: RunConfig, **factory: Any) -> ProcessPool:
        """One slot per ``config.workers`` (``factory``: ``start_worker=``, ``jobs_ahead=``
        for workers other than local processes)."""
        return cls(
            config.workers,
            config.init_message,
            timeout_s=config.timeout_s,
            max_attempts=config.max_attempts,
            start_timeout_s=config.start_timeout_s,
            verbose=config.verbose,
            **factory,
        )

    def drain(self) -> None:
        self._stopping = True

    def kill_now(self) -> None:
        for worker in list(self.live):
            worker.kill_now()

    async def serve(self, jobs: MemoryObjectReceiveStream[Pending], outcomes: Outcomes) -> None:
        async with jobs, anyio.create_task_group() as slots:
            for index in range(self.workers):
                slots.start_soon(self._serve_slot, index, jobs.clone(), outcomes)

    async def _serve_slot(
        self, index: int, jobs: MemoryObjectReceiveStream[Pending], outcomes: Outcomes
    ) -> None:
        """Own worker ``index`` for the whole run: start it, feed it, replace it when it fails."""
        retries: list[Pending] = []  # requests whose worker died, to run again
        failed_starts = 0
        first_start = True
        async with jobs:
            try:
                while True:
                    async with anyio.create_task_group() as pumps:
                        try:
                            worker = await self.start_worker(
                                index, self.init_message(index), pumps, self.live
                            )
                        except WorkerStartError as exc:
                            # Fatal when the model seems not to load at all (no worker ever
                            # got ready), or this slot keeps failing; else (a worker killed
                            # while loading) try again.
                            failed_starts += 1
                            if (first_start and not outcomes.ready_once) or failed_starts >= 3:
                                raise FatalRunError(str(exc)) from None
                            pumps.cancel_scope.cancel()
                            continue
                        outcomes.worker_ready(worker.ready, restarted=not first_start)
                        first_start = False
                        failed_starts = 0
                        finished = False
                        try:
                            # _feed owns the retries from here on (it abandons them if stopped).
                            handed, retries = retries, []
                            retries, finished = await self._feed(worker, jobs, outcomes, handed)
                        finally:
                            with anyio.CancelScope(shield=True):
                                if finished:
                                    await worker.stop()
                                else:
                                    await worker.kill()
                            pumps.cancel_scope.cancel()
                    if finished:
                        return
                    if self._stopping:  # no replacement worker just to stop it again
                        for pending in retries:
                            outcomes.abandon(pending)
                        return
            except BaseException:
                for pending in retries:  # stopped before a replacement worker could run them
                    outcomes.abandon(pending)
                raise

    async def _start_process(
        self, index: int, init: Init, pumps: TaskGroup, live: set[Any]
    ) -> SlotWorker:
        """A fresh, ready worker process for slot ``index``."""
        return await WorkerProcess.start(
            index,
            init,
            pumps,
            verbose=self.verbose,
            start_timeout_s=self.start_timeout_s,
            command=self.command,
            live=live,
        )

    async def _next_job(
        self, jobs: MemoryObjectReceiveStream[Pending], retries: list[Pending], busy: bool
    ) -> Pending | None:
        """A retry first, then the input; waits only when the worker has nothing to do.
        None: nothing now (or the input is done, when ``jobs`` has ended)."""
        if retries:
            return retries.pop(0)
        try:
            return jobs.receive_nowait() if busy else await jobs.receive()
        except (anyio.WouldBlock, anyio.EndOfStream):
            return None

    async def _feed(
        self,
        worker: SlotWorker,
        jobs: MemoryObjectReceiveStream[Pending],
        outcomes: Outcomes,
        retries: list[Pending],
    ) -> tuple[list[Pending], bool]:
        """Run jobs on ``worker``; returns (jobs to run on a replacement, input finished).

        Up to :data:`JOBS_AHEAD` jobs are sent ahead, so the worker starts the next one
        the moment it answers instead of waiting for the supervisor. It answers in the
        order it was sent; the first job not yet answered (the head) is the one it is
        running, and only the head is charged with a timeout or a crash; the jobs queued
        behind it are run again on the replacement.
        """
        sent: deque[Pending] = deque()
        try:
            while True:
                while len(sent) < self.jobs_ahead and not self._stopping:
                    pending = await self._next_job(jobs, retries, busy=bool(sent))
                    if pending is None:
                        break
                    sent.append(pending)
                    try:
                        if not await self._send(worker, pending, outcomes):
                            sent.pop()
                    except WorkerDied:
                        break  # the head's receive below reports the death
                if not sent:
                    for pending in retries:  # stopping: left for a resume
                        outcomes.abandon(pending)
                    return [], True
                head = sent[0]
                head.attempts += 1
                outcomes.started(head)
                try:
                    with anyio.fail_after(self.timeout_s):
                        reply = await worker.receive()
                    if reply.seq != head.seq:  # a worker that lost track: replace it
                        wrong = f"answered job {reply.seq} when job {head.seq} was next"
                        raise WorkerDied(await worker.death_message(wrong))
                except TimeoutError:
                    sent.popleft()
                    message = (
                        f"no answer within {self.timeout_s:g}s; worker {worker.index} "
                        f"(pid {worker.pid}) was replaced"
                    )
                    outcomes.failed(head, "timeout", message)
                    return [*sent, *retries], False
                except WorkerDied as died:
                    sent.popleft()
                    head.span.add_event("worker_died", {"message": str(died)})
                    if head.attempts >= self.max_attempts:
                        message = f"{died}; gave up after {head.attempts} attempts"
                        outcomes.failed(head, "worker_crashed", message)
                        return [*sent, *retries], False
                    return [head, *sent, *retries], False
                sent.popleft()
                outcomes.replied(head, reply, worker.index, worker.pid)
        except BaseException:
            for pending in [*sent, *retries]:
                outcomes.abandon(pending)
            raise

    async def _send(self, worker: SlotWorker, pending: Pending, outcomes: Outcomes) -> bool:
        """Queue ``pending`` on ``worker``; False when it cannot be sent (it has ended as
        an error line). Raises :class:`WorkerDied`."""
        pending.span.set_attribute(
            "needle.queue_wait_ms", (time.perf_counter() - pending.read_at) * 1000
        )
        try:
            await worker.send(pending.job())
        except TypeError as exc:  # the job cannot be encoded; nothing was sent
            outcomes.failed(pending, "internal_error", f"cannot be sent to a worker: {exc}")
            return False
        return True
