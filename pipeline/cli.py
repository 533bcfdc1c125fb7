"""``python -m pipeline``: JSONL requests in, one JSONL result line per request out."""

from __future__ import annotations

import argparse
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
from pipeline.executor import EXECUTORS, make_pool, size_pool
from pipeline.models import ModelError, resolve_model
from pipeline.parquet_output import working_path, write_parquet
from pipeline.review import write_review_file
from pipeline.sink import OutputError, ResumeRefused
from pipeline.supervisor import Supervisor
from pipeline.tables import TableColumns, TableError, check_table, count_requests, table_format
from workers.dispatch import DispatchSpecError, check_importable, check_spec, load_callable
from workers.engine import DecodingSettings
from workers.prompts import PROMPT_FORMATS
from workers.telemetry.settings import (
    METRIC_EXPORTERS,
    TRACE_EXPORTERS,
    TelemetryConfigError,
    resolve_settings,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Subcommands that live in the training package, above the pipeline.
SUBCOMMANDS = {"train": "training.cli:train_main", "eval": "training.cli:eval_main"}

DESCRIPTION = """\
Turn natural-language requests into structured tool calls with a small GGUF model.

Reads JSONL requests ({"id", "query", "tools"} per line), runs them on a pool of worker
processes (one llama.cpp model each, grammar-constrained decoding) and writes one JSONL
result line per request. Running the same command again resumes an interrupted run.

Other commands:
  python -m pipeline train DATA.jsonl --out MODEL.gguf   train or fine-tune a model
  python -m pipeline eval DATA.jsonl                     exact-match accuracy on labelled data
"""

EPILOG = """\
exit status: 0 all requests ok, 1 some requests failed (in this run or, when resuming,
in the earlier one) or the run could not go on,
2 usage or configuration error, 130/143 stopped by SIGINT/SIGTERM (run again to resume).

environment: OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG,
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
HF_HOME, HF_HUB_OFFLINE.
"""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def dispatch_spec(text: str) -> str:
    try:
        return check_spec(text)
    except DispatchSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def engine_spec(text: str) -> str:
    try:
        return check_spec(text, "--engine")
    except DispatchSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def column_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one column")
    return names


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="JSONL requests file, or - for standard input")
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="results file (default: outputs/<input stem>.results.jsonl; - for standard output)",
    )
    io.add_argument(
        "--tools",
        metavar="FILE.json",
        help="JSON list of tool schemas for lines that carry no 'tools'",
    )
    io.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh instead of resuming an existing output file",
    )
    io.add_argument(
        "--retry-errors",
        action="store_true",
        help="resume, and also run again the requests whose lines in the existing output "
        "are errors (those lines are replaced)",
    )
    io.add_argument(
        "--ordered",
        action="store_true",
        help="write results in input order (default: in completion order)",
    )
    io.add_argument(
        "--input-format",
        choices=("auto", "native", "openai"),
        default="auto",
        help='native ({"id", "query", "tools"}) or openai (OpenAI Batch API request lines); '
        "auto decides from the first non-empty line (default: %(default)s)",
    )
    io.add_argument(
        "--output-format",
        choices=("auto", "native", "openai"),
        default="auto",
        help="native result lines or openai (OpenAI Batch API output lines, plus trace_id "
        "and line); auto writes what the input is (default: %(default)s)",
    )
    io.add_argument(
        "--max-line-bytes",
        type=positive_int,
        default=8 << 20,
        metavar="N",
        help="longer input lines become line_too_long errors (default: %(default)s)",
    )
    model = parser.add_argument_group("model and decoding")
    model.add_argument(
        "-m",
        "--model",
        metavar="MODEL",
        help="needle-smol (the default: SmolLM2-135M with the shipped adapter, built once "
        "into the cache), needle-tiny (the 2.5M model trained from scratch; fast), smollm2 "
        "(the base, no adapter), a .gguf path, or hf:ORG/REPO/FILE.gguf[@REVISION]",
    )
    model.add_argument(
        "--prompt-format",
        choices=PROMPT_FORMATS,
        default="needle",
        help="needle: <tools>..</tools><query>..</query>; chat: the model's chat template "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--dispatch",
        metavar="MODULE:FUNCTION",
        type=dispatch_spec,
        help="run each valid call through FUNCTION(name, arguments) in the workers; what it "
        'returns goes to the output\'s "results" (a raising tool makes the request a '
        "tool_error), and each call gets an execute_tool span",
    )
    model.add_argument(
        "--engine",
        metavar="MODULE:FUNCTION",
        type=engine_spec,
        help="build each worker's model runtime with FUNCTION(model_path, n_ctx=, "
        "n_threads=, n_batch=, verbose=), an Engine as in workers.engine, for the same "
        "model (default: llama.cpp)",
    )
    model.add_argument(
        "--max-tokens",
        type=positive_int,
        default=256,
        metavar="N",
        help="answer length limit in tokens (default: %(default)s)",
    )
    model.add_argument(
        "--temperature",
        type=non_negative_float,
        default=0.0,
        metavar="T",
        help="0 is greedy decoding; above 0 samples under the grammar, reproducibly "
        "for a given --seed (default: %(default)s)",
    )
    model.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="sampling seed when temperature > 0 (default: %(default)s)",
    )
    model.add_argument(
        "--max-calls",
        type=positive_int,
        default=4,
        metavar="N",
        help="most tool calls in one answer (default: %(default)s)",
    )
    model.add_argument(
        "--max-string-length",
        type=non_negative_int,
        default=128,
        metavar="N",
        help="grammar bound on free-text argument strings, 0 for none (default: %(default)s)",
    )
    model.add_argument(
        "--n-ctx",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="context size, 0 for the model's own (default: %(default)s)",
    )
    pool = parser.add_argument_group("workers")
    pool.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: worker processes on this machine; ray: Ray actors across a cluster, "
        "one model each (the ray extra; see docs/scale-out.md) (default: %(default)s)",
    )
    pool.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --executor ray: the cluster to join (default: $RAY_ADDRESS, else a local "
        "Ray started for the run)",
    )
    pool.add_argument(
        "-w",
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes, one model each (default: one per core)",
    )
    pool.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="llama.cpp threads per worker (default: cores / workers)",
    )
    pool.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="per-request limit; the worker is replaced (default: %(default)s)",
    )
    pool.add_argument(
        "--max-attempts",
        type=positive_int,
        default=2,
        metavar="N",
        help="attempts for a request whose worker crashes, then worker_crashed "
        "(default: %(default)s)",
    )
    pool.add_argument(
        "--grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, time for requests in flight (default: %(default)s)",
    )
    pool.add_argument(
        "--window",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="requests in flight at most, 0 for 4 per worker (default: %(default)s)",
    )
    tables = parser.add_argument_group("CSV and Parquet input (a file named *.csv, *.parquet)")
    tables.add_argument(
        "--query-column", default="query", metavar="NAME", help="the query (default: %(default)s)"
    )
    tables.add_argument(
        "--id-column", metavar="NAME", help="the request id (default: the row number)"
    )
    tables.add_argument(
        "--keep-columns",
        type=column_list,
        default=(),
        metavar="A,B",
        help='copy these input columns (or JSONL fields) to each output line, as "columns"',
    )
    labelling = parser.add_argument_group("labelling")
    labelling.add_argument(
        "--review-below",
        type=probability,
        metavar="P",
        help="mark ok lines whose confidence is under P, or that hold a string the request "
        'does not ("ungrounded"), with "review": true',
    )
    labelling.add_argument(
        "--review-file",
        metavar="PATH",
        help="with --review-below: also copy the lines marked for review here after the run",
    )
    telemetry = parser.add_argument_group("telemetry")
    telemetry.add_argument(
        "--traces",
        choices=TRACE_EXPORTERS,
        help="span exporter (default: $OTEL_TRACES_EXPORTER, else none)",
    )
    telemetry.add_argument(
        "--traces-file",
        metavar="PATH",
        help="with --traces file: OTLP/JSON lines are appended here",
    )
    telemetry.add_argument(
        "--capture-content",
        action="store_true",
        help="record query text, raw model output and argument values on spans "
        "(default: off, or $OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)",
    )
    telemetry.add_argument(
        "--metrics",
        choices=METRIC_EXPORTERS,
        help="metric exporter: token usage, model time, requests by status, queue depth, "
        "per-worker throughput (default: $OTEL_METRICS_EXPORTER, else none)",
    )
    telemetry.add_argument(
        "--project",
        metavar="NAME",
        help="Arize Phoenix project the traces are filed under (resource attribute "
        "openinference.project.name; default: $OTEL_SERVICE_NAME, else Phoenix's default)",
    )
    telemetry.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="with --metrics file: OTLP/JSON lines are appended here",
    )
    output = parser.add_argument_group("terminal")
    output.add_argument(
        "-v", "--verbose", action="store_true", help="show llama.cpp and worker logs"
    )
    output.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    return parser


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
    workers, threads = size_pool(
        args.executor,
        args.workers,
        args.threads,
        ray_address=args.ray_address,
        log_to_driver=args.verbose or telemetry.traces == "console",
    )
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
        decoding=DecodingSettings(
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed,
            max_calls=args.max_calls,
            max_string_length=args.max_string_length,
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
    if argv and argv[0] in SUBCOMMANDS:  # loaded by name: the pipeline never imports them
        return int(load_callable(SUBCOMMANDS[argv[0]], argv[0])(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, ModelError, TelemetryConfigError) as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
    supervisor = Supervisor(config, make_pool(args.executor, config))
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
