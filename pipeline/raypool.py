"""The Ray worker pool: the same slots as :class:`pipeline.processpool.ProcessPool`, each
driving one Ray actor (:class:`workers.actor.ModelActor`) instead of a local process.

The supervisor stays the single owner of reading, ordering, resume and writing; an actor
only answers jobs. A slot keeps up to four jobs queued on its actor (two on a process).
An actor that dies (``ray.kill``, its node lost, out of memory) is a :class:`WorkerDied`,
so the slot replaces it and retries the request it was running up to ``--max-attempts``
(then ``worker_crashed``), and sends the jobs queued behind it to the replacement.

Ray is an optional dependency (``pip install -e ".[ray]"``): only this module imports it,
and the CLI imports this module only for ``--executor ray``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import ray
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream
from ray.exceptions import RayError

from pipeline.config import FatalRunError, RunConfig
from pipeline.models import HF_PREFIX, ModelRef, resolve_model
from pipeline.outcomes import Outcomes
from pipeline.processpool import ProcessPool, SlotWorker
from pipeline.work import Pending
from pipeline.workerproc import WorkerDied, WorkerStartError
from workers.actor import ModelActor
from workers.messages import Init, Job, MessageError, Ready, Result, expect, to_wire

NAMESPACE = "needle-pipeline"  # the pool's actors are named here: needle-<pid>-<slot>-<n>
STOP_TIMEOUT_S = 10.0
RAY_JOBS_AHEAD = 4
CONNECT_TIMEOUT_S = 10.0
FORWARDED_HF_VARIABLES = ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN")
_names = itertools.count()


class RayUnavailable(Exception):
    """Ray cannot be reached (bad address, no cluster)."""


def connect(address: str | None, *, log_to_driver: bool = False) -> None:
    """Join the cluster at ``address`` (else ``RAY_ADDRESS``), or start a local Ray for the
    run when neither is given. Call it from the main thread, before the event loop runs:
    the supervisor's own signal handling must come last."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {
        "namespace": NAMESPACE,
        "logging_level": logging.WARNING,
        "log_to_driver": log_to_driver,
    }
    if address is None:
        options.update(address="local", include_dashboard=False)
    else:
        _check_reachable(address)
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a new local Ray"
        raise RayUnavailable(f"cannot connect to Ray at {where}: {exc}") from None


def _check_reachable(address: str) -> None:
    """Fail at once on a HOST:PORT nothing listens on (Ray itself retries for minutes)."""
    if "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray-address must be HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach Ray at {address}: {exc}") from None


def disconnect() -> None:
    """Leave the cluster (a local Ray started by :func:`connect` stops with it)."""
    if ray.is_initialized():
        ray.shutdown()


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 0))


def actor_resource() -> dict[str, Any]:
    """Resource attributes of the actor's spans, read inside the actor."""
    context = ray.get_runtime_context()
    actor_id = context.get_actor_id() or ""
    return {
        "service.instance.id": actor_id,
        "ray.actor.id": actor_id,
        "ray.node.id": context.get_node_id(),
        "host.name": socket.gethostname(),
    }


def actor_environment(n_threads: int) -> dict[str, str]:
    """What an actor's process gets from the supervisor's environment: the OpenTelemetry
    settings (its spans go where the supervisor's go) and how to reach the Hugging Face
    Hub (not ``HF_HOME``: each node keeps its own cache)."""
    forwarded = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("OTEL_") or name in FORWARDED_HF_VARIABLES
    }
    # Idle OpenMP threads must not spin on a core another actor needs.
    return {**forwarded, "OMP_NUM_THREADS": str(n_threads), "OMP_WAIT_POLICY": "PASSIVE"}


