"""Test-only fault injection: an engine that the worker loads by name (``--engine``).

It is llama.cpp's engine, except that a prompt holding the marker in
``NEEDLE_PIPELINE_TEST_CRASH_MARKER`` crashes the worker (a real segmentation fault)
and one holding the marker in ``NEEDLE_PIPELINE_TEST_HANG_MARKER`` hangs it; a hanging
worker first leaves a file in ``NEEDLE_PIPELINE_TEST_HANG_DIR`` (when set), so a test can
wait for the hang instead of sleeping.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import Any

from workers.engine import LlamaEngine

CRASH_MARKER_ENV = "NEEDLE_PIPELINE_TEST_CRASH_MARKER"
HANG_MARKER_ENV = "NEEDLE_PIPELINE_TEST_HANG_MARKER"
HANG_DIR_ENV = "NEEDLE_PIPELINE_TEST_HANG_DIR"
SPEC = "tests.fault_engine:FaultEngine"  # what --engine takes


class FaultEngine(LlamaEngine):
    def __init__(self, model_path: Any, **options: Any) -> None:
        super().__init__(model_path, **options)
        self.crash_marker = os.environ.get(CRASH_MARKER_ENV) or None
        self.hang_marker = os.environ.get(HANG_MARKER_ENV) or None

    def tokenize(self, text: str) -> list[int]:
        if self.crash_marker and self.crash_marker in text:
            ctypes.string_at(0)
        if self.hang_marker and self.hang_marker in text:
            hang_dir = os.environ.get(HANG_DIR_ENV)
            if hang_dir:
                (Path(hang_dir) / f"{os.getpid()}-{time.monotonic_ns()}").touch()
            time.sleep(3600)
        return super().tokenize(text)


def hung_workers(hang_dir: Path) -> int:
    """How many times a worker has started to hang (files in ``hang_dir``)."""
    return len(list(hang_dir.iterdir())) if hang_dir.is_dir() else 0
