"""The production-error reason, once ground truth came: wrong predictions, confidently
wrong first; for regression, errors beyond twice the window's mean absolute error."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.blocks import LABEL, PREDICTION
from core.schema import ModelSchema, category_text
from detectors.flag_candidates import Candidates, Ints, plain, unit
from detectors.flag_scores import ClassScores, texts


def production_errors(
    window: pd.DataFrame, schema: ModelSchema, scores: ClassScores
) -> list[Candidates]:
    if LABEL not in window or PREDICTION not in window:
        return []
    labeled = np.flatnonzero(
        window[LABEL].notna().to_numpy(dtype=bool) & window[PREDICTION].notna().to_numpy(dtype=bool)
    )
    if not len(labeled):
        return []
    truth = window[LABEL].iloc[labeled]
    predicted = window[PREDICTION].iloc[labeled]
    if schema.prediction_kind == "numerical":
        return _regression_errors(labeled, truth, predicted)
    wrong = (texts(truth) != texts(predicted)).to_numpy(dtype=bool)
    positions = labeled[wrong]
    confidence = scores.predicted(positions, predicted[wrong])
    # without scores a wrong prediction is as severe as a coin toss's
    severity = np.where(np.isnan(confidence), 0.5, confidence)
    known = dict(zip(positions.tolist(), confidence.tolist(), strict=True))

    def describe(position: int) -> str:
        said = (
            f"predicted {_text(window[PREDICTION].iat[position])}, "
            f"label {_text(window[LABEL].iat[position])}"
        )
        value = known.get(position, math.nan)
        return said if math.isnan(value) else f"{said}, with confidence {value:.2f}"

    return [Candidates(positions, unit(severity), describe)]


def _regression_errors(labeled: Ints, truth: pd.Series, predicted: pd.Series) -> list[Candidates]:
    truth_values = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=np.float64)
    predicted_values = pd.to_numeric(predicted, errors="coerce").to_numpy(dtype=np.float64)
    error = np.abs(predicted_values - truth_values)
    finite = np.isfinite(error)
    if not finite.any():
        return []
    mae = float(error[finite].mean())
    wrong = finite & (error > 2 * mae) & (error > 0)
    positions = labeled[wrong]
    severity = 1.0 - mae / error[wrong]
    found = dict(zip(positions.tolist(), error[wrong].tolist(), strict=True))

    def describe(position: int) -> str:
        return f"error {found[position]:.4g}, over twice the window's mean {mae:.4g}"

    return [Candidates(positions, unit(severity), describe)]


def _text(value: object) -> str:
    value = plain(value)
    return "none" if value is None else category_text(value)
