"""The command line's options: the parser of ``python -m pipeline`` and its value types.

:mod:`pipeline.cli` turns what it parses into a :class:`pipeline.config.RunConfig`;
:func:`pipeline.run` parses keywords through the same parser.
"""

from __future__ import annotations

import argparse

from pipeline.config import RunConfig, field_defaults
from pipeline.executor import EXECUTORS
from workers.dispatch import DispatchSpecError, check_spec
from workers.engine import DecodingSettings
from workers.prompts import PROMPT_FORMATS
from workers.telemetry.settings import METRIC_EXPORTERS, TRACE_EXPORTERS

# The repairs of a valid answer (workers.engine.REPAIRS, in that order): each DecodingSettings
# field and the option that turns it off; --no-repairs turns off all of them.
REPAIR_OPTIONS = {
    "reformat_strings": "--no-reformat",
    "fill_numbers": "--no-number-fill",
    "convert_units": "--no-unit-conversion",
    "fill_enums": "--no-enum-fill",
    "fill_flags": "--no-flag-fill",
    "fill_dates": "--no-date-fill",
    "fill_codes": "--no-code-fill",
}


def repair_settings(args: argparse.Namespace) -> dict[str, bool]:
    """The repairs' DecodingSettings fields as the parsed options ask."""
    return {field: args.repairs and getattr(args, field) for field in REPAIR_OPTIONS}


