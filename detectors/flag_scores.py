"""The window's class scores, as the uncertainty and production-error reasons read them,
and labels and predictions as comparable text."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.blocks import SCORE_PREFIX
from detectors.flag_candidates import Bools, Floats, Ints


@dataclass(frozen=True)
class ClassScores:
    """The window's class scores: one column per class (NaN: not sent)."""

    classes: tuple[str, ...]
    matrix: Floats  # rows by classes

    @classmethod
    def of(cls, window: pd.DataFrame) -> ClassScores:
        columns = sorted(c for c in window.columns if str(c).startswith(SCORE_PREFIX))
        classes = tuple(str(c).removeprefix(SCORE_PREFIX) for c in columns)
        # annotated: numpy releases infer different shapes for np.empty and np.where
        matrix: Floats = np.empty((len(window), 0))
        if columns:
            numbers = window[columns].apply(pd.to_numeric, errors="coerce")
            raw = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
            matrix = np.where(np.isfinite(raw), raw, np.nan)
        return cls(classes, matrix)

    def of_row(self, position: int) -> dict[str, float]:
        if not self.classes:
            return {}
        row = self.matrix[position].tolist()
        return {c: v for c, v in zip(self.classes, row, strict=True) if not math.isnan(v)}

    def probabilities(self) -> tuple[Floats, Bools]:
        """Rows by classes that sum to 1 (one score: p and 1 - p), and which rows had any."""
        matrix = self._both_sides()
        known = ~np.isnan(matrix).all(axis=1)
        filled = np.clip(np.nan_to_num(matrix, nan=0.0), 0.0, None)
        total = filled.sum(axis=1)
        known &= total > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            normalised = filled / np.where(total > 0, total, 1.0)[:, None]
        return normalised, known

    def top(self) -> tuple[Floats, Floats, Bools]:
        """The top and second scores per row (raw, not normalised) and which rows had any."""
        matrix = self._both_sides()
        known: Bools = np.asarray(~np.isnan(matrix).all(axis=1), dtype=np.bool_)
        filled = np.nan_to_num(matrix, nan=0.0)
        ordered = np.sort(filled, axis=1)
        return ordered[:, -1], ordered[:, -2], known

    def predicted(self, positions: Ints, predictions: pd.Series) -> Floats:
        """The score of the predicted class of the rows at `positions` (NaN: unknown)."""
        out = np.full(len(positions), np.nan)
        if not self.classes:
            return out
        text = texts(predictions)
        rows = self.matrix[positions]
        for index, cls in enumerate(self.classes):
            hit = (text == cls).to_numpy(dtype=bool)
            out[hit] = rows[hit, index]
        if len(self.classes) == 1:  # one positive-class score: another class got 1 - p
            other = text.notna().to_numpy(dtype=bool) & (text != self.classes[0]).to_numpy(
                dtype=bool
            )
            out[other] = 1.0 - rows[other, 0]
        return out

    def _both_sides(self) -> Floats:
        """The matrix, with one positive-class score p as the two columns p and 1 - p."""
        if self.matrix.shape[1] != 1:
            return self.matrix
        p = np.clip(self.matrix[:, 0], 0.0, 1.0)
        return np.column_stack([p, 1.0 - p])


def texts(series: pd.Series) -> pd.Series:
    """Labels and predictions as comparable text: an integral float loses its ".0" (1.0
    and 1 and "1" are one class), missing stays missing."""
    text = series.astype(object).where(series.notna(), None)
    out = text.astype(str).str.replace(r"^(-?\d+)\.0$", r"\1", regex=True)
    return out.where(series.notna().to_numpy(dtype=bool), None)
