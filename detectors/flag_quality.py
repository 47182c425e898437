"""The data-quality reason: the samples carrying what a finding of the run names (missing
values, values outside the reference's range, unseen categories), as severe as the
finding. PII columns' values are never quoted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.results import ColumnQuality, RunResult
from core.schema import ModelSchema
from detectors.flag_candidates import Candidates, numbers
from detectors.flag_drift import outside_range

FINDING_SEVERITY = {"info": 0.4, "warning": 0.7, "critical": 1.0}


def quality_suspects(
    window: pd.DataFrame, reference: pd.DataFrame, run: RunResult, schema: ModelSchema
) -> list[Candidates]:
    quality = run.data_quality
    if quality is None:
        return []
    parts: list[Candidates] = []
    for finding in quality.findings:
        name = finding.column
        stats = quality.columns.get(name)
        if name not in window or name not in schema.features or stats is None:
            continue
        base = FINDING_SEVERITY[finding.severity]
        pii = name in schema.pii
        if finding.check == "missing_values":
            parts.append(_missing(name, window[name], stats, base))
        elif finding.check == "out_of_range" and stats.reference_range is not None:
            values = numbers(window[name])
            parts.append(outside_range(name, values, stats.reference_range, pii, 0.75, base))
        elif finding.check == "unseen_categories" and name in reference:
            parts.append(_unseen(name, window[name], reference[name], pii, base))
    return parts


def _missing(name: str, current: pd.Series, stats: ColumnQuality, base: float) -> Candidates:
    positions = np.flatnonzero(current.isna().to_numpy(dtype=bool))
    # a column the reference always had is the more suspect for going missing
    had_none = stats.reference_missing_share == 0
    severity = np.full(len(positions), base if had_none else 0.8 * base)
    before = (
        "the reference had none"
        if had_none
        else f"{stats.reference_missing_share:.1%} of the reference"
    )
    detail = f"{name} missing ({stats.missing_share:.1%} of the window; {before})"

    def describe(position: int) -> str:
        return detail

    return Candidates(positions, severity, describe)


def _unseen(
    name: str, current: pd.Series, reference: pd.Series, pii: bool, base: float
) -> Candidates:
    known = pd.unique(reference.dropna().astype(str))
    present = current.notna().to_numpy(dtype=bool)
    text = current.astype(str)
    unseen = present & ~text.isin(known).to_numpy(dtype=bool)
    positions = np.flatnonzero(unseen)
    values = current.to_numpy(dtype=object)

    def describe(position: int) -> str:
        value = str(values[position])
        return f"{name}: unseen category" if pii else f"{name}: unseen category {value!r}"

    return Candidates(positions, np.full(len(positions), base), describe)
