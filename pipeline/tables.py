"""CSV and Parquet input: each row becomes one request, streamed in batches.

A row's request is ``{"id", "query"}``: the query from ``--query-column``, the id from
``--id-column`` (default: the row number, 1-based, which is also the row's ``line`` in the
output), the tools from ``--tools`` (one list for every row). The columns named by
``--keep-columns`` travel with the row to its output line (``"columns"``). A cell that is
not a usable query becomes that row's error line like any bad JSONL line; a missing column
or a file that cannot be read stops the run before any request, with the column or the
file named.

CSV is read with the standard library; Parquet with pyarrow (``pip install
'needle-pipeline[parquet]'``), a record batch at a time, so memory stays flat whatever the
number of rows.
"""

from __future__ import annotations

import csv
import datetime
import decimal
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson

from pipeline.source import RawLine

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
ROWS_PER_BATCH = 1024


class TableError(ValueError):
    """The table cannot be read as asked (a missing column, not a CSV or Parquet file)."""


def table_format(path: str) -> str | None:
    """``csv`` or ``parquet`` for a path with one of their suffixes, else None (JSONL)."""
    return TABLE_SUFFIXES.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class TableColumns:
    query: str = "query"
    id: str | None = None
    keep: tuple[str, ...] = ()

    def needed(self) -> list[str]:
        names = [self.query, *([self.id] if self.id else []), *self.keep]
        return list(dict.fromkeys(names))


def _json_value(value: Any) -> Any:
    """A cell as JSON can hold it (Parquet dates, decimals and bytes included)."""
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def count_requests(path: str) -> int | None:
    """How many requests the input holds: non-blank JSONL lines, CSV rows, Parquet rows
    (from its footer); None for a pipe."""
    kind = table_format(path)
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except (ImportError, OSError, ValueError) as exc:
            raise TableError(f"cannot read {path}: {exc}") from None
    if kind == "csv":
        with open(path, newline="", encoding="utf-8-sig") as stream:
            return max(0, sum(1 for _ in csv.reader(stream)) - 1)
    with open(path, "rb") as stream:
        return sum(1 for line in stream if line.strip())


def check_table(path: str, columns: TableColumns) -> None:
    """Open the table and check its columns now (:class:`TableError`), before a run."""
    kind = table_format(path)
    if kind is None:
        return
    source = TableSource(path, kind, columns)
    try:
        source.open()
    finally:
        source.close()


class TableSource:
    """Rows of a CSV or Parquet file as :class:`RawLine` batches (row n is line n)."""

    def __init__(self, path: str, kind: str, columns: TableColumns) -> None:
        self.path = path
        self.kind = kind
        self.columns = columns
        self._rows: Iterator[dict[str, Any]] | None = None
        self.rows: int | None = None  # how many the file says it has (Parquet), once open
        self._number = 0
        self._closers: list[Any] = []

    def open(self) -> None:
        """Open the file and check its columns: :class:`TableError` when it cannot."""
        rows = self._csv_rows() if self.kind == "csv" else self._parquet_rows()
        self._rows = rows

    def close(self) -> None:
        for closer in self._closers:
            closer()
        self._closers = []

    def _check(self, present: Sequence[str]) -> None:
        missing = [name for name in self.columns.needed() if name not in present]
        if missing:
            raise TableError(
                f"{self.path}: no column {', '.join(repr(m) for m in missing)} "
                f"(the columns are {', '.join(map(repr, present))})"
            )

    def _csv_rows(self) -> Iterator[dict[str, Any]]:
        try:
            stream = open(self.path, newline="", encoding="utf-8-sig")  # noqa: SIM115
        except OSError as exc:
            raise TableError(f"cannot read {self.path}: {exc.strerror}") from None
        self._closers.append(stream.close)
        reader = csv.DictReader(stream)
        try:
            header = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TableError(f"{self.path} is not a CSV file: {exc}") from None
        self._check(header)
        return iter(reader)

    def _parquet_rows(self) -> Iterator[dict[str, Any]]:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise TableError(
                "Parquet input needs pyarrow: pip install 'needle-pipeline[parquet]'"
            ) from None
        try:
            # pre_buffer (whole row groups read ahead) helps remote file systems; for a
            # local file it only holds a row group more in memory.
            parquet = pq.ParquetFile(self.path, pre_buffer=False)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise TableError(f"cannot read {self.path} as Parquet: {exc}") from None
        self._closers.append(parquet.close)
        self._check(parquet.schema_arrow.names)
        self.rows = parquet.metadata.num_rows
        needed = self.columns.needed()

        def rows() -> Iterator[dict[str, Any]]:
            for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=needed):
                yield from batch.to_pylist()

        return rows()

    def _line(self, row: dict[str, Any]) -> RawLine:
        """One row as the JSONL line of its request (``query`` as found, so that a bad
        cell is reported by the same checks as a bad JSONL line)."""
        self._number += 1
        names = self.columns
        document: dict[str, Any] = {"query": _json_value(row.get(names.query))}
        if names.id:
            document["id"] = _json_value(row.get(names.id))
        else:
            document["id"] = self._number
        kept = {name: _json_value(row.get(name)) for name in names.keep}
        return RawLine(self._number, orjson.dumps(document), columns=kept or None)

    def _read_batch(self) -> list[RawLine] | None:
        assert self._rows is not None
        batch: list[RawLine] = []
        while len(batch) < ROWS_PER_BATCH:
            try:
                row = next(self._rows, None)
            except csv.Error as exc:  # this row is malformed; the next ones may be fine
                self._number += 1
                batch.append(RawLine(self._number, b"", problem=f"row {self._number}: {exc}"))
                continue
            if row is None:
                break
            batch.append(self._line(row))
        return batch or None

    async def batches(self) -> AsyncIterator[list[RawLine]]:
        if self._rows is None:
            await anyio.to_thread.run_sync(self.open)
        while True:
            batch = await anyio.to_thread.run_sync(self._read_batch, abandon_on_cancel=True)
            if batch is None:
                return
            yield batch
