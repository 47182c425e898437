"""Per-column drift: pure computation over DataFrames with Evidently's statistical tests.

This calls the same registry of tests that Evidently's ValueDrift metric calls, without
the report machinery that renders widgets inside run(); the HTML report is built
separately, on demand.

How a verdict is made (see README, "How verdicts are made"):
- The method is the column's configured one, else the model's, else the default policy.
  The "distance" policy (driftmon's default) uses what Evidently picks for references
  over 1,000 rows at every size: normed Wasserstein for numerical columns (Jensen-Shannon
  when they hold five values or fewer) and Jensen-Shannon for categorical ones. Distances
  do not shrink with sample size, so a large window does not alarm on a negligible shift.
  The "evidently" policy defers to Evidently's size-dependent choice (p-values below
  1,000 reference rows).
- A p-value method (ks, chisquare, ...) is significant on any shift once windows are
  large. It therefore drifts only when its p-value is under the threshold AND the effect
  size (normed Wasserstein, or Jensen-Shannon for categories) reaches `effect_size_floor`.
- A column with fewer than `min_column_events` usable values is insufficient_data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from core.results import ColumnResult
from core.schema import ColumnKind
from detectors.evidently_compat import ColumnType, get_stattest

P_VALUE_METHODS = frozenset(
    {
        "anderson",
        "chisquare",
        "cramer_von_mises",
        "empirical_mmd",
        "es",
        "fisher_exact",
        "g_test",
        "ks",
        "mannw",
        "t_test",
        "TVD",
        "z",
    }
)
FEW_VALUES = 5

MethodPolicy = Literal["distance", "evidently"]


@dataclass(frozen=True)
class DriftPolicy:
    default_methods: MethodPolicy = "distance"
    effect_size_floor: float = 0.1
    min_column_events: int = 200


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    method: str | None = None
    threshold: float | None = None


def clean_column(series: pd.Series, kind: ColumnKind) -> pd.Series:
    """What Evidently would compare: finite numbers, or present categories as text."""
    if kind == "numerical":
        numbers = pd.to_numeric(series, errors="coerce").astype("float64")
        return numbers.replace([np.inf, -np.inf], np.nan).dropna()
    return series.dropna().astype(str)


def column_type(kind: ColumnKind) -> ColumnType:
    return ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical


def default_method(reference: pd.Series, kind: ColumnKind) -> str:
    if kind == "categorical" or reference.nunique() <= FEW_VALUES:
        return "jensenshannon"
    return "wasserstein"


def effect_size(reference: pd.Series, current: pd.Series, kind: ColumnKind) -> float:
    method = "wasserstein" if kind == "numerical" and reference.nunique() > FEW_VALUES else None
    test = get_stattest(reference, current, column_type(kind), method or "jensenshannon")
    return float(test(reference, current, column_type(kind), None).drift_score)


def compare(
    reference: pd.Series, current: pd.Series, spec: ColumnSpec, policy: DriftPolicy
) -> ColumnResult:
    """Drift of one column from cleaned reference and window values."""
    base = ColumnResult(kind=spec.kind, reference_size=len(reference), current_size=len(current))
    smaller = min(len(reference), len(current))
    if smaller < policy.min_column_events:
        side = "reference" if len(reference) == smaller else "window"
        note = f"{smaller} usable values in the {side}; at least {policy.min_column_events} needed"
        return base.model_copy(update={"status": "insufficient_data", "note": note})
    method = spec.method
    if method is None and policy.default_methods == "distance":
        method = default_method(reference, spec.kind)
    test = get_stattest(reference, current, column_type(spec.kind), method)
    outcome = test(reference, current, column_type(spec.kind), spec.threshold)
    drifted = bool(outcome.drifted)
    update: dict[str, object] = {
        "method": test.name,
        "method_name": test.display_name,
        "score": float(outcome.drift_score),
        "threshold": float(outcome.actual_threshold),
    }
    if test.name in P_VALUE_METHODS:
        size = effect_size(reference, current, spec.kind)
        update["effect_size"] = size
        update["effect_size_floor"] = policy.effect_size_floor
        drifted = drifted and size >= policy.effect_size_floor
    update["drifted"] = drifted
    return base.model_copy(update=update)


def column_drift(
    reference: pd.Series, current: pd.Series, spec: ColumnSpec, policy: DriftPolicy
) -> ColumnResult:
    """One column's verdict; a failure is this column's error, never the run's."""
    missing = float(current.isna().mean()) if len(current) else 1.0
    try:
        result = compare(
            clean_column(reference, spec.kind), clean_column(current, spec.kind), spec, policy
        )
    except Exception as exc:  # Evidently raises many types on odd data
        result = ColumnResult(kind=spec.kind, status="error", note=f"{type(exc).__name__}: {exc}")
    return result.model_copy(update={"missing_share": missing})


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    specs: list[ColumnSpec],
    policy: DriftPolicy | None = None,
) -> dict[str, ColumnResult]:
    """One verdict per column. A column absent from the window is compared as empty,
    which gives `insufficient_data` instead of failing every other column."""
    used = policy or DriftPolicy()
    empty = pd.Series(dtype="object")
    return {
        spec.name: column_drift(
            reference.get(spec.name, empty), current.get(spec.name, empty), spec, used
        )
        for spec in specs
    }


def drifted_share(columns: dict[str, ColumnResult]) -> float | None:
    judged = [result.drifted for result in columns.values() if result.drifted is not None]
    if not judged:
        return None
    return sum(1 for drifted in judged if drifted) / len(judged)
