"""Gauges of a run's sections beside column drift: prediction and confidence drift,
data quality, model quality, multivariate drift and business KPIs (rendered at scrape
time by service/metrics_gauges.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from core.results import ColumnResult, DataQuality, RunResult


def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _verdict_gauges(
    prefix: str, what: str, verdicts: dict[str, ColumnResult | None]
) -> Iterator[GaugeMetricFamily]:
    """Score and verdict of one part of the prediction section, by model."""
    score = gauge(f"{prefix}_score", f"Drift score of the {what}.", ["model", "method"])
    drifted = gauge(f"{prefix}ed", f"1 when the {what} drifted.", ["model"])
    for model, verdict in verdicts.items():
        if verdict is None or verdict.score is None or verdict.drifted is None:
            continue
        score.add_metric([model, verdict.method or ""], verdict.score)
        drifted.add_metric([model], float(verdict.drifted))
    yield from (score, drifted)


def prediction_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    predictions = {result.model: result.prediction for result in results}
    drifts = {model: prediction.drift for model, prediction in predictions.items()}
    confidences = {model: prediction.confidence for model, prediction in predictions.items()}
    yield from _verdict_gauges("driftmon_prediction_drift", "prediction column", drifts)
    yield from _verdict_gauges("driftmon_confidence_drift", "model confidence", confidences)
    mean = gauge(
        "driftmon_mean_confidence",
        "Mean top-class probability, in the window and in the reference.",
        ["model", "dataset"],
    )
    for model, prediction in predictions.items():
        if prediction.mean_confidence is not None:
            mean.add_metric([model, "reference"], prediction.mean_confidence.reference)
            mean.add_metric([model, "window"], prediction.mean_confidence.window)
    yield mean


def quality_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    labels = ["model", "column"]
    unseen = gauge(
        "driftmon_column_unseen_category_share",
        "Share of window values that are categories the reference never had.",
        labels,
    )
    out_of_range = gauge(
        "driftmon_column_out_of_range_share",
        "Share of window values outside the reference's range.",
        labels,
    )
    mismatches = gauge(
        "driftmon_column_type_mismatches",
        "Records rejected during the window for a wrong type in this column.",
        labels,
    )
    findings = gauge(
        "driftmon_data_quality_findings",
        "Data-quality findings of the latest run, by check and severity.",
        ["model", "check", "severity"],
    )
    for result in results:
        quality = result.data_quality or DataQuality()
        for column, stats in quality.columns.items():
            key = [result.model, column]
            if column not in result.columns:  # only schema columns become label values
                continue
            if stats.unseen_category_share is not None:  # categorical columns only
                unseen.add_metric(key, stats.unseen_category_share)
            if stats.out_of_range_share is not None:  # numerical columns only
                out_of_range.add_metric(key, stats.out_of_range_share)
            mismatches.add_metric(key, float(stats.type_mismatches))
        for (check, severity), count in Counter(
            (f.check, f.severity) for f in quality.findings
        ).items():
            findings.add_metric([result.model, check, severity], count)
    yield from (unseen, out_of_range, mismatches, findings)


def performance_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    quality = gauge(
        "driftmon_model_quality",
        "Model quality from ground truth (accuracy, f1, roc_auc, mae, ...).",
        ["model", "metric", "dataset"],
    )
    coverage = gauge(
        "driftmon_label_coverage_ratio", "Share of window events with ground truth.", ["model"]
    )
    for result in results:
        performance = result.performance
        if performance is None:
            continue
        coverage.add_metric([result.model], performance.label_coverage)
        for dataset, metrics in (
            ("window", performance.window),
            ("reference", performance.reference),
        ):
            # metric label values: the fields of the task's metrics that the run has
            for metric, value in (metrics.model_dump() if metrics else {}).items():
                quality.add_metric([result.model, metric, dataset], value)
    yield from (quality, coverage)


def multivariate_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    score = gauge(
        "driftmon_multivariate_drift_score",
        "Cross-validated ROC AUC of a classifier telling window from reference (0.5: same).",
        ["model", "method"],
    )
    drifted = gauge(
        "driftmon_multivariate_drifted", "1 when the joint distribution shifted.", ["model"]
    )
    for result in results:
        verdict = result.multivariate
        if verdict is None or verdict.score is None or verdict.drifted is None:
            continue
        score.add_metric([result.model, verdict.method], verdict.score)
        drifted.add_metric([result.model], float(verdict.drifted))
    yield from (score, drifted)


def kpi_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    labels = ["model", "kpi"]
    window = gauge("driftmon_kpi_window_mean", "Mean of a business KPI in the window.", labels)
    baseline = gauge(
        "driftmon_kpi_baseline_mean", "Mean of a business KPI in its baseline period.", labels
    )
    change = gauge(
        "driftmon_kpi_relative_change",
        "Window mean against baseline mean, as a ratio of change (0.1: up 10%).",
        labels,
    )
    for result in results:
        for name, comparison in result.kpis.items():
            key = [result.model, name]
            if comparison.window.mean is not None:
                window.add_metric(key, comparison.window.mean)
            if comparison.baseline.mean is not None:
                baseline.add_metric(key, comparison.baseline.mean)
            if comparison.relative_change is not None:
                change.add_metric(key, comparison.relative_change)
    yield from (window, baseline, change)
