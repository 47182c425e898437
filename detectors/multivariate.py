"""Multivariate shift: can a classifier tell window rows from reference rows?

A domain classifier sees all features at once, so it catches changes in the joint
distribution that no single column shows (a correlation that flips sign leaves every
marginal as it was). Its cross-validated ROC AUC is the score: 0.5 means the two are
indistinguishable. Gradient-boosted trees model interactions; a linear model would not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from core.results import Multivariate
from core.schema import ModelSchema

FOLDS = 3
MAX_CATEGORIES = 250  # HistGradientBoosting's limit for native categorical features


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=size, random_state=seed) if len(frame) > size else frame


def _design(
    reference: pd.DataFrame, window: pd.DataFrame, schema: ModelSchema
) -> tuple[pd.DataFrame, list[bool]]:
    both = pd.concat([reference, window], ignore_index=True)
    columns: dict[str, Any] = {}
    categorical: list[bool] = []
    for name in sorted(schema.features):
        values = both[name] if name in both else pd.Series(np.nan, index=both.index)
        if schema.features[name] == "numerical":
            columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
            categorical.append(False)
        else:
            codes = values.astype("object").where(values.notna(), None).astype("category").cat.codes
            too_many = codes.max() >= MAX_CATEGORIES
            columns[name] = codes.astype("float64").where(codes >= 0, np.nan)
            categorical.append(not too_many)
        if columns[name].isna().all():
            # missing on both sides tells them no more apart, and an all-missing
            # categorical feature fails every fit of the classifier
            del columns[name]
            categorical.pop()
    return pd.DataFrame(columns, index=both.index), categorical


def domain_classifier(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    schema: ModelSchema,
    sample: int,
    threshold: float,
    seed: int = 0,
) -> Multivariate:
    size = min(sample, len(reference), len(window))
    if size < FOLDS * 20:
        return Multivariate(status="insufficient_data", sample_size=size)
    ref = _sample(reference, size, seed)
    cur = _sample(window, size, seed + 1)
    features, categorical = _design(ref, cur, schema)
    if features.empty or features.shape[1] == 0:
        return Multivariate(status="insufficient_data", sample_size=size)
    target = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    model = HistGradientBoostingClassifier(
        max_iter=60, learning_rate=0.1, categorical_features=categorical, random_state=seed
    )
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    auc = float(np.mean(cross_val_score(model, features, target, cv=folds, scoring="roc_auc")))
    return Multivariate(
        status="ok", score=auc, threshold=threshold, drifted=auc >= threshold, sample_size=size
    )
