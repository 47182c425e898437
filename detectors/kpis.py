"""A KPI in the window compared with the same KPI in a baseline period before it."""

from __future__ import annotations

import math
import statistics
from typing import Any


def _summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "mean": statistics.fmean(values) if values else None,
        "last": values[-1] if values else None,
    }


def compare_kpi(window: list[float], baseline: list[float]) -> dict[str, Any]:
    current, before = _summary(window), _summary(baseline)
    change = relative = None
    if current["mean"] is not None and before["mean"] is not None:
        change = float(current["mean"]) - float(before["mean"])
        if not math.isclose(float(before["mean"]), 0.0):
            relative = change / abs(float(before["mean"]))
    return {"window": current, "baseline": before, "change": change, "relative_change": relative}
