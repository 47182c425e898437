"""What each alert rule sees in one finished run: a verdict per rule (per column for the
per-column rules), pure over the RunResult.

A run that is not `ok` tells nothing but staleness: every other rule is `unknown`, which
neither fires nor resolves. Bounds combine as three-valued logic: any bound crossed is
`bad`; otherwise any bound that cannot be judged makes `unknown`; otherwise `good`.
Summaries carry scores, shares, counts and names only, never feature values (PII)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.alert_config import (
    ANY_COLUMN,
    ERROR_METRICS,
    SEVERITY_ORDER,
    AlertRule,
    ColumnDriftRule,
    ConfidenceDriftRule,
    DataQualityRule,
    DatasetDriftRule,
    KpiRule,
    ModelVersionsRule,
    MonitorStaleRule,
    MultivariateShiftRule,
    PerformanceMetric,
    PerformanceRule,
    PredictionDriftRule,
)
from core.alerts import Observation, Verdict
from core.results import ColumnResult, DataQuality, Finding, QualityMetrics, RunResult

DEFAULT_MAX_COLUMNS = 50
# findings whose value counts records; the others are shares
COUNT_CHECKS = frozenset({"type_mismatch", "new_column"})


@dataclass(frozen=True)
class RunContext:
    now: float  # unix seconds
    schedule_seconds: float
    # start of the model's newest ok run, this one included
    last_ok_at: float | None = None
    # when the model was created or first seen, so a model never ok still goes stale
    monitored_since: float | None = None
    # bad per-column observations of one rule beyond this are left out, worst kept
    max_columns: int = DEFAULT_MAX_COLUMNS
    # rule name -> columns with a pending or firing alert: never capped out, and given a
    # verdict even when the run no longer names them, so that their alerts can resolve
    alerting_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def alerting(self, rule: AlertRule) -> frozenset[str]:
        return self.alerting_columns.get(rule.name, frozenset())


@dataclass(frozen=True)
class RuleObservation:
    rule: AlertRule
    observation: Observation


def evaluate(
    rules: Sequence[AlertRule], run: RunResult, context: RunContext
) -> list[RuleObservation]:
    return [RuleObservation(rule, seen) for rule in rules for seen in _observe(rule, run, context)]


def _observe(rule: AlertRule, run: RunResult, context: RunContext) -> list[Observation]:
    if isinstance(rule, MonitorStaleRule):
        return [_monitor_stale(rule, run, context)]
    if run.status != "ok":
        return _run_not_ok(rule, run, context)
    match rule:
        case ColumnDriftRule(column=column) if column == ANY_COLUMN:
            return _every_column_drift(rule, run, context)
        case ColumnDriftRule(column=column):
            return [_drift(rule, f"column {column}", run.columns.get(column), column)]
        case PredictionDriftRule():
            return [_drift(rule, "prediction", run.prediction.drift)]
        case ConfidenceDriftRule():
            return [_drift(rule, "confidence", run.prediction.confidence)]
        case DataQualityRule():
            return _data_quality(rule, run, context)
        case DatasetDriftRule():
            return [_dataset_drift(rule, run)]
        case MultivariateShiftRule():
            return [_multivariate(rule, run)]
        case PerformanceRule():
            return [_performance(rule, run)]
        case KpiRule():
            return [_kpi(rule, run)]
        case ModelVersionsRule():
            return [_model_versions(rule, run)]


def _seen(
    rule: AlertRule,
    verdict: Verdict,
    summary: str,
    value: float | None = None,
    threshold: float | None = None,
    column: str | None = None,
) -> Observation:
    return Observation(
        rule=rule.name,
        column=column,
        verdict=verdict,
        value=value,
        threshold=threshold,
        summary=summary,
    )


def _run_not_ok(rule: AlertRule, run: RunResult, context: RunContext) -> list[Observation]:
    summary = f"run {run.status}: no verdict"
    if isinstance(rule, ColumnDriftRule) and rule.column != ANY_COLUMN:
        return [_seen(rule, "unknown", summary, column=rule.column)]
    if isinstance(rule, ColumnDriftRule | DataQualityRule):
        # the columns the run names (often none) and those with an open alert
        columns = sorted(_run_columns(run) | context.alerting(rule))
        return [_seen(rule, "unknown", summary, column=column) for column in columns]
    return [_seen(rule, "unknown", summary)]


def _monitor_stale(rule: MonitorStaleRule, run: RunResult, context: RunContext) -> Observation:
    limit = rule.intervals * context.schedule_seconds
    if run.status == "ok":
        return _seen(rule, "good", "an ok run arrived", 0.0, limit)
    anchor = context.last_ok_at if context.last_ok_at is not None else context.monitored_since
    elapsed = context.now - (anchor if anchor is not None else context.now)
    since = "ever" if context.last_ok_at is None else f"for {_duration(elapsed)}"
    summary = f"no ok run {since} (limit {rule.intervals} intervals); latest run {run.status}"
    # without a schedule there is no interval to miss
    verdict: Verdict = "bad" if limit > 0 and elapsed >= limit else "unknown"
    return _seen(rule, verdict, summary, elapsed, limit)


def _dataset_drift(rule: DatasetDriftRule, run: RunResult) -> Observation:
    if run.dataset_drift is None:
        return _seen(rule, "unknown", "dataset drift not judged")
    share, threshold = run.drifted_share, run.drift_share_threshold
    summary = f"dataset drift: {_share(share)} of columns drifted (threshold {_share(threshold)})"
    return _seen(rule, "bad" if run.dataset_drift else "good", summary, share, threshold)


def _drift(
    rule: AlertRule, label: str, result: ColumnResult | None, column: str | None = None
) -> Observation:
    if result is None or result.status != "ok" or result.drifted is None:
        status = "absent" if result is None else result.status
        return _seen(rule, "unknown", f"{label} drift not judged ({status})", column=column)
    outcome = "drifted" if result.drifted else "stable"
    summary = f"{label} {outcome}: " + _versus(result.method, result.score, result.threshold)
    if result.effect_size is not None:
        size, floor = _num(result.effect_size), _num(result.effect_size_floor)
        summary += f", effect size {size} (floor {floor})"
    verdict: Verdict = "bad" if result.drifted else "good"
    return _seen(rule, verdict, summary, result.score, result.threshold, column)


def _every_column_drift(
    rule: ColumnDriftRule, run: RunResult, context: RunContext
) -> list[Observation]:
    ranked = sorted(run.columns.items(), key=lambda item: _drift_rank(item[0], item[1]))
    observations = [_drift(rule, f"column {name}", result, name) for name, result in ranked]
    gone = sorted(context.alerting(rule) - run.columns.keys())
    observations += [_drift(rule, f"column {name}", None, name) for name in gone]
    return _capped(observations, context.alerting(rule), context.max_columns)


def _drift_rank(name: str, result: ColumnResult) -> tuple[int, float, str]:
    """Drifted first, the largest shift first. A p-value is no size, so p-value methods
    rank by their effect size (always set for them), distances by their score."""
    order = {True: 0, False: 1, None: 2}[result.drifted]
    size = result.effect_size if result.effect_size is not None else result.score
    return order, -(size or 0.0), name


def _capped(
    observations: list[Observation], alerting: frozenset[str], cap: int
) -> list[Observation]:
    """Bad observations in the given order up to `cap` bad columns, the alerting ones
    counted and always kept; good and unknown ones all stay, so every alert can resolve."""
    slots = cap - sum(1 for o in observations if o.verdict == "bad" and o.column in alerting)
    kept: list[Observation] = []
    for observation in observations:
        if observation.verdict == "bad" and observation.column not in alerting:
            if slots <= 0:
                continue
            slots -= 1
        kept.append(observation)
    return kept


def _multivariate(rule: MultivariateShiftRule, run: RunResult) -> Observation:
    shift = run.multivariate
    if shift is None or shift.status != "ok" or shift.drifted is None:
        status = "absent" if shift is None else shift.status
        return _seen(rule, "unknown", f"multivariate shift not judged ({status})")
    outcome = "shifted" if shift.drifted else "stable"
    summary = f"joint distribution {outcome}: " + _versus(
        "domain classifier AUC", shift.score, shift.threshold
    )
    return _seen(rule, "bad" if shift.drifted else "good", summary, shift.score, shift.threshold)


def _run_columns(run: RunResult) -> set[str]:
    quality = run.data_quality.columns if run.data_quality is not None else {}
    return set(run.columns) | set(quality)


def _data_quality(rule: DataQualityRule, run: RunResult, context: RunContext) -> list[Observation]:
    quality, alerting = run.data_quality, context.alerting(rule)
    if quality is None:
        columns = sorted(_run_columns(run) | alerting)
        return [_seen(rule, "unknown", "data quality not checked", column=c) for c in columns]
    by_column: dict[str, list[Finding]] = {}
    for finding in quality.findings:
        if _counts(finding, rule):
            by_column.setdefault(finding.column, []).append(finding)
    worst_first = sorted(by_column.items(), key=lambda item: _quality_rank(*item))
    observations = [_quality_bad(rule, column, findings) for column, findings in worst_first]
    clean = sorted((_run_columns(run) | alerting) - by_column.keys())
    # with findings left out by the detector's cap, a clean-looking column may not be
    verdict: Verdict = "unknown" if _findings_hidden(quality, rule) else "good"
    summary = f"no {rule.min_severity}+ finding" + (" listed" if verdict == "unknown" else "")
    observations += [_seen(rule, verdict, summary, column=column) for column in clean]
    return _capped(observations, alerting, context.max_columns)


def _counts(finding: Finding, rule: DataQualityRule) -> bool:
    severe = SEVERITY_ORDER[finding.severity] >= SEVERITY_ORDER[rule.min_severity]
    return severe and (rule.checks is None or finding.check in rule.checks)


def _quality_rank(column: str, findings: list[Finding]) -> tuple[int, float, str]:
    worst = _worst(findings)
    return -SEVERITY_ORDER[worst.severity], -float(worst.value), column


def _worst(findings: list[Finding]) -> Finding:
    return max(findings, key=lambda finding: (SEVERITY_ORDER[finding.severity], finding.value))


def _findings_hidden(quality: DataQuality, rule: DataQualityRule) -> bool:
    """Whether findings the detector left out could count for this rule. It keeps the
    most severe of each check, so the omitted ones are no worse than the mildest kept."""
    for check in quality.omitted_findings or {}:
        if rule.checks is not None and check not in rule.checks:
            continue
        kept = [SEVERITY_ORDER[f.severity] for f in quality.findings if f.check == check]
        if min(kept, default=SEVERITY_ORDER["critical"]) >= SEVERITY_ORDER[rule.min_severity]:
            return True
    return False


def _quality_bad(rule: DataQualityRule, column: str, findings: list[Finding]) -> Observation:
    ordered = sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.check))
    # not the detector's messages: built from checks and numbers only, never from values
    parts = ", ".join(f"{f.check} {_finding_value(f)} ({f.severity})" for f in ordered)
    summary = f"data quality of {column}: {parts}"
    return _seen(rule, "bad", summary, float(_worst(findings).value), column=column)


def _finding_value(finding: Finding) -> str:
    if finding.check in COUNT_CHECKS:
        return f"{int(finding.value)} records"
    return _share(float(finding.value))


def _performance(rule: PerformanceRule, run: RunResult) -> Observation:
    quality = run.performance
    if quality is None or quality.status != "ok":
        labeled = f"{quality.labeled_events} labeled events" if quality else "no labels"
        return _seen(rule, "unknown", f"{rule.metric} not measured: {labeled}")
    value = _metric(quality.window, rule.metric)
    if value is None:
        return _seen(rule, "unknown", f"{rule.metric} not measured for a {quality.task} model")
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
        return _seen(rule, "unknown", f"{rule.metric}: no reference value to compare with")
    worse = value - reference if rule.metric in ERROR_METRICS else reference - value
    drop = worse / abs(reference)
    summary = (
        f"{rule.metric} {_num(value)} vs reference {_num(reference)}: "
        f"{_share(drop)} worse (max_drop {_share(max_drop)})"
    )
    return _seen(rule, "bad" if drop >= max_drop else "good", summary, drop, max_drop)


def _kpi(rule: KpiRule, run: RunResult) -> Observation:
    comparison = run.kpis.get(rule.kpi)
    if comparison is None or comparison.window.mean is None:
        return _seen(rule, "unknown", f"KPI {rule.kpi} has no values in the window")
    label = f"KPI {rule.kpi} mean"
    checks = _level_checks(rule, label, comparison.window.mean, rule.below, rule.above)
    if rule.max_change is not None:
        checks.append(_change_check(rule, comparison.relative_change, rule.max_change))
    return _combined(checks)


def _change_check(rule: KpiRule, relative_change: float | None, max_change: float) -> Observation:
    if relative_change is None:
        return _seen(rule, "unknown", f"KPI {rule.kpi}: no baseline to compare with")
    change = abs(relative_change)
    summary = (
        f"KPI {rule.kpi} moved {relative_change:+.1%} against its baseline "
        f"(max_change {_share(max_change)})"
    )
    return _seen(rule, "bad" if change >= max_change else "good", summary, change, max_change)


def _level_checks(
    rule: AlertRule, label: str, value: float, below: float | None, above: float | None
) -> list[Observation]:
    checks = []
    if below is not None:
        summary = f"{label} {_num(value)} (bad below {_num(below)})"
        checks.append(_seen(rule, "bad" if value < below else "good", summary, value, below))
    if above is not None:
        summary = f"{label} {_num(value)} (bad above {_num(above)})"
        checks.append(_seen(rule, "bad" if value > above else "good", summary, value, above))
    return checks


def _combined(checks: list[Observation]) -> Observation:
    """The first crossed bound; else the first that cannot be judged; else the first.
    The rules' validators guarantee at least one bound."""
    order = {"bad": 0, "unknown": 1, "good": 2}
    return min(checks, key=lambda check: order[check.verdict])


def _model_versions(rule: ModelVersionsRule, run: RunResult) -> Observation:
    versions = run.prediction.versions
    if versions is None or not versions.candidates:
        return _seen(rule, "unknown", "no newer model version in the window")
    candidates = versions.candidates
    judged = [name for name, c in candidates.items() if c.prediction.drifted is not None]
    if not judged:
        return _seen(rule, "unknown", "no newer model version had enough events to compare")
    drifted = [name for name in judged if candidates[name].prediction.drifted]
    if not drifted:
        return _seen(rule, "good", f"{len(judged)} newer version(s) agree with {versions.stable}")
    # the version serving the most traffic speaks for the alert
    version = min(drifted, key=lambda name: (-candidates[name].events, name))
    result = candidates[version].prediction
    summary = f"version {version} disagrees with stable {versions.stable}: " + _versus(
        result.method, result.score, result.threshold
    )
    if len(drifted) > 1:
        summary += f"; {len(drifted) - 1} more version(s) disagree"
    return _seen(rule, "bad", summary, result.score, result.threshold)


def _versus(measure: str | None, value: float | None, threshold: float | None) -> str:
    return f"{measure or 'score'} {_num(value)} (threshold {_num(threshold)})"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"
