"""Data quality of a window compared with its reference: missing values, unseen
categories, values outside the reference's range, type mismatches and schema changes.
Every finding carries a severity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from core.schema import ModelSchema

Severity = Literal["info", "warning", "critical"]
# (warning, critical) bounds of each share; a share under the first is no finding
MISSING_INCREASE = (0.05, 0.2)
UNSEEN_SHARE = (0.01, 0.1)
OUT_OF_RANGE_SHARE = (0.01, 0.1)
TOP_UNSEEN = 10


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
    name: str, kind: str, window: pd.DataFrame, profile: ReferenceProfile
) -> dict[str, Any]:
    series = window[name] if name in window else pd.Series(dtype="object")
    present = series.dropna()
    stats: dict[str, Any] = {
        "missing_share": float(series.isna().mean()) if len(series) else 1.0,
        "reference_missing_share": profile.missing.get(name, 0.0),
    }
    if kind == "numerical" and name in profile.ranges and len(present):
        low, high = profile.ranges[name]
        numbers = pd.to_numeric(present, errors="coerce")
        stats["out_of_range_share"] = float(((numbers < low) | (numbers > high)).mean())
        stats["reference_range"] = [low, high]
    if kind == "categorical" and len(present):
        text = present.astype(str)
        unseen = text[~text.isin(profile.categories.get(name, frozenset()))]
        stats["unseen_category_share"] = len(unseen) / len(text)
        stats["unseen_categories"] = unseen.value_counts().head(TOP_UNSEEN).to_dict()
    return stats


def _findings_of(name: str, stats: dict[str, Any], events: int) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []

    def add(check: str, value: float, severity: Severity | None, message: str) -> None:
        if severity is not None:
            findings.append(
                {
                    "column": name,
                    "check": check,
                    "value": value,
                    "severity": severity,
                    "message": message,
                }
            )

    missing = stats["missing_share"]
    if events and missing >= 1.0:
        add("missing_column", 1.0, "critical", f"{name} is absent from every event")
    else:
        increase = missing - stats["reference_missing_share"]
        add(
            "missing_values",
            missing,
            _severity(increase, MISSING_INCREASE),
            f"{name}: {missing:.1%} missing vs {stats['reference_missing_share']:.1%} in reference",
        )
    if "unseen_category_share" in stats:
        share = stats["unseen_category_share"]
        add(
            "unseen_categories",
            share,
            _severity(share, UNSEEN_SHARE),
            f"{name}: {share:.1%} of values are categories the reference never had",
        )
    if "out_of_range_share" in stats:
        share = stats["out_of_range_share"]
        add(
            "out_of_range",
            share,
            _severity(share, OUT_OF_RANGE_SHARE),
            f"{name}: {share:.1%} of values outside the reference range",
        )
    return findings


def data_quality(
    window: pd.DataFrame, schema: ModelSchema, profile: ReferenceProfile, rejects: IntakeRejects
) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    findings: list[dict[str, Any]] = []
    for name, kind in sorted(schema.features.items()):
        stats = _column_quality(name, kind, window, profile)
        stats["type_mismatches"] = rejects.type_mismatches.get(name, 0)
        columns[name] = stats
        findings += _findings_of(name, stats, len(window))
        if stats["type_mismatches"]:
            findings.append(
                {
                    "column": name,
                    "check": "type_mismatch",
                    "value": stats["type_mismatches"],
                    "severity": "warning",
                    "message": f"{name}: {_records(stats['type_mismatches'])} sent a wrong type",
                }
            )
    for field_name, count in sorted(rejects.unknown_fields.items()):
        findings.append(
            {
                "column": field_name,
                "check": "new_column",
                "value": count,
                "severity": "warning",
                "message": f"{field_name}: {_records(count)} sent a column the schema lacks",
            }
        )
    missing_columns = [f["column"] for f in findings if f["check"] == "missing_column"]
    return {
        "columns": columns,
        "schema": {"missing_columns": missing_columns, "new_columns": rejects.unknown_fields},
        "findings": findings,
        "worst_severity": _worst(findings),
    }


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _worst(findings: list[dict[str, Any]]) -> Severity | None:
    order: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
    worst = max((order[f["severity"]] for f in findings), default=None)
    levels: tuple[Severity, ...] = ("info", "warning", "critical")
    return None if worst is None else levels[worst]
