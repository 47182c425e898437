"""The domain classifier on windows with features missing everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import ModelSchema
from detectors.multivariate import domain_classifier

SCHEMA = ModelSchema(
    features={"x": "numerical", "y": "numerical", "tier": "categorical", "gone": "numerical"}
)


def frame(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.normal(0.0, 1.0, rows),
            "tier": pd.Series([None] * rows, dtype="object"),
            "gone": np.full(rows, np.nan),
        }
    )


def test_features_missing_on_both_sides_are_left_out_not_fatal() -> None:
    rng = np.random.default_rng(7)
    reference, same, shifted = frame(rng, 600, 0.0), frame(rng, 600, 0.0), frame(rng, 600, 2.0)

    calm = domain_classifier(reference, same, SCHEMA, sample=600, threshold=0.6)
    moved = domain_classifier(reference, shifted, SCHEMA, sample=600, threshold=0.6)

    assert calm.status == "ok"
    assert moved.status == "ok"
    assert calm.drifted is False
    assert moved.drifted is True
    assert moved.score is not None
    assert moved.score > 0.8


def test_nothing_but_missing_features_is_insufficient_data() -> None:
    schema = ModelSchema(features={"tier": "categorical", "gone": "numerical"})
    rng = np.random.default_rng(3)
    window = frame(rng, 600, 0.0)[["tier", "gone"]]

    result = domain_classifier(window, window.copy(), schema, sample=600, threshold=0.6)

    assert result.status == "insufficient_data"
