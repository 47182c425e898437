"""The report summary's sections after the columns: the model's outputs and versions,
the multivariate check, data quality, performance and KPIs. Each writes every field of
its part of the RunResult (a section the run lacks says so)."""

from __future__ import annotations

from collections.abc import Mapping

from core.results import (
    DataQuality,
    KpiComparison,
    ModelVersions,
    Multivariate,
    Performance,
    QualityMetrics,
    RunResult,
    Severity,
)
from service.report_columns import COLUMN_HEADERS, column_cells
from service.report_table import Cell, absent, facts, format_value, section, subsection, table

SEVERITY_ORDER: dict[Severity, int] = {"critical": 0, "warning": 1, "info": 2}


def outputs_section(run: RunResult) -> str:
    prediction = run.prediction
    rows = [
        column_cells(name, result)
        for name, result in (
            ("prediction", prediction.drift),
            ("confidence", prediction.confidence),
        )
        if result is not None
    ]
    parts = [table(COLUMN_HEADERS, rows) if rows else absent("No prediction or confidence drift.")]
    if prediction.mean_confidence is not None:
        mean = prediction.mean_confidence
        parts.append(
            facts(
                [
                    ("mean confidence, reference", mean.reference),
                    ("mean confidence, window", mean.window),
                ]
            )
        )
    if prediction.versions is not None:
        parts.append(versions_part(prediction.versions))
    return section("Predictions and confidence", "\n".join(parts))


def versions_part(versions: ModelVersions) -> str:
    """The canary comparison: each newer version's outputs against the stable one's."""
    compared = {version: comparison.events for version, comparison in versions.candidates.items()}
    rows: list[list[Cell]] = [
        [
            version,
            "stable" if version == versions.stable else "candidate",
            events,
            compared.get(version),
        ]
        for version, events in versions.events.items()
    ]
    headers = ("version", "role", "events in window", "events compared")
    parts = [
        facts(
            [
                ("stable version", versions.stable),
                ("other versions (beyond the cap)", versions.other_versions),
                ("their events", versions.other_events),
            ]
        ),
        table(headers, rows),
    ]
    comparisons = [
        column_cells(f"{version}: {part}", result)
        for version, comparison in versions.candidates.items()
        for part, result in (
            ("prediction", comparison.prediction),
            ("confidence", comparison.confidence),
        )
        if result is not None
    ]
    if comparisons:
        caption = "Each candidate's outputs against the stable version's."
        parts.append(table(COLUMN_HEADERS, comparisons, caption))
    return subsection("Model versions", "\n".join(parts))


def multivariate_section(multivariate: Multivariate | None) -> str:
    title = "Multivariate shift (domain classifier)"
    if multivariate is None:
        return section(title, absent("No multivariate check in this run."))
    pairs: list[tuple[str, Cell]] = [
        ("method", multivariate.method),
        ("status", multivariate.status),
        ("ROC AUC", multivariate.score),
        ("threshold", multivariate.threshold),
        ("drifted", multivariate.drifted),
        ("sample size", multivariate.sample_size),
    ]
    return section(title, facts(pairs))


def data_quality_section(quality: DataQuality | None) -> str:
    if quality is None:
        return section("Data quality", absent("No data-quality check in this run."))
    findings = sorted(quality.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.column))
    rows: list[list[Cell]] = [[f.severity, f.column, f.check, f.value, f.message] for f in findings]
    parts = [
        facts([("worst severity", quality.worst_severity), ("findings", len(quality.findings))]),
        table(("severity", "column", "check", "value", "message"), rows, "Most severe first.")
        if rows
        else absent("No findings."),
    ]
    if quality.omitted_findings:
        omitted: list[list[Cell]] = [[c, n] for c, n in quality.omitted_findings.items()]
        parts.append(table(("check", "findings left out (over the cap)"), omitted))
    parts.append(schema_part(quality))
    parts.append(column_quality_part(quality))
    return section("Data quality", "\n".join(parts))


