"""Files of rows for the client commands, read a batch at a time: CSV (every cell as
its text; the model's schema types it), Parquet (a row group's batches), NDJSON (lines,
kept as they are). A large file is never held whole in memory."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Literal, TypeVar, get_args

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from service.cli_common import CommandError

FileFormat = Literal["csv", "parquet", "ndjson"]
FILE_FORMATS: tuple[str, ...] = get_args(FileFormat)
SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
T = TypeVar("T")
# one row of a CSV (column -> text) or Parquet file (column -> typed value)
Row = Mapping[str, object]


def file_format(path: Path, given: str | None, allowed: tuple[str, ...] = FILE_FORMATS) -> str:
    """--format when given, else the format the file's suffix names."""
    fmt = given or SUFFIXES.get(path.suffix.lower())
    if fmt is None or fmt not in allowed:
        raise CommandError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            f"use --format ({' | '.join(allowed)})"
        )
    return fmt


def _unreadable(path: Path, exc: Exception) -> CommandError:
    return CommandError(f"{path}: unreadable: {exc}")


def count_rows(path: Path, fmt: str) -> int:
    """Rows (events) in the file, for the progress bar: a streaming pass for CSV and
    NDJSON (which also finds NDJSON lines that are not JSON), the footer for Parquet."""
    if fmt == "parquet":
        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(path, exc) from exc
    if fmt == "ndjson":
        return sum(1 for _ in ndjson_lines(path, validate=True))
    return sum(1 for _ in csv_rows(path))


def csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """Data rows by column name; csv parses quoted commas and newlines, and keeps cells
    as text so that a region "NA" or an id "007" is not turned into a missing value or 7."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, strict=True)
            if not reader.fieldnames:
                raise CommandError(f"{path}: no header row")
            for row in reader:
                if None in row:  # more cells than the header has names
                    raise CommandError(f"{path}:{reader.line_num}: more cells than columns")
                yield row
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not UTF-8 text (is it Parquet? use --format)") from exc
    except csv.Error as exc:
        raise _unreadable(path, exc) from exc


def parquet_rows(path: Path, batch_size: int) -> Iterator[Row]:
    try:
        source = pq.ParquetFile(path)
        for batch in source.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


def ndjson_lines(path: Path, validate: bool = False) -> Iterator[bytes]:
    """Non-blank lines; with validate, a line that is not a JSON object is an input
    error naming its line number (found before anything is sent)."""
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                text = line.strip()
                if not text:
                    continue
                if validate and not _is_json_object(text):
                    raise CommandError(f"{path}:{number}: not a JSON object")
                yield text
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def row_batches(path: Path, fmt: str, size: int) -> Iterator[list[Row]]:
    rows: Iterator[Row] = parquet_rows(path, size) if fmt == "parquet" else csv_rows(path)
    return batched(rows, size)


def line_batches(path: Path, size: int) -> Iterator[list[bytes]]:
    return batched(ndjson_lines(path), size)


def batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while batch := list(islice(items, size)):
        yield batch
