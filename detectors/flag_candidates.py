"""What each flagging reason hands to the selection (detectors/flag_selection.py): its
candidates from one source, and the small array helpers the reasons share."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]


@dataclass
class Candidates:
    """Candidates of one reason from one source (a column, a check): window positions,
    their severity in [0, 1], and what to tell people about one of them."""

    positions: Ints
    severity: Floats
    describe: Callable[[int], str]


def floats(values: object) -> Floats:
    return np.asarray(values, dtype=np.float64)


def unit(values: Floats | Sequence[float]) -> Floats:
    """Severities clipped to [0, 1], NaN as 0 (never selected)."""
    return np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0), 0.0, 1.0)


def numbers(series: pd.Series) -> Floats:
    """A column as floats; what is no finite number becomes NaN."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def plain(value: object) -> object:
    """A numpy scalar as Python's; NaN and None as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
