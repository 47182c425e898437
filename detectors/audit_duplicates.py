"""Duplicate rows and label conflicts, found through row hashes: one hashing pass per
column and one hash-table pass per question, so a million rows of thirty columns take
seconds.

A near duplicate is a row equal to an earlier row only once values are normalised:
floats rounded to N significant digits, text stripped, lower-cased and its inner
whitespace collapsed. Integers, booleans and datetimes compare exactly: rounding an id
or a count would merge rows that differ. A row that repeats another exactly is counted
as an exact duplicate only.

Hashes are 64-bit: two different rows of a million collide with odds of about 1 in 30
million, far below anything an audit reports."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.dataset_audit import Duplicates, LabelConflicts
from detectors.audit_labels import class_texts

Hashes = npt.NDArray[np.uint64]  # one per row
Floats = npt.NDArray[np.float64]
EXAMPLES = 10
MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: a bijective step when folding column hashes


def _is_text_like(series: pd.Series) -> bool:
    return series.dtype == object or isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype)


def _hash(values: npt.ArrayLike | pd.Series) -> Hashes:
    hashed = pd.util.hash_pandas_object(pd.Series(values), index=False)
    return np.asarray(hashed, dtype=np.uint64)


def round_significant(values: Floats, digits: int) -> Floats:
    """Floats rounded to `digits` significant digits, as (mantissa, exponent) made
    canonical, so that 9.99996 and 10.0001 give the very same float at 4 digits.
    NaN and infinities stay; -0.0 becomes 0.0."""
    out = np.where(values == 0, 0.0, values)
    finite = np.isfinite(out) & (out != 0)
    kept = out[finite]
    exponent = np.floor(np.log10(np.abs(kept))).astype(np.int64) - (digits - 1)
    mantissa = np.round(kept / 10.0**exponent)
    carry = np.abs(mantissa) >= 10**digits  # rounded up to the next power of ten
    mantissa = np.where(carry, np.round(mantissa / 10), mantissa)
    out[finite] = mantissa * 10.0 ** (exponent + carry)
    return out


def _normal(value: object, digits: int) -> object:
    if isinstance(value, str):
        return " ".join(value.split()).lower()
    if isinstance(value, float):
        return float(round_significant(np.array([value]), digits)[0])
    return value


def column_hashes(series: pd.Series, digits: int) -> tuple[Hashes, Hashes]:
    """Per-row hashes of a column's values, exact and normalised. Text is factorized
    once and each distinct value normalised once: columns hold far fewer distinct
    values than rows."""
    if _is_text_like(series):
        codes, uniques = pd.factorize(series.astype(object))
        normal = pd.factorize(pd.Series([_normal(v, digits) for v in uniques], dtype=object))[0]
        near_codes = np.append(normal, -1)[codes]  # code -1 (missing) stays -1
        return _hash(codes), _hash(near_codes)
    exact = _hash(series)
    if not pd.api.types.is_float_dtype(series):  # integers, booleans, datetimes: exact
        return exact, exact
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return exact, _hash(round_significant(values, digits))


def combine(hashes: list[Hashes], rows: int) -> Hashes:
    """One uint64 per row from its columns' hashes; equal rows give equal values."""
    combined: Hashes = np.zeros(rows, dtype=np.uint64)
    for column in hashes:
        combined = np.asarray(combined * MIX + column, dtype=np.uint64)  # wraps, as meant
    return combined


def find_duplicates(exact: Hashes, near: Hashes) -> Duplicates:
    """Duplicates from the rows' exact and normalised hashes."""
    exact_repeat = pd.Series(exact).duplicated().to_numpy()
    near_repeat = pd.Series(near).duplicated().to_numpy()
    near_only = near_repeat & ~exact_repeat
    return Duplicates(
        exact_rows=int(exact_repeat.sum()),
        near_rows=int(near_only.sum()),
        exact_examples=np.flatnonzero(exact_repeat)[:EXAMPLES].tolist(),
        near_examples=np.flatnonzero(near_only)[:EXAMPLES].tolist(),
    )


def label_conflicts(features: Hashes, label: pd.Series) -> LabelConflicts | None:
    """Groups of rows with identical features (`features`: the rows' hashes over the
    feature columns) and more than one label. The noise rate counts, in each such
    group, the rows outside its most common label: a lower bound, since a wrong label on
    a row whose features are unique cannot be seen this way."""
    present = label.notna().to_numpy()
    if not present.any():
        return None
    keys = features[present]
    labels = pd.factorize(class_texts(label))[0].astype(np.uint64)
    distinct_pairs = ~pd.Series(combine([keys, labels], len(keys))).duplicated().to_numpy()
    shared = pd.Series(keys[distinct_pairs]).duplicated(keep=False).to_numpy()
    conflicting = np.isin(keys, keys[distinct_pairs][shared])
    pairs = pd.DataFrame({"key": keys[conflicting], "label": labels[conflicting]})
    majority = pairs.value_counts().groupby(level="key").max()
    rows = np.flatnonzero(present)[np.flatnonzero(conflicting)]
    return LabelConflicts(
        groups=int(pairs["key"].nunique()),
        rows=len(pairs),
        noise_rate=(len(pairs) - int(majority.sum())) / int(present.sum()),
        examples=rows[:EXAMPLES].tolist(),
    )
