"""Lossless packing of a block's numeric columns, decoded bit for bit.

Logged numbers mostly carry a few decimals (ages, amounts in cents, rates with four
digits), yet each takes 8 bytes as float64. A column whose every value `v` is exactly
`i / 10**k` for small integers `i` (checked on the float64 bits, so -0.0, infinities
and long mantissas fall back) is stored as those integers in the narrowest of int8 to
int64, the dtype's minimum marking a missing value (NaN). Any other column is stored as
float64 (a NaN of any payload comes back as the one NaN: JSON carries no payloads,
a missing value is NaN). Decoding divides by the same power of ten, an exact IEEE operation, so the
frame detection sees is the one intake parsed: scores cannot move."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

MAX_DECIMALS = 8
# the scan costs some 0.1 ms a block whatever its size: on the single-event POST path
# that is a tenth of the request, for a few dozen bytes
SCAN_MIN_EVENTS = 16
EXACT_INTEGERS = 2.0**53  # beyond, float64 does not hold every integer
_RAW, _DECIMAL = 0, 1
_WIDTHS = (np.int8, np.int16, np.int32, np.int64)
_INTEGERS = {np.dtype(dtype).itemsize: np.dtype(dtype).newbyteorder("<") for dtype in _WIDTHS}
_HEADER = struct.Struct("<BBB")  # kind, decimals, bytes per value


def _decimals(numbers: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per column, the fewest decimals that give back every value (-1: none do), and
    the values times ten to that power. Every column is tried at once: a block of one
    event costs the same few dozen numpy calls as a block of thousands."""
    width = numbers.shape[1]
    decimals = np.full(width, -1)
    scaled = np.zeros_like(numbers)
    pending = np.arange(width)
    with np.errstate(all="ignore"):  # huge values overflow to inf, and fail the check
        for places in range(MAX_DECIMALS + 1):
            scale = 10.0**places
            integers = np.rint(numbers[:, pending] * scale)
            # + 0.0 turns -0.0 into the 0 the integer holds: such a column stays float64
            restored = (integers + 0.0) / scale
            exact = np.all(np.abs(integers) < EXACT_INTEGERS, axis=0) & np.all(
                restored.view(np.int64) == numbers[:, pending].view(np.int64), axis=0
            )
            decimals[pending[exact]] = places
            scaled[:, pending[exact]] = integers[:, exact]
            pending = pending[~exact]
            if not pending.size:
                break
    return decimals, scaled


def _widths(scaled: np.ndarray[Any, Any], missing: np.ndarray[Any, Any]) -> list[int]:
    """Per column, the bytes of the narrowest integer holding its values, whose
    minimum (which marks NaN) none of them is."""
    if not scaled.size:
        return [1] * scaled.shape[1]
    low = np.where(missing, 0.0, scaled).min(axis=0)
    high = np.where(missing, 0.0, scaled).max(axis=0)
    widths = np.full(scaled.shape[1], 8)
    for dtype in reversed(_WIDTHS[:-1]):  # the narrowest that fits wins
        info = np.iinfo(dtype)
        widths[(info.min < low) & (high <= info.max)] = np.dtype(dtype).itemsize
    return list(widths.tolist())


def encode_columns(numbers: np.ndarray[Any, Any]) -> bytes:
    """float64 rows (events) x columns as one byte string, column after column."""
    missing = np.isnan(numbers)
    if len(numbers) < SCAN_MIN_EVENTS:  # float64 as it is: see SCAN_MIN_EVENTS
        numbers = np.where(missing, np.nan, numbers)
        return b"".join(
            _HEADER.pack(_RAW, 0, 8) + numbers[:, j].astype("<f8").tobytes()
            for j in range(numbers.shape[1])
        )
    decimals, scaled = _decimals(np.where(missing, 0.0, numbers))
    widths = _widths(scaled, missing)
    lowest = -(2.0 ** (8 * np.array(widths) - 1))  # each column's NaN mark
    scaled = np.where(missing, lowest, scaled)
    numbers = np.where(missing, np.nan, numbers)  # one NaN, whatever its payload
    parts = []
    for j, (places, width) in enumerate(zip(decimals.tolist(), widths, strict=True)):
        if places < 0:
            parts += [_HEADER.pack(_RAW, 0, 8), numbers[:, j].astype("<f8").tobytes()]
        else:
            column = scaled[:, j].astype(_INTEGERS[width])
            parts += [_HEADER.pack(_DECIMAL, places, width), column.tobytes()]
    return b"".join(parts)


def decode_columns(raw: memoryview, rows: int, width: int) -> np.ndarray[Any, Any]:
    """`encode_columns`'s bytes back to the float64 rows x columns array."""
    numbers = np.empty((rows, width), dtype="float64")
    offset = 0
    for j in range(width):
        kind, decimals, size = _HEADER.unpack_from(raw, offset)
        offset += _HEADER.size
        if kind == _RAW:
            numbers[:, j] = np.frombuffer(raw, dtype="<f8", count=rows, offset=offset)
        elif kind == _DECIMAL:
            integers = np.frombuffer(raw, dtype=f"<i{size}", count=rows, offset=offset)
            column = integers / 10.0**decimals
            column[integers == np.iinfo(integers.dtype).min] = np.nan
            numbers[:, j] = column
        else:
            raise ValueError(f"unknown numeric column kind {kind} in a block")
        offset += rows * size
    return numbers
