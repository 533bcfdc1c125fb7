"""Loading a model with llama-cpp-python, without llama.cpp's extra CPU weight buffers.

On CPUs with AMX (``amx_int8`` in ``/proc/cpuinfo``), llama.cpp 0.3.36 puts quantized
weights such as SmolLM2's Q4_1 into an AMX buffer whose batched matrix product segfaults
on any batch of two or more tokens. ``use_extra_bufts = False`` keeps the weights in plain
CPU buffers: the same numbers, no crash. F16 models never use those buffers.
``Llama()`` exposes no such option, so the default model parameters are adjusted while it
loads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("flags") and "amx_int8" in line for line in info)
    except OSError:
        return False


@contextlib.contextmanager
def _plain_cpu_buffers() -> Iterator[None]:
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _lock:
        lib.llama_model_default_params = without_extra_buffers
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def load_llama(model_path: str, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path=..., **kwargs)``, in plain CPU buffers on AMX CPUs."""
    from llama_cpp import Llama

    if not cpu_has_amx():
        return Llama(model_path=model_path, **kwargs)
    with _plain_cpu_buffers():
        return Llama(model_path=model_path, **kwargs)
