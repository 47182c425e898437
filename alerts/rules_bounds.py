"""Bound rules: a performance metric or a KPI mean against fixed levels (`below`,
`above`) and against its reference or baseline (`max_drop`, `max_change`).

Bounds combine as three-valued logic: any bound crossed is `bad`; otherwise any bound
that cannot be judged makes `unknown`; otherwise `good`."""

from __future__ import annotations

from alerts.rules_common import num, seen, share
from core.alert_config import ERROR_METRICS, AlertRule, KpiRule, PerformanceMetric, PerformanceRule
from core.alerts import Observation
from core.results import QualityMetrics, RunResult


def performance(rule: PerformanceRule, run: RunResult) -> Observation:
    quality = run.performance
    if quality is None or quality.status != "ok":
        labeled = f"{quality.labeled_events} labeled events" if quality else "no labels"
        return seen(rule, "unknown", f"{rule.metric} not measured: {labeled}")
    value = _metric(quality.window, rule.metric)
    if value is None:
        return seen(rule, "unknown", f"{rule.metric} not measured for a {quality.task} model")
    checks = _level_checks(rule, rule.metric, value, rule.below, rule.above)
    if rule.max_drop is not None:
        reference = _metric(quality.reference, rule.metric)
        checks.append(_drop_check(rule, value, reference, rule.max_drop))
    return _combined(checks)


def _metric(metrics: QualityMetrics | None, metric: PerformanceMetric) -> float | None:
    value = getattr(metrics, metric, None)
    return float(value) if isinstance(value, int | float) else None


def _drop_check(
    rule: PerformanceRule, value: float, reference: float | None, max_drop: float
) -> Observation:
    if reference is None or reference == 0:
        return seen(rule, "unknown", f"{rule.metric}: no reference value to compare with")
    worse = value - reference if rule.metric in ERROR_METRICS else reference - value
    drop = worse / abs(reference)
    summary = (
        f"{rule.metric} {num(value)} vs reference {num(reference)}: "
        f"{share(drop)} worse (max_drop {share(max_drop)})"
    )
    return seen(rule, "bad" if drop >= max_drop else "good", summary, drop, max_drop)


def kpi(rule: KpiRule, run: RunResult) -> Observation:
    comparison = run.kpis.get(rule.kpi)
    if comparison is None or comparison.window.mean is None:
        return seen(rule, "unknown", f"KPI {rule.kpi} has no values in the window")
    label = f"KPI {rule.kpi} mean"
    checks = _level_checks(rule, label, comparison.window.mean, rule.below, rule.above)
    if rule.max_change is not None:
        checks.append(_change_check(rule, comparison.relative_change, rule.max_change))
    return _combined(checks)


def _change_check(rule: KpiRule, relative_change: float | None, max_change: float) -> Observation:
    if relative_change is None:
        return seen(rule, "unknown", f"KPI {rule.kpi}: no baseline to compare with")
    change = abs(relative_change)
    summary = (
        f"KPI {rule.kpi} moved {relative_change:+.1%} against its baseline "
        f"(max_change {share(max_change)})"
    )
    return seen(rule, "bad" if change >= max_change else "good", summary, change, max_change)


def _level_checks(
    rule: AlertRule, label: str, value: float, below: float | None, above: float | None
) -> list[Observation]:
    checks = []
    if below is not None:
        summary = f"{label} {num(value)} (bad below {num(below)})"
        checks.append(seen(rule, "bad" if value < below else "good", summary, value, below))
    if above is not None:
        summary = f"{label} {num(value)} (bad above {num(above)})"
        checks.append(seen(rule, "bad" if value > above else "good", summary, value, above))
    return checks


def _combined(checks: list[Observation]) -> Observation:
    """The first crossed bound; else the first that cannot be judged; else the first.
    The rules' validators guarantee at least one bound."""
    order = {"bad": 0, "unknown": 1, "good": 2}
    return min(checks, key=lambda check: order[check.verdict])
