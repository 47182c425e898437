"""Data quality of a window compared with its reference: missing values, unseen
categories, values outside the reference's range, type mismatches and schema changes.
Every finding carries a severity.

A category never seen in the reference is a finding at any share (severity `info` below
the warning level), because a new code from upstream is news even when rare.

Findings are capped per check, and so are the unknown fields listed as new columns:
records with 10,000 distinct unknown fields once made 10,000 findings and a 4.5 MB
result. The most severe, then the largest, are kept; the rest are counted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from core.results import (
    ColumnQuality,
    DataQuality,
    Finding,
    QualityCheck,
    SchemaChanges,
    Severity,
)
from core.schema import ModelSchema

# (warning, critical) bounds of each share; a share under the first is no finding,
# except for unseen categories, where any share above zero is an `info` finding
MISSING_INCREASE = (0.05, 0.2)
UNSEEN_SHARE = (0.01, 0.1)
OUT_OF_RANGE_SHARE = (0.01, 0.1)
TOP_UNSEEN = 10
DEFAULT_MAX_FINDINGS = 20
SEVERITY_ORDER: tuple[Severity, ...] = ("info", "warning", "critical")


@dataclass(frozen=True)
class ReferenceProfile:
    ranges: dict[str, tuple[float, float]]
    categories: dict[str, frozenset[str]]
    missing: dict[str, float]


@dataclass
class IntakeRejects:
    """Records intake refused during the window, by field: the evidence of type
    mismatches and of columns the schema does not know."""

    type_mismatches: dict[str, int]
    unknown_fields: dict[str, int]

    @classmethod
    def from_totals(cls, totals: Mapping[str, Mapping[str, int]]) -> IntakeRejects:
        """From intake's reject counts by reason and field (`features.income`): the
        service reads them back from Redis, an offline replay counts them itself."""
        type_mismatches = {
            name.removeprefix("features."): count
            for name, count in totals.get("type_mismatch", {}).items()
            if name.startswith("features.")
        }
        unknown = {
            name.removeprefix("features."): count
            for name, count in totals.get("unknown_field", {}).items()
        }
        return cls(type_mismatches=type_mismatches, unknown_fields=unknown)


def profile_reference(reference: pd.DataFrame, schema: ModelSchema) -> ReferenceProfile:
    ranges: dict[str, tuple[float, float]] = {}
    categories: dict[str, frozenset[str]] = {}
    for name, kind in schema.features.items():
        values = reference[name].dropna()
        if kind == "numerical" and not values.empty:
            ranges[name] = (float(values.min()), float(values.max()))
        elif kind == "categorical":
            categories[name] = frozenset(values.astype(str).unique())
    missing = {name: float(reference[name].isna().mean()) for name in schema.features}
    return ReferenceProfile(ranges, categories, missing)


def _severity(value: float, bounds: tuple[float, float]) -> Severity | None:
    if value >= bounds[1]:
        return "critical"
    if value >= bounds[0]:
        return "warning"
    return None


def _column_quality(
    name: str, kind: str, window: pd.DataFrame, profile: ReferenceProfile, mismatches: int
) -> ColumnQuality:
    series = window[name] if name in window else pd.Series(dtype="object")
    present = series.dropna()
    stats = ColumnQuality(
        missing_share=float(series.isna().mean()) if len(series) else 1.0,
        reference_missing_share=profile.missing.get(name, 0.0),
        type_mismatches=mismatches,
    )
    if kind == "numerical" and name in profile.ranges and len(present):
        low, high = profile.ranges[name]
        numbers = pd.to_numeric(present, errors="coerce")
        stats.out_of_range_share = float(((numbers < low) | (numbers > high)).mean())
        stats.reference_range = (low, high)
    if kind == "categorical" and len(present):
        text = present.astype(str)
        unseen = text[~text.isin(profile.categories.get(name, frozenset()))]
        stats.unseen_category_share = len(unseen) / len(text)
        top = unseen.value_counts().head(TOP_UNSEEN)
        stats.unseen_categories = {str(category): int(count) for category, count in top.items()}
    return stats


def _findings_of(name: str, stats: ColumnQuality, events: int) -> list[Finding]:
    findings = [_missing_finding(name, stats, events)]
    if stats.unseen_category_share:
        findings.append(_unseen_finding(name, stats.unseen_category_share))
    if stats.out_of_range_share is not None:
        share = stats.out_of_range_share
        message = f"{name}: {share:.1%} of values outside the reference range"
        findings.append(_share_finding(name, "out_of_range", share, OUT_OF_RANGE_SHARE, message))
    if stats.type_mismatches:
        count = stats.type_mismatches
        message = f"{name}: {_records(count)} sent a wrong type"
        findings.append(_warning(name, "type_mismatch", count, message))
    return [finding for finding in findings if finding is not None]


def _missing_finding(name: str, stats: ColumnQuality, events: int) -> Finding | None:
    missing = stats.missing_share
    if events and missing >= 1.0:
        message = f"{name} is absent from every event"
        return Finding(
            column=name, check="missing_column", value=1.0, severity="critical", message=message
        )
    severity = _severity(missing - stats.reference_missing_share, MISSING_INCREASE)
    if severity is None:
        return None
    message = f"{name}: {missing:.1%} missing vs {stats.reference_missing_share:.1%} in reference"
    return Finding(
        column=name, check="missing_values", value=missing, severity=severity, message=message
    )


def _unseen_finding(name: str, share: float) -> Finding:
    """Never the categories themselves: they are feature values, and may be personal."""
    shown = f"{share:.1%}" if share >= 0.001 else "under 0.1%"
    message = f"{name}: {shown} of values are categories the reference never had"
    severity = _severity(share, UNSEEN_SHARE) or "info"
    return Finding(
        column=name, check="unseen_categories", value=share, severity=severity, message=message
    )


def _share_finding(
    column: str, check: QualityCheck, share: float, bounds: tuple[float, float], message: str
) -> Finding | None:
    severity = _severity(share, bounds)
    if severity is None:
        return None
    return Finding(column=column, check=check, value=share, severity=severity, message=message)


def _warning(column: str, check: QualityCheck, count: int, message: str) -> Finding:
    """A finding that counts records intake refused."""
    return Finding(column=column, check=check, value=count, severity="warning", message=message)


def data_quality(
    window: pd.DataFrame,
    schema: ModelSchema,
    profile: ReferenceProfile,
    rejects: IntakeRejects,
    max_findings_per_check: int = DEFAULT_MAX_FINDINGS,
) -> DataQuality:
    columns: dict[str, ColumnQuality] = {}
    findings: list[Finding] = []
    for name, kind in sorted(schema.features.items()):
        mismatches = rejects.type_mismatches.get(name, 0)
        columns[name] = _column_quality(name, kind, window, profile, mismatches)
        findings += _findings_of(name, columns[name], len(window))
    for field_name, count in sorted(rejects.unknown_fields.items()):
        message = f"{field_name}: {_records(count)} sent a column the schema lacks"
        findings.append(_warning(field_name, "new_column", count, message))
    missing_columns = [f.column for f in findings if f.check == "missing_column"]
    kept, omitted = _capped(findings, max_findings_per_check)
    new_columns = _top_new_columns(rejects.unknown_fields, max_findings_per_check)
    return DataQuality(
        columns=columns,
        schema_changes=SchemaChanges(
            missing_columns=missing_columns,
            new_columns=new_columns,
            omitted_new_columns=len(rejects.unknown_fields) - len(new_columns) or None,
        ),
        findings=kept,
        worst_severity=_worst(findings),
        omitted_findings=omitted or None,
    )


def _capped(findings: list[Finding], cap: int) -> tuple[list[Finding], dict[QualityCheck, int]]:
    """At most `cap` findings of each check, the most severe then the largest, and how
    many of each check were left out. The kept ones stay in the report's order (by
    column), so that a report under the cap reads as it always did."""
    by_check: dict[QualityCheck, list[int]] = {}
    for index, finding in enumerate(findings):
        by_check.setdefault(finding.check, []).append(index)
    kept: set[int] = set()
    omitted: dict[QualityCheck, int] = {}
    for check, indexes in by_check.items():
        ranked = sorted(indexes, key=lambda index: _rank(findings[index]))
        kept.update(ranked[:cap])
        if len(ranked) > cap:
            omitted[check] = len(ranked) - cap
    return [finding for index, finding in enumerate(findings) if index in kept], omitted


def _rank(finding: Finding) -> tuple[int, float, str]:
    return (-SEVERITY_ORDER.index(finding.severity), -finding.value, finding.column)


def _top_new_columns(unknown: dict[str, int], cap: int) -> dict[str, int]:
    """The `cap` fields most records sent (ties by name), in their given order."""
    if len(unknown) <= cap:
        return unknown
    top = set(sorted(unknown, key=lambda name: (-unknown[name], name))[:cap])
    return {name: count for name, count in unknown.items() if name in top}


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _worst(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), key=SEVERITY_ORDER.index, default=None)
