"""Data quality of a window compared with its reference: missing values, unseen
categories, values outside the reference's range, type mismatches and schema changes.
Every finding carries a severity."""

from __future__ import annotations

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

# (warning, critical) bounds of each share; a share under the first is no finding
MISSING_INCREASE = (0.05, 0.2)
UNSEEN_SHARE = (0.01, 0.1)
OUT_OF_RANGE_SHARE = (0.01, 0.1)
TOP_UNSEEN = 10
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
    if stats.unseen_category_share is not None:
        share = stats.unseen_category_share
        message = f"{name}: {share:.1%} of values are categories the reference never had"
        findings.append(_share_finding(name, "unseen_categories", share, UNSEEN_SHARE, message))
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
    window: pd.DataFrame, schema: ModelSchema, profile: ReferenceProfile, rejects: IntakeRejects
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
    return DataQuality(
        columns=columns,
        schema_changes=SchemaChanges(
            missing_columns=missing_columns, new_columns=rejects.unknown_fields
        ),
        findings=findings,
        worst_severity=_worst(findings),
    )


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _worst(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), key=SEVERITY_ORDER.index, default=None)