# The defaults live once, on the config dataclasses; the options show them.
CONFIG = field_defaults(RunConfig)
DECODING = field_defaults(DecodingSettings)

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
        "--no-answer-cache",
        dest="answer_cache",
        action="store_false",
        help="send every line to a worker, also one that repeats an earlier line's request "
        "(by default a repeat gets the earlier answer, which is the same; never with "
        "--dispatch)",
    )
    io.add_argument(
        "--input-format",
        choices=("auto", "native", "openai"),
        default=CONFIG["input_format"],
        help='native ({"id", "query", "tools"}) or openai (OpenAI Batch API request lines); '
        "auto decides from the first non-empty line (default: %(default)s)",
    )
    io.add_argument(
        "--output-format",
        choices=("auto", "native", "openai"),
        default=CONFIG["output_format"],
        help="native result lines or openai (OpenAI Batch API output lines, plus trace_id "
        "and line); auto writes what the input is (default: %(default)s)",
    )
    io.add_argument(
        "--max-line-bytes",
        type=positive_int,
        default=CONFIG["max_line_bytes"],
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
        default=CONFIG["prompt_format"],
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
        default=DECODING["max_tokens"],
        metavar="N",
        help="answer length limit in tokens (default: %(default)s)",
    )
    model.add_argument(
        "--temperature",
        type=non_negative_float,
        default=DECODING["temperature"],
        metavar="T",
        help="0 is greedy decoding; above 0 samples under the grammar, reproducibly "
        "for a given --seed (default: %(default)s)",
    )
    model.add_argument(
        "--seed",
        type=int,
        default=DECODING["seed"],
        metavar="N",
        help="sampling seed when temperature > 0 (default: %(default)s)",
    )
    model.add_argument(
        "--none-threshold",
        type=probability,
        default=DECODING["none_threshold"],
        metavar="P",
        help="answer no call when the model gives no call at least probability P, else the "
        "likeliest call (default: the model's own threshold, chosen on validation data; "
        "a model without one answers its likeliest first token)",
    )
    model.add_argument(
        "--max-calls",
        type=positive_int,
        default=DECODING["max_calls"],
        metavar="N",
        help="most tool calls in one answer (default: %(default)s)",
    )
    model.add_argument(
        "--max-string-length",
        type=non_negative_int,
        default=DECODING["max_string_length"],
        metavar="N",
        help="grammar bound on free-text argument strings, 0 for none (default: %(default)s)",
    )
    model.add_argument(
        "--no-repairs",
        dest="repairs",
        action="store_false",
        help="give the model's own answers: all six --no-... options below at once",
    )
    model.add_argument(
        "--no-reformat",
        dest="reformat_strings",
        action="store_false",
        help="leave strings as the model writes them (by default a string taken from the "
        "request is put in the form its parameter asks, where the request holds one such "
        'value: "(415) 555-0134" becomes "+14155550134" for an E.164 phone, "44:45" '
        '"00:44:45" for HH:MM:SS; the two numbers of a pair the tool declares second-first, '
        "base_b before base_a, are put in the request's order; such values are listed in "
        '"reformatted")',
    )
    model.add_argument(
        "--no-number-fill",
        dest="fill_numbers",
        action="store_false",
        help="leave out the integers the model leaves out (by default an optional integer "
        "argument the model left out, where the request gives a number right beside a word "
        'of its name, is filled in: "(cups 19)" gives "cups": 19; listed in "filled")',
    )
    model.add_argument(
        "--no-unit-conversion",
        dest="convert_units",
        action="store_false",
        help="leave numbers as the model gives them (by default a number copied in the "
        'request\'s unit where its parameter names another, "amount_cents": 30 for "$30k", '
        'becomes 3000000; such values are listed in "converted")',
    )
    model.add_argument(
        "--no-enum-fill",
        dest="fill_enums",
        action="store_false",
        help="leave out what the model leaves out (by default an optional enum argument "
        'the model left out, where the request names one of its values, is filled in: "my '
        'credit is excellent" gives "credit_band": "excellent"; listed in "filled")',
    )
    model.add_argument(
        "--no-flag-fill",
        dest="fill_flags",
        action="store_false",
        help="leave out the flags the model leaves out (by default an optional boolean "
        'argument the model left out, where the request names it, is set to true: "shuffle '
        'my Focus playlist" gives "shuffle": true; listed in "filled")',
    )
    model.add_argument(
        "--no-date-fill",
        dest="fill_dates",
        action="store_false",
        help="leave out the dates and times the model leaves out (by default where an answer "
        "leaves out its one date, time or date-and-time parameter and the request writes one, "
        'it is filled in: "I have to arrive by 9am" gives "arrive_by": "09:00"; listed in '
        '"filled")',
    )
    model.add_argument(
        "--no-code-fill",
        dest="fill_codes",
        action="store_false",
        help="leave out the ISO codes the model leaves out (by default an optional argument "
        "that asks a language, country or currency code, left out where the request names "
        'one, is filled in: "we spent 230 euros" gives "currency": "EUR"; listed in "filled")',
    )
    model.add_argument(
        "--n-ctx",
        type=non_negative_int,
        default=CONFIG["n_ctx"],
        metavar="N",
        help="context size, 0 for the model's own (default: %(default)s)",
    )
    pool = parser.add_argument_group("workers")
    pool.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=CONFIG["executor"],
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
        default=CONFIG["timeout_s"],
        metavar="SECONDS",
        help="per-request limit; the worker is replaced (default: %(default)s)",
    )
    pool.add_argument(
        "--max-attempts",
        type=positive_int,
        default=CONFIG["max_attempts"],
        metavar="N",
        help="attempts for a request whose worker crashes, then worker_crashed "
        "(default: %(default)s)",
    )
    pool.add_argument(
        "--grace",
        type=float,
        default=CONFIG["grace_s"],
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, time for requests in flight (default: %(default)s)",
    )
    pool.add_argument(
        "--window",
        type=non_negative_int,
        default=CONFIG["window"],
        metavar="N",
        help="requests in flight at most, 0 for 4 per worker (default: %(default)s)",
    )
    tables = parser.add_argument_group("CSV and Parquet input (a file named *.csv, *.parquet)")
    tables.add_argument(
        "--query-column",
        default=CONFIG["query_column"],
        metavar="NAME",
        help="the query (default: %(default)s)",
    )
    tables.add_argument(
        "--id-column", metavar="NAME", help="the request id (default: the row number)"
    )
    tables.add_argument(
        "--keep-columns",
        type=column_list,
        default=CONFIG["keep_columns"],
        metavar="A,B",
        help='copy these input columns (or JSONL fields) to each output line, as "columns"',
    )
    labelling = parser.add_argument_group("labelling")
    labelling.add_argument(
        "--review-below",
        type=probability,
        metavar="P",
        help="mark ok lines whose confidence is under P, that hold a string the request "
        'does not ("ungrounded"), or that give a value to more arguments than the request '
        'says it ("repeated"), with "review": true',
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
