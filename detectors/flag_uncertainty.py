"""The uncertainty reason: samples whose class scores show the model in doubt, by the
model's method (`LabelingConfig.uncertainty`; see detectors/flagging.py for which suits
which model)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from core.labeling import LabelingConfig
from detectors.flag_candidates import Bools, Candidates, Floats, unit
from detectors.flag_scores import ClassScores


class _Doubt(NamedTuple):
    """Per row: how far past the threshold (not yet clipped), whether it is past it, and
    what to tell people."""

    severity: Floats
    flagged: Bools
    describe: Callable[[int], str]


def uncertain_samples(scores: ClassScores, config: LabelingConfig) -> list[Candidates]:
    if not scores.classes:
        return []
    threshold = config.uncertainty_threshold
    if config.uncertainty == "confidence":
        doubt = _low_confidence(scores, threshold)
    elif config.uncertainty == "margin":
        doubt = _narrow_margin(scores, threshold)
    else:
        doubt = _high_entropy(scores, threshold)
    positions = np.flatnonzero(doubt.flagged)
    return [Candidates(positions, unit(doubt.severity[positions]), doubt.describe)]


def _low_confidence(scores: ClassScores, threshold: float) -> _Doubt:
    """The top score below the threshold; severity towards 1/classes."""
    classes = max(2, len(scores.classes))
    top, _, known = scores.top()
    floor = 1.0 / classes
    severity = (threshold - top) / max(threshold - floor, 1e-9)

    def describe(position: int) -> str:
        return f"confidence {top[position]:.2f} < {threshold:.2f}"

    return _Doubt(severity, known & (top < threshold), describe)


def _narrow_margin(scores: ClassScores, threshold: float) -> _Doubt:
    """The top score minus the second below the threshold; severity towards 0."""
    top, second, known = scores.top()
    margin = top - second
    severity = (threshold - margin) / threshold

    def describe(position: int) -> str:
        return f"margin {margin[position]:.2f} < {threshold:.2f} between the top two scores"

    return _Doubt(severity, known & (margin < threshold), describe)


def _high_entropy(scores: ClassScores, threshold: float) -> _Doubt:
    """The normalised entropy above 1 - threshold; severity towards 1."""
    probabilities, known = scores.probabilities()
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(probabilities > 0, np.log(probabilities), 0.0)
    entropy = -(probabilities * logs).sum(axis=1) / math.log(probabilities.shape[1])
    floor = 1.0 - threshold
    severity = (entropy - floor) / max(1.0 - floor, 1e-9)

    def describe(position: int) -> str:
        return f"normalised entropy {entropy[position]:.2f} > {floor:.2f}"

    return _Doubt(severity, known & (entropy > floor), describe)
