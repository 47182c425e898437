"""Business KPIs beside the model's inputs (conversion rate, approval rate, revenue per
request...): each point checked before it is stored.

KPI names become Prometheus label values, so they are checked against a strict pattern
and capped per model: a typo cannot grow the series count without bound."""

from __future__ import annotations

import math
import re

from collectors.events import DEFAULT_LIMITS, RecordError, RecordLimits, parse_timestamp
from core.stores.kpis import KpiPoint

KPI_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")


def parse_kpi(record: object, now: float, limits: RecordLimits = DEFAULT_LIMITS) -> KpiPoint:
    if not isinstance(record, dict):
        raise RecordError("record", "must be an object with name, value and timestamp")
    name = record.get("name")
    if not isinstance(name, str) or not KPI_NAME.match(name):
        raise RecordError("name", f"must match {KPI_NAME.pattern}")
    value = record.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError("value", "must be a finite number", "type_mismatch")
    return KpiPoint(name, float(value), parse_timestamp(record.get("timestamp"), now, limits))
