"""Whole data files as DataFrames for `driftmon audit`: CSV, Parquet or NDJSON, told
apart by the suffix. A file that cannot be read is a click usage error naming the
argument or flag it came from (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import orjson
import pandas as pd

FORMATS = "CSV (.csv, .csv.gz), Parquet (.parquet, .pq) or NDJSON (.ndjson, .jsonl)"


def _csv(path: Path) -> pd.DataFrame:
    # round_trip: floats read back exactly as written, so exact duplicates stay exact
    return pd.read_csv(path, low_memory=False, float_precision="round_trip")


def _ndjson(path: Path) -> pd.DataFrame:
    """One JSON object per line; nested objects flattened to dotted columns
    (features.age), as prediction logs nest their features."""
    records: list[dict[str, object]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = orjson.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"line {number} is not a JSON object")
            records.append(record)
    return pd.json_normalize(records)


Reader = Callable[[Path], pd.DataFrame]
READERS: dict[str, tuple[str, Reader]] = {
    ".csv": ("CSV", _csv),
    ".csv.gz": ("CSV", _csv),
    ".parquet": ("Parquet", pd.read_parquet),
    ".pq": ("Parquet", pd.read_parquet),
    ".ndjson": ("NDJSON", _ndjson),
    ".jsonl": ("NDJSON", _ndjson),
}


def _reader(path: Path, param: str) -> tuple[str, Reader]:
    name = path.name.lower()
    for suffix, reader in READERS.items():
        if name.endswith(suffix):
            return reader
    message = f"{path.name}: unknown format; the audit reads {FORMATS}"
    raise click.BadParameter(message, param_hint=param)


def read_frame(path: Path, param: str) -> pd.DataFrame:
    """The file as a DataFrame with text column names; `param` is the argument or flag
    that named it, for the error."""
    kind, reader = _reader(path, param)
    try:
        frame = reader(path)
    except Exception as exc:  # pandas, pyarrow and orjson raise many types on bad files
        message = f"{path.name} is not readable as {kind} ({type(exc).__name__}: {exc})"
        raise click.BadParameter(message, param_hint=param) from exc
    if frame.empty:
        raise click.BadParameter(f"{path.name} has no rows to audit", param_hint=param)
    frame.columns = [str(column) for column in frame.columns]
    return frame
