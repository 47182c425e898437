"""Per-column drift: pure computation over DataFrames with Evidently's statistical tests.

This calls the same registry of tests that Evidently's ValueDrift metric calls (method
chosen by Evidently's defaults unless configured), without the report machinery that
renders widgets inside run(); the HTML report is built separately, on demand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.evidently_compat import ColumnType, get_stattest
from detectors.result import ColumnResult
from service.schema import ColumnKind


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


def column_drift(reference: pd.Series, current: pd.Series, spec: ColumnSpec) -> ColumnResult:
    missing = float(current.isna().mean()) if len(current) else 0.0
    ref = clean_column(reference, spec.kind)
    cur = clean_column(current, spec.kind)
    base = ColumnResult(
        kind=spec.kind,
        missing_share=missing,
        reference_size=len(ref),
        current_size=len(cur),
    )
    if ref.empty or cur.empty:
        side = "reference" if ref.empty else "window"
        return base.model_copy(
            update={"status": "no_data", "note": f"no usable values in the {side}"}
        )
    column_type = ColumnType.Numerical if spec.kind == "numerical" else ColumnType.Categorical
    test = get_stattest(ref, cur, column_type, spec.method)
    outcome = test(ref, cur, column_type, spec.threshold)
    return base.model_copy(
        update={
            "method": test.name,
            "method_name": test.display_name,
            "score": float(outcome.drift_score),
            "threshold": float(outcome.actual_threshold),
            "drifted": bool(outcome.drifted),
        }
    )


def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, specs: list[ColumnSpec]
) -> dict[str, ColumnResult]:
    """One verdict per column. A column absent from the window is compared as empty,
    which gives `no_data` instead of failing every other column."""
    results: dict[str, ColumnResult] = {}
    for spec in specs:
        ref = reference[spec.name] if spec.name in reference else pd.Series(dtype="object")
        cur = current[spec.name] if spec.name in current else pd.Series(dtype="object")
        results[spec.name] = column_drift(ref, cur, spec)
    return results


def drifted_share(columns: dict[str, ColumnResult]) -> float | None:
    judged = [result.drifted for result in columns.values() if result.drifted is not None]
    if not judged:
        return None
    return sum(1 for drifted in judged if drifted) / len(judged)
