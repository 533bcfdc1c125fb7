"""A worker process: loads one model once, then answers job messages until told to stop.

Started by the supervisor as ``python -m workers`` (a fresh interpreter, never a fork
of a process that has run llama.cpp). It speaks length-prefixed frames on a private
copy of stdout (see :mod:`workers.protocol`), the typed messages of :mod:`workers.messages`.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import IO, Any

from opentelemetry.trace import Tracer

from workers.dispatch import load_callable, load_dispatcher
from workers.engine import (
    Engine,
    LlamaEngine,
)
from workers.handler import JobHandler
from workers.messages import (
    Fatal,
    Init,
    Job,
    MessageError,
    Ready,
    Shutdown,
    expect,
    to_wire,
)
from workers.prompts import make_prompt_format
from workers.protocol import read_frame, write_frame
from workers.telemetry.providers import create_tracer_provider, shutdown_within
from workers.telemetry.settings import INSTRUMENTATION_NAME, WORKER_SHUTDOWN_S, TelemetrySettings


def _protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    """Keep a private copy of stdout for frames; point fd 1 at stderr for everything else."""
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, protocol_out


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)


def load_engine(init: Init) -> Engine:
    """llama.cpp, or the engine that ``init.engine`` (MODULE:FUNCTION) builds, called
    with the same arguments as :class:`LlamaEngine`."""
    factory: Any = LlamaEngine
    if init.engine:
        factory = load_callable(init.engine, "--engine")
    return factory(
        init.model_path,
        n_ctx=init.n_ctx,
        n_threads=init.n_threads,
        n_batch=init.n_batch,
        verbose=init.verbose,
    )


def start_handler(init: Init, tracer: Tracer) -> tuple[JobHandler, Ready]:
    """Load the engine (and the --dispatch function) once: the handler for every job, and
    what to report as ready. Shared by the worker process and the Ray actor
    (:mod:`workers.actor`); raises when the model cannot be loaded."""
    engine = load_engine(init)
    prompt_format = make_prompt_format(init.prompt_format, engine.metadata)
    dispatcher = load_dispatcher(init.dispatch) if init.dispatch else None
    capture = TelemetrySettings.from_dict(init.telemetry).capture_content
    handler = JobHandler(
        engine, prompt_format, init.decoding, tracer, capture, init.worker_index, dispatcher
    )
    ready = Ready(os.getpid(), engine.model_name, engine.n_ctx, getattr(engine, "load_ms", 0.0))
    return handler, ready


def serve(frames_in: IO[bytes], frames_out: IO[bytes], init: Init, tracer: Tracer) -> int:
    """Load the model, say ready, then answer jobs until told to stop."""
    try:
        handler, ready = start_handler(init, tracer)
    except Exception as exc:
        write_frame(frames_out, to_wire(Fatal(f"{type(exc).__name__}: {exc}")))
        return 1
    write_frame(frames_out, to_wire(ready))
    while True:
        frame = read_frame(frames_in)
        if frame is None:
            return 0
        message = expect(frame, Job, Shutdown)
        if isinstance(message, Shutdown):
            return 0
        write_frame(frames_out, to_wire(handler.handle(message)))


def main() -> int:
    # The supervisor owns signal handling for the run: Ctrl-C in a terminal must not
    # kill workers behind its back. SIGTERM (from the supervisor) exits after a flush.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    frames_in, frames_out = _protocol_streams()
    frame = read_frame(frames_in)
    try:
        init = expect(frame or {}, Init)
    except MessageError as exc:
        sys.stderr.write(f"needle-pipeline worker: {exc}\n")
        return 2
    settings = TelemetrySettings.from_dict(init.telemetry)
    provider = create_tracer_provider(
        settings,
        {
            "needle.worker.index": init.worker_index,
            "process.pid": os.getpid(),
            "needle.process.role": "worker",
        },
        root=False,  # follow the sampling decision in each job's traceparent
    )
    try:
        return serve(frames_in, frames_out, init, provider.get_tracer(INSTRUMENTATION_NAME))
    finally:
        # A SIGTERM now must not cut the flush short: the supervisor's SIGKILL comes
        # after its grace period, and the flush is bounded well within it.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutdown_within(WORKER_SHUTDOWN_S, provider)
