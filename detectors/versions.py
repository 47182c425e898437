"""Canary checks: when a window holds several model versions, compare each newer one's
prediction and confidence distributions with the most common (stable) version's."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.blocks import MODEL_VERSION
from core.schema import ModelSchema
from detectors.drift import ColumnSpec, DriftPolicy, column_drift
from detectors.performance import confidence


def compare_versions(
    window: pd.DataFrame, schema: ModelSchema, policy: DriftPolicy
) -> dict[str, Any]:
    if MODEL_VERSION not in window or schema.prediction_kind is None:
        return {}
    counts = window[MODEL_VERSION].dropna().astype(str).value_counts()
    if len(counts) < 2:
        return {}
    stable = str(counts.index[0])
    versions = window[MODEL_VERSION].astype(str)
    baseline = window[versions == stable]
    comparisons: dict[str, Any] = {}
    for version in counts.index[1:]:
        candidate = window[versions == version]
        spec = ColumnSpec(schema.prediction_column, schema.prediction_kind)
        result: dict[str, Any] = {
            "events": int(counts[version]),
            "prediction": column_drift(
                baseline[spec.name], candidate[spec.name], spec, policy
            ).model_dump(),
        }
        stable_confidence = confidence(baseline, schema)
        candidate_confidence = confidence(candidate, schema)
        if stable_confidence is not None and candidate_confidence is not None:
            result["confidence"] = column_drift(
                stable_confidence,
                candidate_confidence,
                ColumnSpec("confidence", "numerical"),
                policy,
            ).model_dump()
        comparisons[str(version)] = result
    return {"stable": stable, "events": counts.astype(int).to_dict(), "candidates": comparisons}
