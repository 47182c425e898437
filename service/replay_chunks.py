"""The history cut into chunks, each chunk's rows turned into what intake would have
stored: the API's event records, validated and encoded by intake's own `validate`, in
stream blocks whose ids are the events' times (as if each had arrived when it
happened). Detection then reads a chunk exactly as it reads a window."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from collectors.validation import validate
from core.blocks import EncodedBatch
from core.redis_types import StreamEntry
from core.schema import ModelSchema
from detectors.quality import IntakeRejects
from service.replay_input import DEFAULT_TIMESTAMP_COLUMN, ReplayInputError

DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class ChunkPlan:
    """How to cut the history: exactly one of `size` (rows) and `period` (a duration
    such as 1d, 6h, 30min, on the timestamp column)."""

    size: int | None = None
    period: str | None = None
    timestamp_column: str | None = None
    event_id_column: str | None = None
    model_version_column: str | None = None


@dataclass(frozen=True)
class Chunk:
    index: int
    rows: pd.DataFrame
    # unix seconds: the period's bounds, or the first and last event times; None
    # without timestamps
    start: float | None
    end: float | None
    # when its replayed run happens (the period's end, the last event's time, or one
    # schedule interval per chunk without timestamps)
    run_at: float

    @property
    def period(self) -> str:
        if self.start is None or self.end is None:
            first = int(self.rows.index.min()) if len(self.rows) else 0
            return f"rows {first}-{first + len(self.rows) - 1}"
        return f"{_minute(self.start)} → {_minute(self.end)}"


@dataclass(frozen=True)
class EncodedChunk:
    blocks: list[StreamEntry]
    rejects: IntakeRejects
    accepted: int
    rejected: int


def _minute(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def timestamp_column(history: pd.DataFrame, plan: ChunkPlan) -> str | None:
    """The column named by --timestamp-column (it must exist), else `timestamp` when the
    history has one."""
    if plan.timestamp_column is not None:
        if plan.timestamp_column not in history.columns:
            raise ReplayInputError(
                "--timestamp-column", f"column {plan.timestamp_column!r} is not in --data"
            )
        return plan.timestamp_column
    return DEFAULT_TIMESTAMP_COLUMN if DEFAULT_TIMESTAMP_COLUMN in history.columns else None


def event_seconds(values: pd.Series, column: str) -> pd.Series:
    """Unix seconds of each row: epoch seconds or milliseconds (as intake reads them),
    or date-time text (without a zone: UTC)."""
    flag = "--timestamp-column"
    if values.isna().any():
        raise ReplayInputError(flag, f"column {column!r}: {int(values.isna().sum())} empty times")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        return numbers.where(numbers <= 1e11, numbers / 1000.0)
    try:
        times = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ReplayInputError(flag, f"column {column!r}: not readable as times ({exc})") from exc
    seconds: pd.Series = (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds


def period_seconds(period: str) -> float:
    try:
        seconds = pd.Timedelta(period).total_seconds()
    except (ValueError, TypeError) as exc:
        raise ReplayInputError(
            "--chunk-period", f"{period!r} is not a duration such as 1d, 6h or 30min"
        ) from exc
    if not seconds > 0:
        raise ReplayInputError("--chunk-period", f"{period!r} must be longer than zero")
    return float(seconds)


def cut_chunks(history: pd.DataFrame, plan: ChunkPlan, schedule_seconds: float) -> list[Chunk]:
    """The chunks in time order. By period: every period from the first event's day on,
    empty ones included (the service would have run then too). Without timestamps, one
    `schedule_seconds` apart."""
    if (plan.size is None) == (plan.period is None):
        raise ReplayInputError("--chunk-size/--chunk-period", "give exactly one of them")
    column = timestamp_column(history, plan)
    if column is None:
        if plan.period is not None:
            raise ReplayInputError(
                "--chunk-period", "needs times: name the column with --timestamp-column"
            )
        return _by_size_untimed(history, plan.size or 1, schedule_seconds)
    seconds = event_seconds(history[column], column)
    order = np.argsort(seconds.to_numpy(), kind="stable")
    rows, seconds = history.iloc[order], seconds.iloc[order]
    if plan.period is not None:
        return _by_period(rows, seconds.to_numpy(), period_seconds(plan.period))
    return _by_size_timed(rows, seconds.to_numpy(), plan.size or 1)


def _by_size_untimed(history: pd.DataFrame, size: int, schedule_seconds: float) -> list[Chunk]:
    return [
        Chunk(index, history.iloc[start : start + size], None, None, index * schedule_seconds)
        for index, start in enumerate(range(0, len(history), size))
    ]


def _by_size_timed(rows: pd.DataFrame, seconds: np.ndarray[Any, Any], size: int) -> list[Chunk]:
    chunks = []
    for index, start in enumerate(range(0, len(rows), size)):
        times = seconds[start : start + size]
        first, last = float(times[0]), float(times[-1])
        chunks.append(Chunk(index, rows.iloc[start : start + size], first, last, last))
    return chunks


def _by_period(rows: pd.DataFrame, seconds: np.ndarray[Any, Any], period: float) -> list[Chunk]:
    origin = math.floor(seconds[0] / DAY_SECONDS) * DAY_SECONDS  # the first event's midnight
    bins = ((seconds - origin) // period).astype("int64")
    chunks = []
    for index in range(int(bins[-1]) + 1):
        start = origin + index * period
        members = rows.iloc[np.flatnonzero(bins == index)]
        chunks.append(Chunk(index, members, start, start + period, start + period))
    return chunks


def _native(values: pd.Series) -> list[Any]:
    """Python values as a JSON producer would send them; missing ones as None."""
    as_objects = values.astype(object)
    return as_objects.where(values.notna(), None).tolist()


def _numbers(values: pd.Series) -> list[Any]:
    """A numerical column as numbers; in a text column (a CSV column with a stray word
    reads as text) the values that are numbers go out as numbers, the rest as the text
    intake refuses as a type mismatch, as it would a producer's."""
    if pd.api.types.is_numeric_dtype(values):
        return _native(values)
    numbers = pd.to_numeric(values, errors="coerce")
    return _native(numbers.astype(object).where(numbers.notna(), values))


