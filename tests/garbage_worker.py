"""A worker program for tests: it speaks the protocol, and breaks it on purpose.

A job whose query names a fault gets a broken answer the first time (a marker file in
``$GARBAGE_WORKER_DIR`` remembers it across the replacement workers) and a good one
after that; ``always-garbage`` is broken every time. A good answer calls a tool named
after the query.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from workers.messages import Init, Job, Ready, Result, Shutdown, expect, to_wire
from workers.protocol import HEADER, read_frame, write_frame

DIR_ENV = "GARBAGE_WORKER_DIR"


def broken_frame(kind: str, job: Job) -> bytes | None:
    good = to_wire(Result(job.seq, os.getpid(), "ok", [], None))
    bodies = {
        "not-json": b"\xff this is not json",
        "not-an-object": b"[1, 2, 3]",
        "missing-fields": b'{"type": "result", "seq": %d}' % job.seq,
        "bad-status": b'{"type": "result", "seq": %d, "worker_pid": 1, "status": "maybe", '
        b'"calls": [], "error": null, "usage": {"prompt_tokens": 0, "completion_tokens": 0}, '
        b'"reused_prefix_tokens": 0, "model_ms": 0, "worker_ms": 0, "operation": "x"}' % job.seq,
        "wrong-type": b'{"type": "ready", "pid": 1, "model": "m", "n_ctx": 0, "load_ms": 0}',
        "wrong-seq": None,
    }
    if kind not in bodies and kind != "always-garbage":
        return None
    if kind == "wrong-seq":
        import orjson

        body = orjson.dumps({**good, "seq": job.seq + 1000})
    else:
        body = bodies.get(kind, b"garbage")
    return HEADER.pack(len(body)) + body


def main() -> int:
    frames_in = sys.stdin.buffer
    frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    init = expect(read_frame(frames_in) or {}, Init)
    write_frame(frames_out, to_wire(Ready(os.getpid(), "garbage-worker", 0, 0.0)))
    seen = Path(os.environ[DIR_ENV])
    while (frame := read_frame(frames_in)) is not None:
        job = expect(frame, Job, Shutdown)
        if isinstance(job, Shutdown):
            return 0
        marker = seen / f"{job.id}"
        broken = broken_frame(job.query, job)
        if broken is not None and (job.query == "always-garbage" or not marker.exists()):
            marker.touch()
            frames_out.write(broken)
            continue
        calls = [{"name": job.query, "arguments": {"worker": init.worker_index}}]
        write_frame(frames_out, to_wire(Result(job.seq, os.getpid(), "ok", calls, None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
