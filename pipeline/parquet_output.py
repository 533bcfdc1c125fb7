"""Parquet output: ``-o results.parquet`` writes the run's JSONL beside it, then converts.

The run itself writes ``results.parquet.jsonl`` (the same result lines as any run, so a
stopped run resumes from it exactly as from a JSONL output); once every request has its
line, that file is converted a batch of lines at a time into ``results.parquet`` with one
column per field. Nested values (``calls``, ``ungrounded``, ``repeated``, ``reformatted``,
``converted``, ``filled``, ``columns``, ``error``) are JSON strings, so any kept column type fits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from pipeline.results import decode_line

LINES_PER_BATCH = 10_000


def working_path(parquet_path: str) -> str:
    """Where the run writes its JSONL lines for ``parquet_path``."""
    return parquet_path + ".jsonl"


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("line", pa.int64()),
            ("status", pa.string()),
            ("calls", pa.string()),
            ("confidence", pa.float64()),
            ("call_confidence", pa.list_(pa.float64())),
            ("ungrounded", pa.string()),
            ("repeated", pa.string()),
            ("reformatted", pa.string()),
            ("converted", pa.string()),
            ("filled", pa.string()),
            ("review", pa.bool_()),
            ("error_type", pa.string()),
            ("error_message", pa.string()),
            ("trace_id", pa.string()),
            ("model", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("latency_ms", pa.float64()),
            ("columns", pa.string()),
        ]
    )


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _row(raw: bytes) -> dict[str, Any]:
    line = decode_line(raw)
    return {
        "id": str(line.id),
        "line": line.line,
        "status": line.status,
        "calls": _json(line.calls),
        "confidence": line.confidence,
        "call_confidence": line.call_confidence,
        "ungrounded": _json(line.ungrounded),
        "repeated": _json(line.repeated),
        "reformatted": _json(line.reformatted),
        "converted": _json(line.converted),
        "filled": _json(line.filled),
        "review": line.review,
        "error_type": line.error.type if line.error else None,
        "error_message": line.error.message if line.error else None,
        "trace_id": line.trace_id,
        "model": line.model,
        "prompt_tokens": line.usage.prompt_tokens,
        "completion_tokens": line.usage.completion_tokens,
        "latency_ms": line.latency_ms,
        "columns": _json(line.columns),
    }


def write_parquet(jsonl_path: str | Path, parquet_path: str | Path) -> int:
    """Convert a results JSONL file to Parquet (written aside, then renamed); returns the
    number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    target = Path(parquet_path)
    aside = target.with_name(f".{target.name}.partial")
    rows = 0
    with open(jsonl_path, "rb") as source, pq.ParquetWriter(aside, schema) as writer:
        batch: list[dict[str, Any]] = []
        for raw in source:
            if raw.strip():
                batch.append(_row(raw))
            if len(batch) >= LINES_PER_BATCH:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                rows, batch = rows + len(batch), []
        if batch:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            rows += len(batch)
    os.replace(aside, target)
    return rows
