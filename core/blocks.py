"""The block format of stored events: encoding on the way in, decoding on the way out.

A block holds, per event, one JSON row of metadata and categories and one row of
numbers. Intake encodes a whole request into this form once, column by column where it
can (`collectors.columnar`). Detection decodes a window's blocks into one DataFrame in
its worker process.

Two stream-entry formats, both decoded (blocks outlive upgrades):
- format 1 (the first): fields `r`, the rows joined by newlines, and `x`, the numbers
  as packed float64, row after row;
- format 2: field `z`, a version byte (2) then one zlib stream (level 1: a block costs
  about 1 ms to pack per 500 events) of the rows' byte length (u32), the rows, then the
  numeric columns as `core.number_columns` packs them (lossless).
Both have `n`, the event count, and `l`, the layout."""

from __future__ import annotations

import gc
import math
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd

from core.events import Event
from core.number_columns import decode_columns, encode_columns
from core.redis_types import StreamEntry

# window columns that are not features: every decoded frame has them
EVENT_ID = "__event_id"
TIMESTAMP = "__timestamp"
INGESTED_AT = "__ingested_at"
MODEL_VERSION = "__model_version"
PREDICTION = "__prediction"
LABEL = "__label"
SCORE_PREFIX = "__score:"
META_COLUMNS = (EVENT_ID, TIMESTAMP, INGESTED_AT, MODEL_VERSION, PREDICTION, LABEL)

BLOCK_FORMAT = 2
COMPRESSION_LEVEL = 1  # level 6 saves 10% more and costs 2-3x the time on intake
_ROWS_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Layout:
    """Column order of a block: numeric features packed, categorical ones in the row."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]

    def encode(self) -> bytes:
        return orjson.dumps([self.numerical, self.categorical])

    @classmethod
    def decode(cls, raw: bytes) -> Layout:
        numerical, categorical = orjson.loads(raw)
        return cls(tuple(numerical), tuple(categorical))


@dataclass(frozen=True)
class EncodedBatch:
    layout: Layout
    event_ids: list[str]
    rows: list[bytes]  # JSON [event_id, timestamp, version, prediction, scores, label, cats]
    numbers: np.ndarray[
        Any, Any
    ]  # float64, one row per event in layout.numerical order; NaN: missing

    def __len__(self) -> int:
        return len(self.event_ids)

    def part(self, start: int, stop: int) -> EncodedBatch:
        return EncodedBatch(
            self.layout, self.event_ids[start:stop], self.rows[start:stop], self.numbers[start:stop]
        )

    @classmethod
    def concat(cls, parts: Sequence[EncodedBatch]) -> EncodedBatch:
        """Parts of one layout as one batch."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            parts[0].layout,
            [event_id for part in parts for event_id in part.event_ids],
            [row for part in parts for row in part.rows],
            np.concatenate([part.numbers for part in parts]),
        )

    def take(self, positions: Sequence[int]) -> EncodedBatch:
        """The events at `positions` (0-based), in that order."""
        return EncodedBatch(
            self.layout,
            [self.event_ids[i] for i in positions],
            [self.rows[i] for i in positions],
            self.numbers[list(positions)],
        )

    def packed(self) -> bytes:
        """The batch as the `z` field of a format-2 block."""
        rows = self.joined_rows()
        body = _ROWS_LENGTH.pack(len(rows)) + rows + encode_columns(self.numbers)
        return bytes([BLOCK_FORMAT]) + zlib.compress(body, COMPRESSION_LEVEL)

    def joined_rows(self) -> bytes:
        return b"\n".join(self.rows)  # JSON escapes newlines inside strings

    def packed_numbers(self) -> bytes:
        return np.ascontiguousarray(self.numbers, dtype="<f8").tobytes()

    @classmethod
    def from_events(cls, events: Sequence[Event], layout: Layout) -> EncodedBatch:
        event_ids = [event.event_id for event in events]
        rows = encode_rows(
            event_ids,
            [event.timestamp for event in events],
            [event.model_version for event in events],
            [event.prediction for event in events],
            [event.scores or None for event in events],
            [event.label for event in events],
            [[event.features.get(name) for name in layout.categorical] for event in events],
        )
        numbers = [[event.features.get(name) for name in layout.numerical] for event in events]
        return cls(
            layout,
            event_ids,
            rows,
            np.array(numbers, dtype="float64").reshape(len(events), len(layout.numerical)),
        )


def encode_rows(*columns: Iterable[Any]) -> list[bytes]:
    # msgspec writes these small arrays several times faster than orjson does
    return list(map(msgspec.json.encode, zip(*columns, strict=True)))


