"""What one run is asked to do (:class:`RunConfig`) and what it did (:class:`RunSummary`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.models import ModelRef
from workers.engine import N_BATCH, REPAIRS, DecodingSettings
from workers.messages import Init
from workers.telemetry.settings import TelemetrySettings


def field_defaults(cls: type) -> dict[str, Any]:
    """A dataclass's fields that have a plain default, by name."""
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


class FatalRunError(Exception):
    """The run cannot go on (the output cannot be written, workers cannot start)."""


@dataclass(frozen=True)
class RunConfig:
    input_path: str
    output_path: str
    model: ModelRef
    workers: int
    threads_per_worker: int
    executor: str = "local"  # local (worker processes) | ray (actors on a Ray cluster)
    prompt_format: str = "needle"
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    n_ctx: int = 0
    n_batch: int = N_BATCH
    timeout_s: float = 60.0
    max_attempts: int = 2
    ordered: bool = False
    overwrite: bool = False
    retry_errors: bool = False  # redo the requests an earlier run's output has errors for
    window: int = 0  # 0: chosen from the number of workers
    grace_s: float = 5.0
    start_timeout_s: float = 300.0
    max_line_bytes: int = 8 << 20
    default_tools: list[Any] | None = None
    dispatch: str | None = None  # MODULE:FUNCTION that runs each valid call
    engine: str | None = None  # MODULE:FUNCTION that builds the engine (default llama.cpp)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    verbose: bool = False
    progress: bool = False
    input_format: str = "auto"  # auto (from the first line) | native | openai
    output_format: str = "auto"  # auto (as the input) | native | openai
    review_below: float | None = None  # ok lines less sure than this are marked for review
    review_file: str | None = None  # and copied here after the run
    query_column: str = "query"  # CSV/Parquet input: the column of the query
    id_column: str | None = None  # and of the id (default: the row number)
    keep_columns: tuple[str, ...] = ()  # input fields copied to each output line
    parquet_output: str | None = None  # -o *.parquet: output_path is its working JSONL
    answer_cache: bool = True  # a repeated request gets its earlier answer (pipeline.answercache)

    @property
    def window_size(self) -> int:
        return self.window or max(4, self.workers * 4)

    def fingerprint(self) -> dict[str, Any]:
        """What decides the answers: a resume must use the same. (Reads the model file
        for its sha256 the first time: call it off the event loop.)"""
        fingerprint: dict[str, Any] = {
            "model_sha256": self.model.digest(),
            "prompt_format": self.prompt_format,
            "max_tokens": self.decoding.max_tokens,
            "temperature": self.decoding.temperature,
            "seed": self.decoding.seed,
            "max_calls": self.decoding.max_calls,
            "max_string_length": self.decoding.max_string_length,
            "n_ctx": self.n_ctx,
            # --tools: the tools of every line that brings none of its own.
            "default_tools_sha256": (
                None
                if self.default_tools is None
                else hashlib.sha256(json.dumps(self.default_tools).encode()).hexdigest()
            ),
        }
        if self.dispatch:  # (absent otherwise: outputs of earlier versions still resume)
            fingerprint["dispatch"] = self.dispatch
        if self.decoding.none_threshold is not None:  # (likewise)
            fingerprint["none_threshold"] = self.decoding.none_threshold
        for setting in REPAIRS:  # (likewise: only a repair turned off)
            if not getattr(self.decoding, setting):
                fingerprint[setting] = False
        return fingerprint

    def init_message(self, index: int) -> Init:
        """What worker ``index`` is started with."""
        return Init(
            worker_index=index,
            model_path=str(self.model.path),
            prompt_format=self.prompt_format,
            n_threads=self.threads_per_worker,
            decoding=self.decoding,
            telemetry=self.telemetry.to_dict(),
            n_ctx=self.n_ctx,
            n_batch=self.n_batch,
            verbose=self.verbose,
            dispatch=self.dispatch,
            engine=self.engine,
        )


@dataclass
class RunSummary:
    total: int = 0
    ok: int = 0
    errors: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    earlier_errors: int = 0  # error lines an earlier run of a resumed output wrote
    retried: int = 0  # error lines of an earlier run taken out to be redone (--retry-errors)
    remaining: int | None = None  # a stopped run: input requests with no output line yet
    cancelled: int = 0
    review: int = 0  # lines marked for review (--review-below)
    cached: int = 0  # lines given an earlier line's answer to the same request
    wall_s: float = 0.0
    first_result_s: float | None = None
    model_name: str = ""
    worker_load_ms: list[float] = field(default_factory=list)
    worker_restarts: int = 0
    signal: int | None = None
    model_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reused_prefix_tokens: int = 0

    @property
    def requests_per_s(self) -> float:
        return (self.ok + self.errors) / self.wall_s if self.wall_s > 0 else 0.0


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def threads_per_worker(workers: int) -> int:
    """Split the cores this process may use between workers, so none is oversubscribed."""
    return max(1, math.floor(len(os.sched_getaffinity(0)) / workers))
