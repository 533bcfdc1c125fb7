"""The body of one Ray actor: one model instance, the worker's own job handling.

:class:`ModelActor` is a plain class; :mod:`pipeline.raypool` makes it a Ray actor
(``ray.remote(num_cpus=threads)``), so this module never imports Ray. It speaks the same
typed messages as the worker process (:mod:`workers.messages`, as wire dicts), and
answers each job with :class:`workers.handler.JobHandler`: prompt, decode, parse and
validate exist once.

The model reaches the actor's node either as the file's bytes (a local path, sent once
through Ray's object store and written to a per-node cache named by its sha256) or as a
function that resolves it there (an ``hf:`` reference, downloaded into that node's
Hugging Face cache).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from workers.messages import Init, Job, expect, to_wire
from workers.telemetry.providers import create_tracer_provider, shutdown_within
from workers.telemetry.settings import INSTRUMENTATION_NAME, WORKER_SHUTDOWN_S, TelemetrySettings
from workers.worker import start_handler

MODEL_CACHE_ENV = "NEEDLE_MODEL_CACHE"  # where shipped model files land on each node


def model_cache_dir() -> Path:
    configured = os.environ.get(MODEL_CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "needle-pipeline-models"


def place_model(data: bytes, sha256: str, name: str) -> Path:
    """The shipped model as a file on this node: ``<cache>/<sha256>/<name>``, written once
    (atomically, so actors starting together on one node share it)."""
    target = model_cache_dir() / sha256 / name
    if target.is_file() and target.stat().st_size == len(data):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return target


class ModelActor:
    """Loads the model once, then answers :class:`Job` wire dicts one at a time."""

    def __init__(
        self,
        init: Mapping[str, Any],
        resource: Callable[[], Mapping[str, Any]],
        model_bytes: bytes | None = None,
        model_sha256: str = "",
        fetch_model: Callable[[], str] | None = None,
    ) -> None:
        message: Init = expect(init, Init)
        if model_bytes is not None:
            path = place_model(model_bytes, model_sha256, Path(message.model_path).name)
            message = msgspec.structs.replace(message, model_path=str(path))
        elif fetch_model is not None:
            message = msgspec.structs.replace(message, model_path=fetch_model())
        settings = TelemetrySettings.from_dict(message.telemetry)
        attributes = {
            "needle.worker.index": message.worker_index,
            "process.pid": os.getpid(),
            "needle.process.role": "worker",
            **resource(),  # where it runs: node, actor (read inside the actor)
        }
        # Follow the sampling decision in each job's traceparent, as a worker process does.
        self.provider = create_tracer_provider(settings, attributes, root=False)
        try:
            self.handler, self.ready_message = start_handler(
                message, self.provider.get_tracer(INSTRUMENTATION_NAME)
            )
        except BaseException:
            shutdown_within(WORKER_SHUTDOWN_S, self.provider)
            raise

    def ready(self) -> dict[str, Any]:
        return to_wire(self.ready_message)

    def handle(self, job: Mapping[str, Any]) -> dict[str, Any]:
        message: Job = expect(job, Job)
        return to_wire(self.handler.handle(message))

    def shutdown(self) -> bool:
        """Flush this actor's spans (before the pool ends it)."""
        return shutdown_within(WORKER_SHUTDOWN_S, self.provider)
