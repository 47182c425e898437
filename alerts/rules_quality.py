"""Data-quality rules: per column, the findings at or above the rule's severity (of its
checks, if it names any), worst column first and capped. A column without such findings
is good, or unknown when the detector left out findings that could have counted."""

from __future__ import annotations

from alerts.rules_common import RunContext, capped, run_columns, seen, share
from core.alert_config import SEVERITY_ORDER, DataQualityRule
from core.alerts import Observation, Verdict
from core.results import DataQuality, Finding, RunResult

# findings whose value counts records; the others are shares
COUNT_CHECKS = frozenset({"type_mismatch", "new_column"})
# the severity detectors/quality.py gives every unknown field
NEW_FIELD_SEVERITY = "warning"


def data_quality(rule: DataQualityRule, run: RunResult, context: RunContext) -> list[Observation]:
    quality, alerting = run.data_quality, context.alerting(rule)
    if quality is None:
        columns = sorted(run_columns(run) | alerting)
        return [seen(rule, "unknown", "data quality not checked", column=c) for c in columns]
    by_column: dict[str, list[Finding]] = {}
    new_fields: list[Finding] = []
    for finding in quality.findings:
        if not _counts(finding, rule):
            continue
        if finding.check == "new_column":
            new_fields.append(finding)
        else:
            by_column.setdefault(finding.column, []).append(finding)
    worst_first = sorted(by_column.items(), key=lambda item: _quality_rank(*item))
    observations = [_quality_bad(rule, column, findings) for column, findings in worst_first]
    clean = sorted((run_columns(run) | alerting) - by_column.keys())
    # with findings left out by the detector's cap, a clean-looking column may not be
    verdict: Verdict = "unknown" if _findings_hidden(quality, rule) else "good"
    summary = f"no {rule.min_severity}+ finding" + (" listed" if verdict == "unknown" else "")
    observations += [seen(rule, verdict, summary, column=column) for column in clean]
    kept = capped(observations, alerting, context.max_columns)
    return kept + _new_fields(rule, quality, new_fields)


def _new_fields(
    rule: DataQualityRule, quality: DataQuality, findings: list[Finding]
) -> list[Observation]:
    """Fields the schema does not know make one alert of the rule (column None), not one
    per field: their names come from the payloads, and an alert's column becomes a label
    of driftmon_alerts, whose label values come only from the reference schema."""
    if rule.checks is not None and "new_column" not in rule.checks:
        return []
    if SEVERITY_ORDER[NEW_FIELD_SEVERITY] < SEVERITY_ORDER[rule.min_severity]:
        return []  # such findings never count for this rule
    if not findings:
        return [seen(rule, "good", "no unknown fields in the window's records")]
    records = sum(int(finding.value) for finding in findings)
    fields = len(findings) + (quality.omitted_findings or {}).get("new_column", 0)
    summary = f"records carry {fields} field(s) the schema does not know ({records} records)"
    return [seen(rule, "bad", summary, float(fields))]


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
        if check == "new_column" or (rule.checks is not None and check not in rule.checks):
            continue  # unknown fields are counted apart from the columns
        kept = [SEVERITY_ORDER[f.severity] for f in quality.findings if f.check == check]
        if min(kept, default=SEVERITY_ORDER["critical"]) >= SEVERITY_ORDER[rule.min_severity]:
            return True
    return False


def _quality_bad(rule: DataQualityRule, column: str, findings: list[Finding]) -> Observation:
    ordered = sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.check))
    # not the detector's messages: built from checks and numbers only, never from values
    parts = ", ".join(f"{f.check} {_finding_value(f)} ({f.severity})" for f in ordered)
    summary = f"data quality of {column}: {parts}"
    return seen(rule, "bad", summary, float(_worst(findings).value), column=column)


def _finding_value(finding: Finding) -> str:
    if finding.check in COUNT_CHECKS:
        return f"{int(finding.value)} records"
    return share(float(finding.value))
