"""Drift rules: one column (or every column, worst first and capped), the prediction, the
confidence, the dataset's drifted share, the joint distribution, and canary versions
against the stable one."""

from __future__ import annotations

from alerts.rules_common import RunContext, capped, num, seen, share, versus
from core.alert_config import (
    AlertRule,
    ColumnDriftRule,
    DatasetDriftRule,
    ModelVersionsRule,
    MultivariateShiftRule,
)
from core.alerts import Observation, Verdict
from core.results import ColumnResult, RunResult


def drift(
    rule: AlertRule, label: str, result: ColumnResult | None, column: str | None = None
) -> Observation:
    if result is None or result.status != "ok" or result.drifted is None:
        status = "absent" if result is None else result.status
        return seen(rule, "unknown", f"{label} drift not judged ({status})", column=column)
    outcome = "drifted" if result.drifted else "stable"
    summary = f"{label} {outcome}: " + versus(result.method, result.score, result.threshold)
    if result.effect_size is not None:
        size, floor = num(result.effect_size), num(result.effect_size_floor)
        summary += f", effect size {size} (floor {floor})"
    verdict: Verdict = "bad" if result.drifted else "good"
    return seen(rule, verdict, summary, result.score, result.threshold, column)


def every_column_drift(
    rule: ColumnDriftRule, run: RunResult, context: RunContext
) -> list[Observation]:
    ranked = sorted(run.columns.items(), key=lambda item: _drift_rank(item[0], item[1]))
    observations = [drift(rule, f"column {name}", result, name) for name, result in ranked]
    gone = sorted(context.alerting(rule) - run.columns.keys())
    observations += [drift(rule, f"column {name}", None, name) for name in gone]
    return capped(observations, context.alerting(rule), context.max_columns)


def _drift_rank(name: str, result: ColumnResult) -> tuple[int, float, str]:
    """Drifted first, the largest shift first. A p-value is no size, so p-value methods
    rank by their effect size (always set for them), distances by their score."""
    order = {True: 0, False: 1, None: 2}[result.drifted]
    size = result.effect_size if result.effect_size is not None else result.score
    return order, -(size or 0.0), name


def dataset_drift(rule: DatasetDriftRule, run: RunResult) -> Observation:
    if run.dataset_drift is None:
        return seen(rule, "unknown", "dataset drift not judged")
    drifted, threshold = run.drifted_share, run.drift_share_threshold
    summary = f"dataset drift: {share(drifted)} of columns drifted (threshold {share(threshold)})"
    return seen(rule, "bad" if run.dataset_drift else "good", summary, drifted, threshold)


def multivariate(rule: MultivariateShiftRule, run: RunResult) -> Observation:
    shift = run.multivariate
    if shift is None or shift.status != "ok" or shift.drifted is None:
        status = "absent" if shift is None else shift.status
        return seen(rule, "unknown", f"multivariate shift not judged ({status})")
    outcome = "shifted" if shift.drifted else "stable"
    summary = f"joint distribution {outcome}: " + versus(
        "domain classifier AUC", shift.score, shift.threshold
    )
    return seen(rule, "bad" if shift.drifted else "good", summary, shift.score, shift.threshold)


def model_versions(rule: ModelVersionsRule, run: RunResult) -> Observation:
    versions = run.prediction.versions
    if versions is None or not versions.candidates:
        return seen(rule, "unknown", "no newer model version in the window")
    candidates = versions.candidates
    judged = [name for name, c in candidates.items() if c.prediction.drifted is not None]
    if not judged:
        return seen(rule, "unknown", "no newer model version had enough events to compare")
    drifted = [name for name in judged if candidates[name].prediction.drifted]
    if not drifted:
        return seen(rule, "good", f"{len(judged)} newer version(s) agree with {versions.stable}")
    # the version serving the most traffic speaks for the alert
    version = min(drifted, key=lambda name: (-candidates[name].events, name))
    result = candidates[version].prediction
    summary = f"version {version} disagrees with stable {versions.stable}: " + versus(
        result.method, result.score, result.threshold
    )
    if len(drifted) > 1:
        summary += f"; {len(drifted) - 1} more version(s) disagree"
    return seen(rule, "bad", summary, result.score, result.threshold)
