"""Validated events in the store's block format, ready to append.

A block holds, per event, one JSON row of metadata and categories and one row of
packed float64 numbers. Intake encodes a whole request into this form once, column by
column where it can (`collectors.columnar`), so the store only joins bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import orjson

from collectors.events import Event


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
    numbers: np.ndarray  # float64, one row per event in layout.numerical order; NaN: missing

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
