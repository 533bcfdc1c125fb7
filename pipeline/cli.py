"""``python -m pipeline``: requests in (JSONL, CSV, Parquet), one result line per request out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson

from pipeline.config import (
    FatalRunError,
    RunConfig,
    RunSummary,
)
from pipeline.executor import join_cluster, make_pool, size_pool
from pipeline.models import ModelError, resolve_model
from pipeline.options import build_parser, repair_settings
from pipeline.parquet_output import working_path, write_parquet
from pipeline.review import write_review_file
from pipeline.sink import OutputError, ResumeRefused
from pipeline.supervisor import Supervisor
from pipeline.tables import TableColumns, TableError, check_table, count_requests, table_format
from workers.dispatch import check_importable, load_callable
from workers.engine import DecodingSettings
from workers.telemetry.settings import (
    TelemetryConfigError,
    resolve_settings,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Subcommands that live in the training package, above the pipeline.
SUBCOMMANDS = {"train": "training.cli:train_main", "eval": "training.cli:eval_main"}


def default_output_path(input_path: str) -> str:
    if input_path == "-":
        return "-"
    return str(Path("outputs") / f"{Path(input_path).stem}.results.jsonl")


def load_tools_file(path: str) -> list[Any]:
    try:
        tools = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read --tools {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--tools {path} is not valid JSON: {exc}") from None
    if not isinstance(tools, list):
        raise ValueError(f"--tools {path} must hold a JSON list of tool schemas")
    return tools


def config_from_args(args: argparse.Namespace) -> RunConfig:
    if args.input != "-" and not Path(args.input).is_file():
        raise ValueError(f"input file not found: {args.input}")
    telemetry = resolve_settings(
        args.traces,
        args.traces_file,
        args.capture_content,
        metrics=args.metrics,
        metrics_file=args.metrics_file,
        project=args.project,
    )
    default_tools = load_tools_file(args.tools) if args.tools else None
    if args.input != "-":
        try:
            check_table(
                args.input, TableColumns(args.query_column, args.id_column, args.keep_columns)
            )
        except TableError as exc:
            raise ValueError(str(exc)) from None
    if args.review_file and args.review_below is None:
        raise ValueError("--review-file needs --review-below")
    if args.review_file and (args.output == "-" or (args.input == "-" and not args.output)):
        raise ValueError("--review-file needs an output file (not -)")
    if args.dispatch:
        check_importable(args.dispatch)
    if args.engine:
        check_importable(args.engine, "--engine")
    cluster_cpus = join_cluster(
        args.executor,
        args.ray_address,
        log_to_driver=args.verbose or telemetry.traces == "console",
    )
    workers, threads = size_pool(args.workers, args.threads, cluster_cpus)
    output_path = args.output or default_output_path(args.input)
    parquet_output = None
    if table_format(output_path) == "parquet":
        if args.output_format == "openai":
            raise ValueError("Parquet output holds native result lines, not --output-format openai")
        parquet_output, output_path = output_path, working_path(output_path)
    return RunConfig(
        input_path=args.input,
        output_path=output_path,
        parquet_output=parquet_output,
        model=resolve_model(args.model),
        workers=workers,
        threads_per_worker=threads,
        prompt_format=args.prompt_format,
        dispatch=args.dispatch,
        engine=args.engine,
        executor=args.executor,
        decoding=DecodingSettings(
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed,
            max_calls=args.max_calls,
            max_string_length=args.max_string_length,
            none_threshold=args.none_threshold,
            **repair_settings(args),
        ),
        n_ctx=args.n_ctx,
        timeout_s=args.timeout,
        max_attempts=args.max_attempts,
        ordered=args.ordered,
        overwrite=args.overwrite,
        retry_errors=args.retry_errors,
        window=args.window,
        grace_s=args.grace,
        max_line_bytes=args.max_line_bytes,
        default_tools=default_tools,
        telemetry=telemetry,
        verbose=args.verbose,
        progress=not args.quiet and sys.stderr.isatty(),
        input_format=args.input_format,
        output_format=args.output_format,
        review_below=args.review_below,
        review_file=args.review_file,
        query_column=args.query_column,
        id_column=args.id_column,
        keep_columns=args.keep_columns,
        answer_cache=args.answer_cache,
    )


def left_to_do(input_path: str, output_path: str) -> int | None:
    """Requests of the input with no line in the output (None: not countable, a pipe)."""
    if "-" in (input_path, output_path) or not Path(output_path).is_file():
        return None
    try:
        requests = count_requests(input_path)
        with open(output_path, "rb") as output:
            written = sum(1 for line in output if line.strip())
    except (OSError, TableError):
        return None
    return max(0, requests - written) if requests is not None else None


def format_summary(summary: RunSummary, config: RunConfig) -> str:
    parts = [f"{summary.total} requests: {summary.ok} ok, {summary.errors} errors"]
    if summary.error_types:
        parts[-1] += (
            " ("
            + ", ".join(f"{name} {count}" for name, count in summary.error_types.most_common())
            + ")"
        )
    if summary.skipped:
        parts.append(f"{summary.skipped} already done (resumed)")
    if summary.retried:
        parts.append(f"{summary.retried} errors of the earlier run retried")
    if summary.earlier_errors:
        parts.append(f"{summary.earlier_errors} errors from the earlier run")
    if summary.remaining is not None:
        parts.append(f"{summary.remaining} left for a resume")
    elif summary.cancelled:
        parts.append(f"at least {summary.cancelled} left for a resume")
    if summary.cached:
        parts.append(f"{summary.cached} repeats answered as before")
    if summary.worker_restarts:
        parts.append(f"{summary.worker_restarts} worker restarts")
    if config.review_below is not None:
        parts.append(f"{summary.review} for review (under {config.review_below:g})")
    parts.append(f"{summary.wall_s:.2f}s, {summary.requests_per_s:.1f} req/s")
    parts.append(f"model {summary.model_name or config.model.path.name}")
    if config.parquet_output:
        parts.append(f"output {config.parquet_output} (lines in {config.output_path})")
    else:
        parts.append(f"output {config.output_path}")
    return "needle-pipeline: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "pyarrow" not in sys.modules:
        # Parquet input is read with the system allocator: pyarrow's default (mimalloc)
        # keeps what it freed, about 50 MB more at a million rows (docs/performance.md).
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if argv and argv[0] in SUBCOMMANDS:  # loaded by name: the pipeline never imports them
        return int(load_callable(SUBCOMMANDS[argv[0]], argv[0])(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, ModelError, TelemetryConfigError) as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
    supervisor = Supervisor(config, make_pool(config))
    try:
        summary = anyio.run(supervisor.run)
    except ResumeRefused as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
    except (OutputError, FatalRunError) as exc:
        sys.stderr.write(f"\n{parser.prog}: error: {exc}\n")
        sys.stderr.write(format_summary(supervisor.summary, config) + "\n")
        return EXIT_FAILED
    if config.review_file:
        try:
            write_review_file(config.output_path, config.review_file)
        except OSError as exc:
            sys.stderr.write(f"{parser.prog}: error: --review-file {config.review_file}: {exc}\n")
            return EXIT_FAILED
    finished = summary.signal is None and summary.cancelled == 0
    if not finished:
        summary.remaining = left_to_do(config.input_path, config.output_path)
    if config.parquet_output and finished:
        try:
            write_parquet(config.output_path, config.parquet_output)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"{parser.prog}: error: writing {config.parquet_output}: {exc}\n")
            return EXIT_FAILED
    if config.progress:
        sys.stderr.write("\r\x1b[K")
    if not args.quiet:
        sys.stderr.write(format_summary(summary, config) + "\n")
    if summary.signal is not None:
        return 128 + summary.signal
    # The status describes the whole output, including what an earlier run wrote.
    return EXIT_OK if summary.errors + summary.earlier_errors == 0 else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