def schema_part(quality: DataQuality) -> str:
    changes = quality.schema_changes
    missing = ", ".join(changes.missing_columns) or None
    parts = [
        facts(
            [
                ("missing columns", missing),
                ("new columns left out (over the cap)", changes.omitted_new_columns),
            ]
        )
    ]
    if changes.new_columns:
        rows: list[list[Cell]] = [[name, count] for name, count in changes.new_columns.items()]
        parts.append(table(("new column", "records that sent it"), rows))
    return subsection("Schema changes", "\n".join(parts))


def column_quality_part(quality: DataQuality) -> str:
    headers = (
        "column",
        "missing share",
        "reference missing share",
        "out-of-range share",
        "reference min",
        "reference max",
        "unseen-category share",
        "unseen categories (count)",
        "type mismatches",
    )
    rows: list[list[Cell]] = []
    for name, column in quality.columns.items():
        low, high = column.reference_range or (None, None)
        unseen = column.unseen_categories
        categories = (
            ", ".join(f"{value} ({format_value(count)})" for value, count in unseen.items())
            if unseen
            else None
        )
        rows.append(
            [
                name,
                column.missing_share,
                column.reference_missing_share,
                column.out_of_range_share,
                low,
                high,
                column.unseen_category_share,
                categories,
                column.type_mismatches,
            ]
        )
    return subsection("Per column", table(headers, rows) if rows else absent("No columns."))


def performance_section(performance: Performance | None) -> str:
    title = "Performance (from ground truth)"
    if performance is None:
        return section(title, absent("No labels: no performance section in this run."))
    parts = [
        facts(
            [
                ("task", performance.task),
                ("status", performance.status),
                ("labeled events", performance.labeled_events),
                ("label coverage", performance.label_coverage),
                ("min labeled events", performance.min_labeled_events),
                ("labels from the labeling queue", performance.labels_from_queue),
            ]
        )
    ]
    estimate = performance.random_estimate
    columns: dict[str, QualityMetrics | None] = {
        "window": performance.window,
        "reference": performance.reference,
        "drop (reference - window)": performance.drop,
        "random-share estimate": estimate.window if estimate is not None else None,
    }
    parts.append(metrics_table(columns))
    if estimate is not None:
        pairs: list[tuple[str, Cell]] = [
            ("random-share labeled events", estimate.labeled_events),
            ("random-share min labeled events", estimate.min_labeled_events),
        ]
        parts.append(facts(pairs))
    if performance.label_drift is not None:
        parts.append(table(COLUMN_HEADERS, [column_cells("label", performance.label_drift)]))
    return section(title, "\n".join(parts))


def metrics_table(columns: Mapping[str, QualityMetrics | None]) -> str:
    """Metrics as rows, the datasets that have them as columns."""
    present = {name: metrics for name, metrics in columns.items() if metrics is not None}
    if not present:
        return absent("Not enough labeled events for metrics yet.")
    names: list[str] = []
    for metrics in present.values():
        names += [name for name in type(metrics).model_fields if name not in names]
    rows: list[list[Cell]] = [
        [name, *(getattr(metrics, name, None) for metrics in present.values())] for name in names
    ]
    return table(("metric", *present), rows)


def kpis_section(kpis: Mapping[str, KpiComparison]) -> str:
    if not kpis:
        return section("KPIs", absent("No KPIs in this run."))
    headers = (
        "KPI",
        "window count",
        "window mean",
        "window last",
        "baseline count",
        "baseline mean",
        "baseline last",
        "change",
        "relative change",
    )
    rows: list[list[Cell]] = [
        [
            name,
            kpi.window.count,
            kpi.window.mean,
            kpi.window.last,
            kpi.baseline.count,
            kpi.baseline.mean,
            kpi.baseline.last,
            kpi.change,
            kpi.relative_change,
        ]
        for name, kpi in kpis.items()
    ]
    caption = "The window against its baseline period, the time before the window."
    return section("KPIs", table(headers, rows, caption))
