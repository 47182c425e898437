"""Canary checks: when a window holds several model versions, compare each newer one's
prediction and confidence distributions with the most common (stable) version's."""

from __future__ import annotations

import pandas as pd

from core.blocks import MODEL_VERSION
from core.results import ColumnResult, ModelVersions, VersionComparison
from core.schema import ModelSchema
from detectors.drift import ColumnSpec, DriftPolicy, column_drift
from detectors.performance import confidence


def compare_versions(
    window: pd.DataFrame, schema: ModelSchema, policy: DriftPolicy
) -> ModelVersions | None:
    """None unless the window holds at least two model versions."""
    if MODEL_VERSION not in window or schema.prediction_kind is None:
        return None
    counts = window[MODEL_VERSION].dropna().astype(str).value_counts()
    if len(counts) < 2:
        return None
    stable = str(counts.index[0])
    versions = window[MODEL_VERSION].astype(str)
    baseline = window[versions == stable]
    spec = ColumnSpec(schema.prediction_column, schema.prediction_kind)
    candidates: dict[str, VersionComparison] = {}
    for version in counts.index[1:]:
        candidate = window[versions == version]
        candidates[str(version)] = VersionComparison(
            events=int(counts[version]),
            prediction=column_drift(baseline[spec.name], candidate[spec.name], spec, policy),
            confidence=_confidence_drift(baseline, candidate, schema, policy),
        )
    events = {str(version): int(count) for version, count in counts.items()}
    return ModelVersions(stable=stable, events=events, candidates=candidates)


def _confidence_drift(
    baseline: pd.DataFrame, candidate: pd.DataFrame, schema: ModelSchema, policy: DriftPolicy
) -> ColumnResult | None:
    stable_confidence = confidence(baseline, schema)
    candidate_confidence = confidence(candidate, schema)
    if stable_confidence is None or candidate_confidence is None:
        return None
    spec = ColumnSpec("confidence", "numerical")
    return column_drift(stable_confidence, candidate_confidence, spec, policy)
