"""Reading back the OTLP/JSON trace files that :class:`workers.telemetry.export.
OtlpJsonFileSpanExporter` writes (``--traces file``): one ``ExportTraceServiceRequest`` a
line, trace and span ids in hex."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class FileSpan:
    """One span as the file holds it (``name``, ``traceId``, ``startTimeUnixNano``, ...),
    with its resource's and its own attributes as plain values."""

    span: dict[str, Any]
    resource: dict[str, Any]
    attributes: dict[str, Any]


def _values(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values()), None) for a in attributes}


def read_spans(path: Path) -> Iterator[FileSpan]:
    """Every span of a trace file, in file order."""
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        for resource_spans in orjson.loads(line).get("resourceSpans", []):
            resource = _values(resource_spans.get("resource", {}).get("attributes", []))
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    yield FileSpan(span, resource, _values(span.get("attributes", [])))
