"""Model quality once ground truth arrives: classification or regression metrics for
the window and for the reference, their drop, label coverage, and label drift; and,
when some labels came from the labeling queue, how many, and the metrics on its random
share alone (the queue's other picks lean towards errors, so they bias the window's)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from core.results import (
    ClassificationMetrics,
    Performance,
    QualityMetrics,
    RandomEstimate,
    RegressionMetrics,
)
from core.schema import ModelSchema
from detectors.drift import ColumnSpec, DriftPolicy, column_drift

# the random estimate's least floor of labeled events (see random_floor)
RANDOM_MIN_LABELS = 10


def _binary_scores(frame: pd.DataFrame, schema: ModelSchema, positive: str) -> pd.Series | None:
    column = schema.scores.get(positive)
    if column is None or column not in frame:
        return None
    scores = pd.to_numeric(frame[column], errors="coerce")
    return None if scores.isna().any() else scores


def classification_quality(frame: pd.DataFrame, schema: ModelSchema) -> ClassificationMetrics:
    truth = frame[schema.label_column].astype(str)
    predicted = frame[schema.prediction_column].astype(str)
    classes = sorted(set(truth) | set(predicted))
    positive = schema.positive_class
    binary = len(classes) <= 2 and positive is not None
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": positive} if binary else {"average": "macro"}
    )
    if binary and positive not in classes:
        averaging = {"average": "macro"}
    out = ClassificationMetrics(
        accuracy=float(skm.accuracy_score(truth, predicted)),
        precision=float(skm.precision_score(truth, predicted, zero_division=0, **averaging)),
        recall=float(skm.recall_score(truth, predicted, zero_division=0, **averaging)),
        f1=float(skm.f1_score(truth, predicted, zero_division=0, **averaging)),
    )
    scores = _binary_scores(frame, schema, positive) if positive else None
    if scores is not None and truth.nunique() == 2:
        out.roc_auc = float(skm.roc_auc_score(truth == positive, scores))
    return out


def regression_quality(frame: pd.DataFrame, schema: ModelSchema) -> RegressionMetrics:
    truth = pd.to_numeric(frame[schema.label_column], errors="coerce")
    predicted = pd.to_numeric(frame[schema.prediction_column], errors="coerce")
    error = (predicted - truth).dropna()
    return RegressionMetrics(
        mae=float(error.abs().mean()),
        rmse=float(math.sqrt((error**2).mean())),
        mean_error=float(error.mean()),
    )


def _quality(frame: pd.DataFrame, schema: ModelSchema) -> QualityMetrics:
    if schema.prediction_kind == "numerical":
        return regression_quality(frame, schema)
    return classification_quality(frame, schema)


def _labeled(frame: pd.DataFrame, schema: ModelSchema) -> pd.DataFrame:
    needed = [schema.label_column, schema.prediction_column]
    if any(column not in frame for column in needed):
        return frame.iloc[0:0]
    return frame.dropna(subset=needed)


def performance(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    schema: ModelSchema,
    min_labels: int,
    policy: DriftPolicy,
    origins: pd.Series | None = None,
) -> Performance | None:
    """None when the model has no prediction column; otherwise coverage always, and
    metrics once at least `min_labels` window events carry ground truth (from wherever
    it came). `origins`, on the window's index: True where the row's label came from
    the labeling queue's random share, False from its other picks, NaN otherwise; the
    queue's count and the random estimate come from it, whatever the status."""
    if schema.prediction is None or schema.prediction_kind is None:
        return None
    labeled = _labeled(window, schema)
    out = Performance(
        task="regression" if schema.prediction_kind == "numerical" else "classification",
        labeled_events=len(labeled),
        label_coverage=len(labeled) / len(window) if len(window) else 0.0,
        min_labeled_events=min_labels,
        status="insufficient_labels",
    )
    if origins is not None:
        _queue_labels(out, labeled, origins, schema)
    if len(labeled) < min_labels:
        return out
    out.status = "ok"
    out.window = _quality(labeled, schema)
    reference_labeled = _labeled(reference, schema) if schema.label else reference.iloc[0:0]
    if len(reference_labeled):
        out.reference = _quality(reference_labeled, schema)
        out.drop = _drop(out.reference, out.window)
        spec = ColumnSpec(schema.label_column, schema.prediction_kind)
        out.label_drift = column_drift(
            reference_labeled[schema.label_column], labeled[schema.label_column], spec, policy
        )
    return out


def random_floor(min_labels: int) -> int:
    """The random share's floor of labeled events for metrics: a fifth of the run's
    `min_labeled_events`, at least RANDOM_MIN_LABELS, never above the run's own. It is
    lower than the run's because the random share is a small part of the labels; its
    metrics are noisier for it, an estimate beside the window's."""
    return min(min_labels, max(RANDOM_MIN_LABELS, min_labels // 5))


def _queue_labels(
    out: Performance, labeled: pd.DataFrame, origins: pd.Series, schema: ModelSchema
) -> None:
    """The labeled rows whose label came from the queue, counted; the quality on those
    of its random share, an unbiased sample of the window's events. Nothing when no
    labeled row's label came from the queue."""
    queue = origins.reindex(labeled.index).dropna()
    if queue.empty:
        return
    sampled = labeled.loc[queue.index[queue.astype(bool)]]
    floor = random_floor(out.min_labeled_events)
    out.labels_from_queue = len(queue)
    out.random_estimate = RandomEstimate(
        labeled_events=len(sampled),
        min_labeled_events=floor,
        window=_quality(sampled, schema) if len(sampled) >= max(floor, 1) else None,
    )


def _drop(baseline: QualityMetrics, current: QualityMetrics) -> QualityMetrics:
    """Baseline minus current, for each metric both have."""
    before = baseline.model_dump()
    drops = {
        name: before[name] - value for name, value in current.model_dump().items() if name in before
    }
    return type(current).model_validate(drops)


def confidence(frame: pd.DataFrame, schema: ModelSchema) -> pd.Series | None:
    """The model's confidence per event: the top class probability when several class
    scores are known, else the positive class's probability."""
    columns = [column for column in schema.scores.values() if column in frame]
    if not columns:
        return None
    scores = frame[columns].apply(pd.to_numeric, errors="coerce")
    values = scores.max(axis=1) if len(columns) > 1 else scores[columns[0]]
    finite: pd.Series = values.astype("float64").replace([np.inf, -np.inf], np.nan)
    return finite
