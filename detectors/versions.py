"""Canary checks: when a window holds several model versions, compare each newer one's
prediction and confidence distributions with the most common (stable) version's.

Only the `max_versions` most frequent versions are compared: each comparison scans the
window, so 20,000 versions (one per event, say, when a build id is sent as the version)
took minutes and a result of megabytes. The rest are counted together."""

from __future__ import annotations

import pandas as pd

from core.blocks import MODEL_VERSION
from core.results import ColumnResult, ModelVersions, VersionComparison
from core.schema import ModelSchema
from detectors.drift import ColumnSpec, DriftPolicy, column_drift
from detectors.performance import confidence

DEFAULT_MAX_VERSIONS = 10


def compare_versions(
    window: pd.DataFrame,
    schema: ModelSchema,
    policy: DriftPolicy,
    max_versions: int = DEFAULT_MAX_VERSIONS,
) -> ModelVersions | None:
    """None unless the window holds at least two model versions."""
    if MODEL_VERSION not in window or schema.prediction_kind is None:
        return None
    counts = ranked_versions(window[MODEL_VERSION])
    if len(counts) < 2:
        return None
    kept, others = counts.iloc[:max_versions], counts.iloc[max_versions:]
    stable = str(kept.index[0])
    versions = window[MODEL_VERSION].astype(str)
    baseline = window[versions == stable]
    spec = ColumnSpec(schema.prediction_column, schema.prediction_kind)
    candidates: dict[str, VersionComparison] = {}
    for version in kept.index[1:]:
        candidate = window[versions == version]
        candidates[str(version)] = VersionComparison(
            events=int(kept[version]),
            prediction=column_drift(baseline[spec.name], candidate[spec.name], spec, policy),
            confidence=_confidence_drift(baseline, candidate, schema, policy),
        )
    return ModelVersions(
        stable=stable,
        events={str(version): int(count) for version, count in kept.items()},
        candidates=candidates,
        other_versions=len(others) or None,
        other_events=int(others.sum()) or None,
    )


def ranked_versions(versions: pd.Series) -> pd.Series:
    """Events per version, most first; ties by name, so that every replica keeps the
    same versions when the cap cuts between equals."""
    counts = versions.dropna().astype(str).value_counts()
    return counts.sort_index().sort_values(ascending=False, kind="stable")


def _confidence_drift(
    baseline: pd.DataFrame, candidate: pd.DataFrame, schema: ModelSchema, policy: DriftPolicy
) -> ColumnResult | None:
    stable_confidence = confidence(baseline, schema)
    candidate_confidence = confidence(candidate, schema)
    if stable_confidence is None or candidate_confidence is None:
        return None
    spec = ColumnSpec("confidence", "numerical")
    return column_drift(stable_confidence, candidate_confidence, spec, policy)
