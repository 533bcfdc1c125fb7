"""Optional tool dispatch: each validated call goes through a user's Python function.

``--dispatch MODULE:FUNCTION`` names a callable ``FUNCTION(name, arguments)`` that runs the
tool and returns its result (anything JSON can hold).  Each worker imports it once, from
the same ``sys.path`` as the pipeline (the current directory first).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from typing import Any

import orjson

Dispatcher = Callable[[str, dict[str, Any]], Any]

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class DispatchSpecError(ValueError):
    """``--dispatch`` does not name an importable callable."""


class ResultNotJson(TypeError):
    """A tool returned something JSON cannot hold."""


def check_spec(spec: str, option: str = "--dispatch") -> str:
    if not SPEC.match(spec):
        raise DispatchSpecError(f"{option} wants MODULE:FUNCTION, got {spec!r}")
    return spec


def check_importable(spec: str, option: str = "--dispatch") -> None:
    """The module of ``spec`` can be found (without running it): a typo is a usage error
    before any worker starts."""
    module_name = check_spec(spec, option).partition(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise DispatchSpecError(f"{option} {spec}: {exc}") from None
    if found is None:
        raise DispatchSpecError(f"{option} {spec}: no module named {module_name!r}")


def load_dispatcher(spec: str) -> Dispatcher:
    return load_callable(spec, "--dispatch")


def load_callable(spec: str, option: str) -> Any:
    """The callable that ``MODULE:ATTRIBUTE[.ATTRIBUTE]`` names (for ``option``'s errors)."""
    module_name, _, attribute = check_spec(spec, option).partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise DispatchSpecError(
            f"{option} {spec}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            message = f"{option} {spec}: {module_name} has no {attribute}"
            raise DispatchSpecError(message) from None
    if not callable(target):
        raise DispatchSpecError(f"{option} {spec}: {attribute} is not callable")
    return target


def json_result(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists, and so on)."""
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError as exc:
        raise ResultNotJson(f"the tool's result is not JSON: {exc}") from None
