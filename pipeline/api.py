"""``from pipeline import run``: one batch job from Python (Airflow tasks, cron scripts).

``run(input, output, **options)`` takes the command line's options as keywords
(``workers=2``, ``ordered=True``, ``output_format="openai"``, ``traces="otlp"``, ...: the
long option names with ``_`` for ``-``), checks them exactly as the CLI does, drives the
same supervisor and returns its :class:`Summary`. Running it again resumes, as the CLI.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace
from os import PathLike
from typing import Any, NoReturn

import anyio

from pipeline.cli import config_from_args
from pipeline.config import RunSummary
from pipeline.executor import make_pool
from pipeline.options import build_parser
from pipeline.sink import ResumeRefused
from pipeline.supervisor import Supervisor

Summary = RunSummary


class UnknownOption(TypeError, ValueError):
    """A keyword ``run()`` does not take: a ``TypeError``, as Python's own, and a
    ``ValueError``, as every other option ``run()`` refuses."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def options_to_argv(
    input_path: str | PathLike[str], output: str | PathLike[str] | None, options: Mapping[str, Any]
) -> list[str]:
    """The command line these arguments stand for (``True`` a flag, ``False``/``None`` left
    out)."""
    argv = [str(input_path)]
    if output is not None:
        argv += ["--output", str(output)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        argv += [flag] if value is True else [flag, str(value)]
    return argv


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
    parser = build_parser()
    parser.__class__ = _Parser  # usage errors raise instead of exiting
    known = {action.dest for action in parser._actions}
    unknown = sorted(name for name in options if name not in known)
    if unknown:
        raise UnknownOption(f"run() got unknown options: {', '.join(unknown)}")
    args = parser.parse_args(options_to_argv(input, output, options))
    config = config_from_args(args)
    if progress != config.progress:
        config = replace(config, progress=progress)
    supervisor = Supervisor(config, make_pool(config))
    try:
        return anyio.run(supervisor.run)
    except ResumeRefused as exc:  # it names the command line's flag: name the keyword
        raise ResumeRefused(str(exc).replace("--overwrite", "overwrite=True")) from None
