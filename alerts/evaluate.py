"""What each alert rule sees in one finished run: a verdict per rule (per column for the
per-column rules), pure over the RunResult (and the labeling figures the caller read).

A run that is not `ok` tells nothing but staleness: every rule other than monitor stale
and annotator agreement is `unknown`, which neither fires nor resolves. Each rule kind
is judged in a module of its concern: `rules_drift` (column, prediction, confidence,
dataset, multivariate, model versions), `rules_quality` (data quality), `rules_bounds`
(performance, KPI), `rules_stale` (monitor stale) and `rules_labeling` (annotator
agreement, from the labeling loop's figures); `rules_common` holds what they share.
Summaries carry scores, shares, counts and names only, never feature values (PII)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.rules_bounds import kpi, performance
from alerts.rules_common import DEFAULT_MAX_COLUMNS, RunContext, run_columns, seen
from alerts.rules_drift import (
    dataset_drift,
    drift,
    every_column_drift,
    model_versions,
    multivariate,
)
from alerts.rules_labeling import AgreementsByWindow, annotator_agreement
from alerts.rules_quality import data_quality
from alerts.rules_stale import monitor_stale
from core.alert_config import (
    ANY_COLUMN,
    AlertRule,
    AnnotatorAgreementRule,
    ColumnDriftRule,
    ConfidenceDriftRule,
    DataQualityRule,
    DatasetDriftRule,
    KpiRule,
    ModelVersionsRule,
    MonitorStaleRule,
    MultivariateShiftRule,
    PerformanceRule,
    PredictionDriftRule,
)
from core.alerts import Observation
from core.results import RunResult

__all__ = ["DEFAULT_MAX_COLUMNS", "RuleObservation", "RunContext", "evaluate"]


@dataclass(frozen=True)
class RuleObservation:
    rule: AlertRule
    observation: Observation


def evaluate(
    rules: Sequence[AlertRule],
    run: RunResult,
    context: RunContext,
    agreements: AgreementsByWindow | None = None,
) -> list[RuleObservation]:
    """`agreements`: the model's annotators per window of its annotator-agreement rules
    (without them, those rules are unknown)."""
    return [
        RuleObservation(rule, observation)
        for rule in rules
        for observation in _observe(rule, run, context, agreements or {})
    ]


def _observe(
    rule: AlertRule, run: RunResult, context: RunContext, agreements: AgreementsByWindow
) -> list[Observation]:
    if isinstance(rule, MonitorStaleRule):
        return [monitor_stale(rule, run, context)]
    if isinstance(rule, AnnotatorAgreementRule):
        return annotator_agreement(rule, context, agreements)
    if run.status != "ok":
        return _run_not_ok(rule, run, context)
    match rule:
        case ColumnDriftRule(column=column) if column == ANY_COLUMN:
            return every_column_drift(rule, run, context)
        case ColumnDriftRule(column=column):
            return [drift(rule, f"column {column}", run.columns.get(column), column)]
        case PredictionDriftRule():
            return [drift(rule, "prediction", run.prediction.drift)]
        case ConfidenceDriftRule():
            return [drift(rule, "confidence", run.prediction.confidence)]
        case DataQualityRule():
            return data_quality(rule, run, context)
        case DatasetDriftRule():
            return [dataset_drift(rule, run)]
        case MultivariateShiftRule():
            return [multivariate(rule, run)]
        case PerformanceRule():
            return [performance(rule, run)]
        case KpiRule():
            return [kpi(rule, run)]
        case ModelVersionsRule():
            return [model_versions(rule, run)]


def _run_not_ok(rule: AlertRule, run: RunResult, context: RunContext) -> list[Observation]:
    summary = f"run {run.status}: no verdict"
    if isinstance(rule, ColumnDriftRule) and rule.column != ANY_COLUMN:
        return [seen(rule, "unknown", summary, column=rule.column)]
    if isinstance(rule, ColumnDriftRule | DataQualityRule):
        # the columns the run names (often none) and those with an open alert
        columns = sorted(run_columns(run) | context.alerting(rule))
        return [seen(rule, "unknown", summary, column=column) for column in columns]
    return [seen(rule, "unknown", summary)]
