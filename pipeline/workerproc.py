"""The supervisor's handle on one worker process (``python -m workers``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from workers.messages import Fatal, Init, Job, Ready, Result, Shutdown, expect
from workers.protocol import ProtocolError, encode_frame, receive_frame
from workers.telemetry.settings import CONSOLE_TELEMETRY_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STDERR_TAIL_LINES = 20


class WorkerDied(Exception):
    """The worker process ended (or broke the protocol) while we waited on it."""


class WorkerStartError(Exception):
    """The worker could not start (load the model, import the --dispatch function)."""


def worker_environment(n_threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # Idle OpenMP threads must not spin on a core another worker needs.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["OMP_NUM_THREADS"] = str(n_threads)
    python_path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = (
        f"{PROJECT_ROOT}{os.pathsep}{python_path}" if python_path else str(PROJECT_ROOT)
    )
    return env


class WorkerProcess:
    def __init__(
        self, index: int, process: Process, verbose: bool, live: set[WorkerProcess]
    ) -> None:
        self.index = index
        self.process = process
        self.verbose = verbose
        self.ready = Ready(pid=process.pid, model="", n_ctx=0, load_ms=0.0)
        self._live = live  # the pool's set of processes not yet reaped
        live.add(self)
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        assert process.stdout is not None
        self._frames = BufferedByteReceiveStream(process.stdout)

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(
        cls,
        index: int,
        init: Init,
        task_group: TaskGroup,
        *,
        verbose: bool,
        start_timeout_s: float,
        live: set[WorkerProcess],
        command: Sequence[str] | None = None,
    ) -> WorkerProcess:
        """Spawn a fresh interpreter, send it ``init``, and wait until the model is loaded."""
        try:
            process = await anyio.open_process(
                list(command or [sys.executable, "-m", "workers"]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=worker_environment(init.n_threads),
                start_new_session=True,  # terminal signals go to the supervisor only
            )
        except OSError as exc:  # out of processes, memory or file descriptors
            raise WorkerStartError(f"worker {index} could not be started: {exc}") from None
        worker = cls(index, process, verbose, live)
        try:
            task_group.start_soon(worker._pump_stderr)
            try:
                with anyio.fail_after(start_timeout_s):
                    await worker.send(init)
                    ready = await worker._receive(Ready, Fatal)
            except TimeoutError:
                raise WorkerStartError(
                    f"worker {index} did not load the model within {start_timeout_s:.0f}s"
                ) from None
            except WorkerDied as exc:
                raise WorkerStartError(f"worker {index} failed to start: {exc}") from None
            if isinstance(ready, Fatal):
                raise WorkerStartError(f"worker {index} could not start: {ready.message}")
        except BaseException:  # a failed or cancelled start leaves no process behind
            with anyio.CancelScope(shield=True):
                await worker.kill()
            raise
        worker.ready = ready
        return worker

    async def send(self, message: Init | Job) -> None:
        """Queue one frame for the worker; it reads frames in order, one job at a time."""
        assert self.process.stdin is not None
        frame = encode_frame(message)  # TypeError: the message cannot be encoded
        try:
            await self.process.stdin.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise WorkerDied(await self._death_message(exc)) from None

    async def receive(self) -> Result:
        """The worker's next result: they come in the order the jobs were sent. A frame
        that is not a result (garbage, a wrong field) is a :class:`WorkerDied`."""
        result: Result = await self._receive(Result)
        return result

    async def _receive(self, *types: type) -> Any:
        try:
            return expect(await receive_frame(self._frames.receive_exactly), *types)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            ProtocolError,
            ValueError,
        ) as exc:
            raise WorkerDied(await self._death_message(exc)) from None

    async def death_message(self, broke: str) -> str:
        """What to say of a worker that broke the protocol (``broke`` says how)."""
        return await self._death_message(ProtocolError(broke))

    async def _death_message(self, cause: BaseException) -> str:
        if not isinstance(cause, (ProtocolError, ValueError)):  # it is ending: say how
            with anyio.move_on_after(2):
                await self.process.wait()
        code = self.process.returncode
        if code is None:
            what = f"broke the protocol ({type(cause).__name__}: {cause})"
        elif code < 0:
            what = f"was killed by {signal.Signals(-code).name}"
        else:
            what = f"exited with status {code}"
        tail = " | ".join(line for line in self.stderr_tail if line.strip())[-600:]
        return f"worker {self.index} (pid {self.pid}) {what}" + (
            f"; stderr: {tail}" if tail else ""
        )

    async def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        stream = BufferedByteReceiveStream(self.process.stderr)
        while True:
            try:
                line = await stream.receive_until(b"\n", 1 << 16)
            except anyio.DelimiterNotFound:
                line = await stream.receive(1 << 16)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                return
            text = line.decode("utf-8", errors="replace")
            if text.startswith(CONSOLE_TELEMETRY_PREFIX):  # --traces console, from a worker
                await _show(text[len(CONSOLE_TELEMETRY_PREFIX) :] + "\n")
                continue
            self.stderr_tail.append(text)
            if self.verbose:
                await _show(f"[worker {self.index}] {text}\n")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to finish (it flushes its spans), then make sure it is gone."""
        if self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                await self.process.stdin.send(encode_frame(Shutdown()))
                await self.process.stdin.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            with anyio.move_on_after(timeout_s):
                await self.process.wait()
        await self.kill()

    async def kill(self, grace_s: float = 2.0) -> None:
        """SIGTERM (the worker flushes telemetry and exits), then SIGKILL after ``grace_s``."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            with anyio.move_on_after(grace_s):
                await self.process.wait()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        self._live.discard(self)
        await self.process.aclose()

    def kill_now(self) -> None:
        """Synchronous SIGKILL, for an immediate exit."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


async def _show(text: str) -> None:
    """Write to our stderr off the event loop (a paused terminal must not stall the run)."""
    await anyio.to_thread.run_sync(sys.stderr.write, text)
