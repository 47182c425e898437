"""The block codec: format 2 gives back every number bit for bit, and blocks written in
format 1 (before compression) still decode, alone or beside format-2 blocks."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.blocks import (
    EVENT_ID,
    INGESTED_AT,
    PREDICTION,
    SCORE_PREFIX,
    TIMESTAMP,
    EncodedBatch,
    Layout,
    decode_blocks,
)
from core.events import Event
from core.number_columns import decode_columns, encode_columns
from core.redis_types import StreamEntry

LAYOUT = Layout(numerical=("age", "income"), categorical=("region",))

# A block as driftmon stored it before format 2, written out by hand (not by today's
# encoder): rows joined by newlines, numbers as little-endian float64 row after row.
FORMAT_1_ROWS = (
    b'["e0",1800000000.0,"7","1",{"1":0.75},null,["EU"]]\n'
    b'["e1",1800000001.5,"7","0",null,"1",["US"]]'
)
FORMAT_1_NUMBERS = struct.pack("<4d", 41.5, float("nan"), -0.0, 1234.56789)
FORMAT_1_BLOCK: StreamEntry = (
    b"1800000002000-0",
    {b"n": b"2", b"l": b'[["age","income"],["region"]]', b"r": FORMAT_1_ROWS,
     b"x": FORMAT_1_NUMBERS},
)  # fmt: skip


def bits(values: Any) -> list[int]:
    """Float64 values as their bit patterns: -0.0 and NaN compared exactly."""
    return np.asarray(values, dtype="float64").view(np.int64).tolist()  # type: ignore[no-any-return]


def format_2_block(entry_id: bytes, batch: EncodedBatch) -> StreamEntry:
    fields = {b"n": str(len(batch)).encode(), b"l": batch.layout.encode(), b"z": batch.packed()}
    return entry_id, fields


def events(ids: list[str], ages: list[float | None]) -> list[Event]:
    return [
        Event(event_id, 1_800_000_010.0 + i, "8", {"age": age, "income": 3.0, "region": "EU"},
              "1", {"1": 0.5})
        for i, (event_id, age) in enumerate(zip(ids, ages, strict=True))
    ]  # fmt: skip


def test_a_format_1_block_reads_back() -> None:
    frame = decode_blocks([FORMAT_1_BLOCK])
    assert frame[EVENT_ID].tolist() == ["e0", "e1"]
    assert frame[TIMESTAMP].tolist() == [1_800_000_000.0, 1_800_000_001.5]
    assert frame[PREDICTION].tolist() == ["1", "0"]
    assert frame["region"].tolist() == ["EU", "US"]
    assert frame[INGESTED_AT].tolist() == [1_800_000_002.0, 1_800_000_002.0]
    assert bits(frame["age"]) == bits([41.5, -0.0])
    assert bits(frame["income"]) == bits([float("nan"), 1234.56789])
    assert frame[SCORE_PREFIX + "1"].iloc[0] == 0.75


def test_format_1_and_format_2_blocks_decode_together_in_order() -> None:
    batch = EncodedBatch.from_events(events(["e2", "e3"], [30.25, None]), LAYOUT)
    later = format_2_block(b"1800000003000-0", batch)
    frame = decode_blocks([FORMAT_1_BLOCK, later])
    assert frame[EVENT_ID].tolist() == ["e0", "e1", "e2", "e3"]
    assert bits(frame["age"]) == bits([41.5, -0.0, 30.25, float("nan")])
    assert frame["region"].tolist() == ["EU", "US", "EU", "EU"]
    assert later[1][b"z"][0] == 2, "format 2 starts with its version byte"


def test_a_block_of_an_unknown_format_is_refused_by_name() -> None:
    batch = EncodedBatch.from_events(events(["e0"], [1.0]), LAYOUT)
    entry_id, fields = format_2_block(b"1-0", batch)
    fields[b"z"] = b"\x07" + fields[b"z"][1:]
    with pytest.raises(ValueError, match="block format 7"):
        decode_blocks([(entry_id, fields)])


def test_decimal_columns_shrink_and_others_stay_float64() -> None:
    rows = 1000
    rng = np.random.default_rng(1)
    cents = np.round(rng.uniform(0, 500, rows), 2)  # int16 is too narrow: int32
    ages = np.round(rng.normal(40, 12, rows)) + 0.0  # + 0.0: no -0.0
    precise = rng.normal(size=rows)  # 17 digits: kept as float64
    packed = encode_columns(np.stack([cents, ages, precise], axis=1))
    header = 3
    assert len(packed) == 3 * header + rows * (4 + 1 + 8)
    back = decode_columns(memoryview(packed), rows, 3)
    assert bits(back) == bits(np.stack([cents, ages, precise], axis=1))


SPECIAL = st.sampled_from([0.0, -0.0, float("nan"), -128.0, 127.0, 2.0**53, -(2.0**60), 1e-9])
DECIMALS = st.integers(-(10**12), 10**12).flatmap(
    lambda i: st.integers(0, 10).map(lambda k: i / 10.0**k)
)
VALUES = st.one_of(SPECIAL, DECIMALS, st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=300, deadline=None)
@given(arrays("float64", st.tuples(st.integers(0, 60), st.integers(1, 4)), elements=VALUES))
def test_every_column_decodes_bit_for_bit(numbers: np.ndarray[Any, Any]) -> None:
    rows, width = numbers.shape
    back = decode_columns(memoryview(encode_columns(numbers)), rows, width)
    # a missing value is NaN, whatever payload bits it came with (JSON has none)
    assert bits(back) == bits(np.where(np.isnan(numbers), np.nan, numbers))


def test_a_packed_batch_decodes_to_what_the_unpacked_one_gives() -> None:
    """The same events through format 1 and format 2: the same frame, bit for bit."""
    ids = [f"e{i}" for i in range(300)]
    ages = [None if i % 7 == 0 else round(i * 0.37 - 20, 2) for i in range(300)]
    batch = EncodedBatch.from_events(events(ids, ages), LAYOUT)
    old = (b"5-0", {b"n": b"300", b"l": LAYOUT.encode(), b"r": batch.joined_rows(),
                    b"x": batch.packed_numbers()})  # fmt: skip
    new = format_2_block(b"5-0", batch)
    old_frame, new_frame = decode_blocks([old]), decode_blocks([new])
    assert old_frame.columns.tolist() == new_frame.columns.tolist()
    for name in old_frame.columns:
        if old_frame[name].dtype == object:
            assert old_frame[name].tolist() == new_frame[name].tolist(), name
        else:
            assert bits(old_frame[name]) == bits(new_frame[name]), name
    assert len(new[1][b"z"]) < len(old[1][b"r"]) + len(old[1][b"x"])
    assert orjson.loads(old[1][b"r"].split(b"\n")[0])[0] == "e0"
