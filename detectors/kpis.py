"""A KPI in the window compared with the same KPI in a baseline period before it."""

from __future__ import annotations

import math
import statistics

from core.results import KpiComparison, KpiSummary


def _summary(values: list[float]) -> KpiSummary:
    return KpiSummary(
        count=len(values),
        mean=statistics.fmean(values) if values else None,
        last=values[-1] if values else None,
    )


def compare_kpi(window: list[float], baseline: list[float]) -> KpiComparison:
    comparison = KpiComparison(window=_summary(window), baseline=_summary(baseline))
    current, before = comparison.window.mean, comparison.baseline.mean
    if current is not None and before is not None:
        comparison.change = current - before
        if not math.isclose(before, 0.0):
            comparison.relative_change = comparison.change / abs(before)
    return comparison