def _category(value: Any) -> Any:
    """A code read as a float (a CSV column with gaps) goes out as the integer it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def records(chunk: Chunk, schema: ModelSchema, plan: ChunkPlan) -> list[dict[str, Any]]:
    """The chunk's rows as `POST /v1/models/{model}/events` takes them. Columns the
    reference does not have are left out (intake would refuse every record)."""
    rows = chunk.rows
    count = len(rows)
    features = {
        name: _numbers(rows[name])
        if kind == "numerical"
        else list(map(_category, _native(rows[name])))
        for name, kind in schema.features.items()
        if name in rows.columns
    }
    ids = _native(rows[plan.event_id_column]) if plan.event_id_column else None
    out: list[dict[str, Any]] = []
    for position in range(count):
        record: dict[str, Any] = {
            "event_id": ids[position] if ids is not None else f"row-{rows.index[position]}",
            "features": {name: values[position] for name, values in features.items()},
        }
        out.append(record)
    _add_column(out, rows, schema.prediction, "prediction")
    _add_column(out, rows, schema.label, "label")
    _add_column(out, rows, plan.model_version_column, "model_version")
    _add_scores(out, rows, schema)
    if chunk.start is not None:
        column = plan.timestamp_column or DEFAULT_TIMESTAMP_COLUMN
        for record, seconds in zip(out, event_seconds(rows[column], column), strict=True):
            record["timestamp"] = float(seconds)
    return out


def _add_column(
    out: list[dict[str, Any]], rows: pd.DataFrame, column: str | None, key: str
) -> None:
    if column is None or column not in rows.columns:
        return
    for record, value in zip(out, _native(rows[column]), strict=True):
        if value is not None:
            record[key] = _category(value) if key != "model_version" else str(_category(value))


def _add_scores(out: list[dict[str, Any]], rows: pd.DataFrame, schema: ModelSchema) -> None:
    columns = {cls: column for cls, column in schema.scores.items() if column in rows.columns}
    values = {cls: _native(rows[column]) for cls, column in columns.items()}
    for position, record in enumerate(out):
        scores = {cls: values[cls][position] for cls in columns}
        if any(score is not None for score in scores.values()):
            record["scores"] = scores


def intake_rejects(errors: Sequence[dict[str, Any]]) -> IntakeRejects:
    """The rejects as the runner reads them back from Redis for data quality."""
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for error in errors:
        totals[str(error["reason"])][str(error["field"])] += 1
    return IntakeRejects.from_totals(totals)


def _blocks(batch: EncodedBatch, arrived_ms: Sequence[int]) -> list[StreamEntry]:
    """One stream block per arrival millisecond, ids as the event store writes them."""
    blocks: list[StreamEntry] = []
    layout = batch.layout.encode()
    start, last = 0, (-1, -1)
    for stop in range(1, len(batch) + 1):
        if stop < len(batch) and arrived_ms[stop] == arrived_ms[start]:
            continue
        ms = max(arrived_ms[start], last[0])
        last = (ms, last[1] + 1 if ms == last[0] else 0)
        part = batch.part(start, stop)
        fields = {
            b"n": str(len(part)).encode(),
            b"l": layout,
            b"r": part.joined_rows(),
            b"x": part.packed_numbers(),
        }
        blocks.append((f"{last[0]}-{last[1]}".encode(), fields))
        start = stop
    return blocks


def encode_chunk(
    chunk: Chunk, model: str, schema: ModelSchema, plan: ChunkPlan, pii_key: bytes | None
) -> EncodedChunk:
    """The chunk validated by intake's code at its run time and stored as blocks."""
    sent = records(chunk, schema, plan)
    batch, errors = validate(list(sent), model, schema, chunk.run_at, pii_key=pii_key)
    refused = {int(error["index"]) for error in errors}
    arrived = [
        int(float(record.get("timestamp", chunk.run_at)) * 1000)  # as the store: floor
        for index, record in enumerate(sent)
        if index not in refused
    ]
    blocks = _blocks(batch, arrived) if len(batch) else []
    return EncodedChunk(blocks, intake_rejects(errors), len(batch), len(errors))


def unused_columns(history: pd.DataFrame, schema: ModelSchema, plan: ChunkPlan) -> list[str]:
    """History columns that are neither the reference's nor replay's own (times, event
    ids, model versions): left out of the events, as intake would refuse them."""
    used = set(schema.columns()) | {
        timestamp_column(history, plan),
        plan.event_id_column,
        plan.model_version_column,
    }
    return sorted(set(history.columns) - used)