def tuple_getter(names: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """itemgetter that always returns a tuple (itemgetter of one name returns the value)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        name = names[0]
        return lambda mapping: (mapping[name],)
    return itemgetter(*names)


# ------------------------------------------------------------------ decoding


def decode_window(blocks: list[StreamEntry], max_events: int) -> pd.DataFrame:
    """The newest `max_events` events of the blocks as a DataFrame."""
    frame = decode_blocks(blocks)
    if len(frame) > max_events:
        frame = frame.iloc[len(frame) - max_events :].reset_index(drop=True)
    return frame


def entry_id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding allocates millions of acyclic objects; the cyclic collector would walk
    them again and again for nothing (it doubles the decode time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_blocks(blocks: list[StreamEntry]) -> pd.DataFrame:
    """Stream entries to one DataFrame; consecutive blocks sharing a layout are decoded
    together so that a long window is a handful of numpy operations."""
    with _gc_paused():
        return _decode_blocks(blocks)


def _decode_blocks(blocks: list[StreamEntry]) -> pd.DataFrame:
    frames: list[pd.DataFrame] = []
    group: list[StreamEntry] = []
    for block in blocks:
        if group and block[1][b"l"] != group[0][1][b"l"]:
            frames.append(_decode_group(group))
            group = []
        group.append(block)
    if group:
        frames.append(_decode_group(group))
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in META_COLUMNS})
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def unpack_block(fields: dict[bytes, bytes], width: int) -> tuple[bytes, np.ndarray[Any, Any]]:
    """A block's rows joined by newlines and its numbers (events x `width`), in
    either format."""
    count = int(fields[b"n"])
    packed = fields.get(b"z")
    if packed is None:  # format 1
        numbers = np.frombuffer(fields[b"x"], dtype="<f8").reshape(count, width)
        return fields[b"r"], numbers
    if packed[0] != BLOCK_FORMAT:
        raise ValueError(f"block format {packed[0]} is newer than this driftmon reads")
    body = memoryview(zlib.decompress(packed[1:]))
    (length,) = _ROWS_LENGTH.unpack_from(body)
    rows_end = _ROWS_LENGTH.size + length
    return bytes(body[_ROWS_LENGTH.size : rows_end]), decode_columns(body[rows_end:], count, width)


def _decode_group(group: list[StreamEntry]) -> pd.DataFrame:
    layout = Layout.decode(group[0][1][b"l"])
    sizes = [int(fields[b"n"]) for _, fields in group]
    width = len(layout.numerical)
    parts = [unpack_block(fields, width) for _, fields in group]
    numbers = np.concatenate([part[1] for part in parts]) if parts else np.empty((0, width))
    joined = b",".join(part[0].replace(b"\n", b",") for part in parts)
    rows = orjson.loads(b"[" + joined + b"]")
    ingested = [entry_id_order(entry_id.decode())[0] / 1000.0 for entry_id, _ in group]
    event_ids, timestamps, versions, predictions, scores, labels, categories = (
        zip(*rows, strict=True) if rows else ((),) * 7
    )
    columns: dict[str, Any] = {}
    for name, values in zip(layout.categorical, zip(*categories, strict=True), strict=True):
        columns[name] = _text(values)
    columns[EVENT_ID] = _text(event_ids)
    columns[TIMESTAMP] = np.array(timestamps, dtype="float64")
    columns[INGESTED_AT] = np.repeat(ingested, sizes)
    columns[MODEL_VERSION] = _text(versions)
    columns[PREDICTION] = _text(predictions)
    columns[LABEL] = _text(labels)
    columns.update(_score_columns(scores))
    # numbers stay one 2-D block: no per-column copies
    numeric = pd.DataFrame(numbers, columns=list(layout.numerical), copy=False)
    return pd.concat([numeric, pd.DataFrame(columns)], axis=1)


def _text(values: tuple[object, ...]) -> pd.Series:
    """Object dtype on purpose: pandas would otherwise convert each text column to Arrow
    strings, which costs more than the decode and is not what Evidently expects."""
    return pd.Series(np.array(values, dtype=object), dtype=object, copy=False)


def _score_columns(scores: tuple[dict[str, float] | None, ...]) -> dict[str, Any]:
    classes = sorted({cls for entry in scores if entry for cls in entry})
    return {
        SCORE_PREFIX + cls: np.array(
            [math.nan if not entry else entry.get(cls, math.nan) for entry in scores],
            dtype="float64",
        )
        for cls in classes
    }
