"""Leakage suspects: columns that predict the label almost perfectly on their own, as a
column computed from the outcome (or recorded after it) does.

Classification: the ROC AUC of one column against the label; with more than two
classes, one-vs-rest for each of the most frequent classes, the best one kept.
- A numerical or datetime column is scored on its raw values, either direction
  (max(auc, 1 - auc)); a missing value ranks lowest, so missingness that tracks the
  label counts too.
- A categorical column is scored on its per-category label rate computed out of fold:
  each row's rate comes from the rows of the other folds only. An id-like column, whose
  categories never recur across folds, gets the overall rate everywhere and scores 0.5
  instead of a trivial 1.0.
Regression (a numerical label): |Spearman rho| between the column and the label; for a
categorical, the rho of its out-of-fold category mean (not flipped either).

AUCs come from ranks (the Mann-Whitney statistic), one sort per column for all classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import rankdata

from core.dataset_audit import AuditKind, AuditThresholds, LabelTask, LeakageScore
from detectors.audit_labels import class_texts

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
FOLDS = 5
MAX_CLASSES_SCORED = 20
SMOOTHING = 1.0  # pseudo-rows at the overall rate, so one row never makes a rate 0 or 1
SEED = 0x5EEDA0D1  # not a small seed: test data drawn with seed 0 would share the stream


@dataclass(frozen=True)
class LabelTarget:
    """The labelled rows, prepared once for every column."""

    task: LabelTask
    rows: Ints  # positions of the scored rows in the frame
    values: Floats  # class codes (classification) or the target (regression)
    classes: list[str]  # class names by code, most frequent first
    folds: Ints

    @property
    def scored_classes(self) -> list[int]:
        """Classes scored one-vs-rest; with two, one side is the other's mirror."""
        count = len(self.classes)
        if self.task == "regression" or count < 2:
            return []
        return [1] if count == 2 else list(range(min(count, MAX_CLASSES_SCORED)))


def label_target(label: pd.Series, task: LabelTask, sample_rows: int) -> LabelTarget:
    rng = np.random.default_rng(SEED)
    rows = np.flatnonzero(label.notna().to_numpy())
    if len(rows) > sample_rows:  # an AUC on 200k rows is within ~0.002 of the full one
        rows = np.sort(rng.choice(rows, size=sample_rows, replace=False))
    present = label.iloc[rows]
    folds = rng.permutation(len(rows)) % FOLDS  # folds of equal size
    if task == "regression":
        numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=np.float64)
        finite = np.where(np.isfinite(numbers), numbers, np.nan)
        return LabelTarget(task, rows, finite, [], folds)
    classes = class_texts(present)
    order = classes.value_counts().index.tolist()
    codes = pd.Categorical(classes, categories=order).codes.astype(np.float64)
    return LabelTarget(task, rows, codes, [str(name) for name in order], folds)


def _auc(ranks: Floats, positive: Bools) -> float | None:
    positives = int(positive.sum())
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        return None
    statistic = ranks[positive].sum() - positives * (positives + 1) / 2
    return float(statistic / (positives * negatives))


def _spearman(values: Floats, target: Floats) -> float | None:
    kept = ~np.isnan(target)
    x, y = rankdata(values[kept]), rankdata(target[kept])
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _oof_rate(codes: Ints, folds: Ints, target: Floats) -> Floats:
    """Each row's category mean of `target` over the other folds, shrunk toward the
    other folds' overall mean by SMOOTHING rows."""
    width = int(codes.max()) + 1 if len(codes) else 1
    cells = folds * width + codes
    sums = np.bincount(cells, weights=target, minlength=FOLDS * width).reshape(FOLDS, width)
    counts = np.bincount(cells, minlength=FOLDS * width).reshape(FOLDS, width)
    other_sums, other_counts = sums.sum(axis=0) - sums, counts.sum(axis=0) - counts
    prior = other_sums.sum(axis=1) / np.maximum(other_counts.sum(axis=1), 1)
    row_sums, row_counts = other_sums[folds, codes], other_counts[folds, codes]
    rates = (row_sums + SMOOTHING * prior[folds]) / (row_counts + SMOOTHING)
    return np.asarray(rates, dtype=np.float64)


def _numeric(series: pd.Series) -> Floats:
    if pd.api.types.is_datetime64_any_dtype(series):  # seconds since the epoch; NaT is NaN
        seconds = (series - pd.Timestamp(0, tz=series.dt.tz)) / pd.Timedelta(seconds=1)
        values = seconds.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(values), -np.inf, values)  # missing ranks lowest


def _codes(series: pd.Series) -> Ints:
    """Category codes; missing is a category of its own."""
    return pd.factorize(series, use_na_sentinel=False)[0].astype(np.int64)


def _best_auc(
    scores: list[tuple[float | None, int]], target: LabelTarget
) -> tuple[float | None, str | None]:
    judged = [(auc, code) for auc, code in scores if auc is not None]
    if not judged:
        return None, None
    auc, code = max(judged)
    return auc, target.classes[code] if len(target.classes) > 2 else None


def _classification(series: pd.Series, kind: AuditKind, target: LabelTarget) -> LeakageScore:
    scores: list[tuple[float | None, int]] = []
    if kind == "categorical":
        codes = _codes(series)
        for code in target.scored_classes:
            positive = target.values == code
            rate = _oof_rate(codes, target.folds, positive.astype("float64"))
            scores.append((_auc(rankdata(rate), positive), code))
    else:
        ranks = rankdata(_numeric(series))
        for code in target.scored_classes:
            auc = _auc(ranks, target.values == code)
            scores.append((None if auc is None else max(auc, 1 - auc), code))
    auc, positive_class = _best_auc(scores, target)
    return LeakageScore(
        column=str(series.name),
        metric="auc",
        score=auc,
        positive_class=positive_class,
        suspect=False,
    )


def _regression(series: pd.Series, kind: AuditKind, target: LabelTarget) -> LeakageScore:
    """|rho| of a numerical column; the signed rho of a categorical's out-of-fold mean,
    whose inverse relation to the label is the encoding's noise, never a signal."""
    finite = ~np.isnan(target.values)
    if kind != "categorical":
        rho = _spearman(_numeric(series), target.values)
        score = None if rho is None else abs(rho)
    elif finite.any():
        known = np.where(finite, target.values, target.values[finite].mean())
        score = _spearman(_oof_rate(_codes(series), target.folds, known), target.values)
    else:
        score = None
    return LeakageScore(column=str(series.name), metric="spearman", score=score, suspect=False)


def leakage_scores(
    features: pd.DataFrame,
    kinds: dict[str, AuditKind],
    target: LabelTarget,
    thresholds: AuditThresholds,
) -> list[LeakageScore]:
    """One score per column, the suspects flagged, highest scores first."""
    scored = features.iloc[target.rows]
    line = thresholds.leakage_spearman if target.task == "regression" else thresholds.leakage_auc
    results: list[LeakageScore] = []
    for name in scored.columns:
        score_column = _regression if target.task == "regression" else _classification
        result = score_column(scored[name], kinds[name], target)
        suspect = result.score is not None and result.score >= line
        results.append(result.model_copy(update={"suspect": suspect}))
    return sorted(results, key=lambda result: -(result.score or 0.0))
