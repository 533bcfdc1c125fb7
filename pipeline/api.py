"""``from pipeline import run``: one batch job from Python (Airflow tasks, cron scripts).

``run(input, output, **options)`` takes the command line's options as keywords
(``workers=2``, ``ordered=True``, ``output_format="openai"``, ``traces="otlp"``, ...: the
long option names with ``_`` for ``-``) as typed values, checks them against the same
option definitions as the CLI (no command line is built), makes the configuration with
the CLI's own function, drives the same supervisor and returns its :class:`Summary`.
Running it again resumes, as the CLI.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace
from os import PathLike, fspath
from typing import Any

import anyio

from pipeline.cli import config_from_args
from pipeline.config import RunSummary
from pipeline.executor import make_pool
from pipeline.options import (
    build_parser,
    column_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from pipeline.sink import ResumeRefused
from pipeline.supervisor import Supervisor

Summary = RunSummary


class UnknownOption(TypeError, ValueError):
    """A keyword ``run()`` does not take: a ``TypeError``, as Python's own, and a
    ``ValueError``, as every other option ``run()`` refuses."""


_INTEGER_TYPES = (positive_int, non_negative_int, int)
_NUMBER_TYPES = (positive_float, non_negative_float, probability, float)


def options_namespace(
    input_path: str | PathLike[str], output: str | PathLike[str] | None, options: Mapping[str, Any]
) -> argparse.Namespace:
    """The options as the command line's parser would give them, built from the keywords
    directly (no argument strings): each value is checked against its option's type and
    choices; ``None`` leaves an option at its default."""
    actions = {a.dest: a for a in build_parser()._actions if a.dest != "help"}
    unknown = sorted(name for name in options if name not in actions)
    if unknown:
        raise UnknownOption(f"run() got unknown options: {', '.join(unknown)}")
    values = {dest: action.default for dest, action in actions.items()}
    values["input"] = fspath(input_path)
    values["output"] = None if output is None else fspath(output)
    for name, value in options.items():
        if value is not None:
            values[name] = _checked(name, actions[name], value)
    return argparse.Namespace(**values)


def _checked(name: str, action: argparse.Action, value: Any) -> Any:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value
    kind = action.type
    if kind in _INTEGER_TYPES and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if kind in _NUMBER_TYPES and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if kind is column_list and isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    if kind is None and not isinstance(value, (str, PathLike)):
        raise ValueError(f"{name} must be a string, got {value!r}")
    try:
        checked = kind(value) if callable(kind) else fspath(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    if action.choices is not None and checked not in action.choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, action.choices))}")
    return checked


def run(
    input: str | PathLike[str],
    output: str | PathLike[str] | None = None,
    **options: Any,
) -> Summary:
    """Run one batch job and return what it did.

    Raises ``ValueError`` for options the CLI would refuse (exit 2),
    :class:`pipeline.sink.ResumeRefused` when the output was made with other settings, and
    :class:`pipeline.sink.OutputError` / :class:`pipeline.config.FatalRunError` when the
    run cannot go on. No progress display unless ``progress=True``. Call it from the main
    thread (SIGINT/SIGTERM drain the run as on the command line).
    """
    progress = bool(options.pop("progress", False))
    args = options_namespace(input, output, options)
    config = config_from_args(args)
    if progress != config.progress:
        config = replace(config, progress=progress)
    supervisor = Supervisor(config, make_pool(config))
    try:
        return anyio.run(supervisor.run)
    except ResumeRefused as exc:  # it names the command line's flag: name the keyword
        raise ResumeRefused(str(exc).replace("--overwrite", "overwrite=True")) from None