def _short(error: BaseException) -> str:
    """The last informative line of a Ray error (they carry whole tracebacks)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:600] if lines else type(error).__name__


class ActorWorker:
    """The supervisor's handle on one actor: the same calls as a worker process."""

    def __init__(self, index: int, actor: Any, name: str, live: set[Any]) -> None:
        self.index = index
        self.actor = actor
        self.name = name
        self.ready = Ready(pid=0, model="", n_ctx=0, load_ms=0.0)
        self._sent: deque[Any] = deque()  # ObjectRefs of jobs not yet answered, in order
        self._live = live
        live.add(self)

    @property
    def pid(self) -> int:
        return self.ready.pid

    @classmethod
    async def start(
        cls,
        index: int,
        init: Init,
        model_args: dict[str, Any],
        *,
        start_timeout_s: float,
        live: set[Any],
    ) -> ActorWorker:
        """Create the actor (``num_cpus`` = its llama.cpp threads) and wait until its model
        is loaded; raises :class:`WorkerStartError`."""
        name = f"needle-{os.getpid()}-{index}-{next(_names)}"
        remote = ray.remote(ModelActor).options(
            name=name,
            namespace=NAMESPACE,
            num_cpus=init.n_threads,
            max_restarts=0,  # the slot replaces it, and decides about its request
            max_task_retries=0,
            runtime_env={"env_vars": actor_environment(init.n_threads)},
        )
        actor: Any = remote.remote(to_wire(init), actor_resource, **model_args)
        worker = cls(index, actor, name, live)
        try:
            try:
                with anyio.fail_after(start_timeout_s):
                    ready = expect(await actor.ready.remote(), Ready)
            except TimeoutError:
                raise WorkerStartError(
                    f"actor {index} was not placed or did not load the model within "
                    f"{start_timeout_s:.0f}s (does the cluster have {init.n_threads} free CPUs?)"
                ) from None
            except (RayError, MessageError) as exc:
                raise WorkerStartError(f"actor {index} could not start: {_short(exc)}") from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await worker.kill()
            raise
        worker.ready = ready
        return worker

    async def send(self, message: Job) -> None:
        self._sent.append(self.actor.handle.remote(to_wire(message)))

    async def receive(self) -> Result:
        """The answer to the oldest job sent; a dead actor or a broken answer is a
        :class:`WorkerDied`."""
        if not self._sent:
            raise WorkerDied(await self.death_message("no job in flight"))
        ref = self._sent.popleft()
        try:
            result: Result = expect(await ref, Result)
        except (RayError, MessageError) as exc:
            raise WorkerDied(f"actor {self.index} ({self.name}) failed: {_short(exc)}") from None
        return result

    async def death_message(self, broke: str) -> str:
        return f"actor {self.index} ({self.name}) broke the protocol ({broke})"

    async def stop(self) -> None:
        """Let the actor flush its spans, then end it."""
        with anyio.move_on_after(STOP_TIMEOUT_S), contextlib.suppress(RayError):
            await self.actor.shutdown.remote()
        await self.kill()

    async def kill(self) -> None:
        self.kill_now()
        self._sent.clear()
        self._live.discard(self)

    def kill_now(self) -> None:
        with contextlib.suppress(RayError, ValueError):
            ray.kill(self.actor, no_restart=True)


def model_arguments(model: ModelRef) -> dict[str, Any]:
    """How the model reaches each actor's node: an ``hf:`` reference is downloaded there
    (into that node's cache); a local file's bytes go once into the object store."""
    if model.spec.startswith(HF_PREFIX):
        fetch: Callable[[], str] = functools.partial(_fetch_on_node, model.spec)
        return {"fetch_model": fetch}
    data = model.path.read_bytes()
    return {"model_bytes": ray.put(data), "model_sha256": model.digest()}


def _fetch_on_node(spec: str) -> str:
    return str(resolve_model(spec).path)


class RayPool:
    """:class:`ProcessPool`'s slots (retries, timeouts, drain), each driving a Ray actor.

    Joins the cluster itself (:func:`connect`) unless it is already joined."""

    def __init__(self, config: RunConfig) -> None:
        self.model = config.model
        self._model_args: dict[str, Any] = {}
        self.slots = ProcessPool.for_run(
            config, start_worker=self._start_actor, jobs_ahead=RAY_JOBS_AHEAD
        )

    async def serve(self, jobs: MemoryObjectReceiveStream[Pending], outcomes: Outcomes) -> None:
        try:
            try:
                self._model_args = await anyio.to_thread.run_sync(model_arguments, self.model)
            except (OSError, RayError) as exc:
                raise FatalRunError(f"cannot send the model to the cluster: {exc}") from None
            await self.slots.serve(jobs, outcomes)
        finally:
            with anyio.CancelScope(shield=True):  # no actor outlives the run
                for worker in list(self.slots.live):
                    await worker.kill()

    def drain(self) -> None:
        self.slots.drain()

    async def _start_actor(
        self, index: int, init: Init, pumps: TaskGroup, live: set[Any]
    ) -> SlotWorker:
        return await ActorWorker.start(
            index, init, self._model_args, start_timeout_s=self.slots.start_timeout_s, live=live
        )

    def kill_now(self) -> None:
        self.slots.kill_now()
        with contextlib.suppress(Exception):
            disconnect()
