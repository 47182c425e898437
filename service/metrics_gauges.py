"""Drift gauges, rendered at scrape time from the latest RunResults in Redis: every
replica serves the same answer, and a model or column that disappears stops being
exported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.results import ColumnResult, DataQuality, RunResult


@dataclass
class ModelSnapshot:
    """What one model's gauges are rendered from at scrape time."""

    latest: RunResult | None
    latest_ok: RunResult | None
    schedule_seconds: float


class LatestRunsCollector(Collector):
    """Gauges of the newest run per model, refreshed from Redis before each scrape.

    Per-column gauges are capped per model (`max_columns`): a wide model would otherwise
    multiply every series by its width. Drifted and high-scoring columns go first."""

    def __init__(self, max_columns: int) -> None:
        self._max_columns = max_columns
        self._models: dict[str, ModelSnapshot] = {}

    def update(self, models: dict[str, ModelSnapshot]) -> None:
        self._models = models

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok_runs = [
            capped_columns(snapshot.latest_ok, self._max_columns)
            for snapshot in self._models.values()
            if snapshot.latest_ok is not None
        ]
        latest = [s.latest for s in self._models.values() if s.latest is not None]
        yield from _run_gauges(latest)
        yield from _schedule_gauges(self._models, self._max_columns)
        yield from _column_gauges(ok_runs)
        yield from _prediction_gauges(ok_runs)
        yield from _quality_gauges(ok_runs)
        yield from _performance_gauges(ok_runs)
        yield from _multivariate_gauges(ok_runs)
        yield from _kpi_gauges(ok_runs)
        yield _last_success(ok_runs)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


def capped_columns(result: RunResult, cap: int) -> RunResult:
    """The result with at most `cap` columns: drifted first, then by score."""
    if len(result.columns) <= cap:
        return result

    def priority(item: tuple[str, ColumnResult]) -> tuple[bool, float, str]:
        name, verdict = item
        return (not verdict.drifted, -(verdict.score or 0.0), name)

    kept = dict(sorted(result.columns.items(), key=priority)[:cap])
    return result.model_copy(update={"columns": kept})


def _schedule_gauges(models: dict[str, ModelSnapshot], cap: int) -> Iterator[GaugeMetricFamily]:
    interval = _gauge(
        "driftmon_schedule_interval_seconds", "Configured detection interval.", ["model"]
    )
    streak = _gauge(
        "driftmon_dataset_drift_streak_runs",
        "Consecutive latest successful runs that found dataset drift.",
        ["model"],
    )
    span = _gauge(
        "driftmon_window_span_seconds",
        "Time between the oldest and newest event of the latest run's window.",
        ["model"],
    )
    unexported = _gauge(
        "driftmon_unexported_columns",
        "Columns left out of per-column metrics by DRIFTMON_METRICS_MAX_COLUMNS.",
        ["model"],
    )
    for model, snapshot in models.items():
        interval.add_metric([model], snapshot.schedule_seconds)
        ok = snapshot.latest_ok
        if ok is None:
            continue
        streak.add_metric([model], ok.dataset_drift_streak)
        if ok.window.start and ok.window.end:
            span.add_metric([model], _timestamp(ok.window.end) - _timestamp(ok.window.start))
        unexported.add_metric([model], max(0, len(ok.columns) - cap))
    yield from (interval, streak, span, unexported)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _run_gauges(results: Iterable[RunResult]) -> Iterator[GaugeMetricFamily]:
    window = _gauge("driftmon_window_events", "Events in the window of the latest run.", ["model"])
    dataset = _gauge(
        "driftmon_dataset_drift", "1 when the latest run found dataset drift.", ["model"]
    )
    share = _gauge(
        "driftmon_drifted_columns_share", "Share of columns drifted in the latest run.", ["model"]
    )
    status = _gauge(
        "driftmon_last_run_status",
        "1 for the status of the latest run (ok, insufficient_data, error).",
        ["model", "status"],
    )
    duration = _gauge(
        "driftmon_last_run_duration_seconds", "Wall time of the latest run.", ["model"]
    )
    for result in results:
        window.add_metric([result.model], result.window.events)
        if result.dataset_drift is not None:
            dataset.add_metric([result.model], float(result.dataset_drift))
        if result.drifted_share is not None:
            share.add_metric([result.model], result.drifted_share)
        for name in ("ok", "insufficient_data", "error"):
            status.add_metric([result.model, name], float(result.status == name))
        duration.add_metric([result.model], result.duration_seconds)
    yield from (window, dataset, share, status, duration)


def _column_gauges(results: Iterable[RunResult]) -> Iterator[GaugeMetricFamily]:
    labels = ["model", "column"]
    score = _gauge(
        "driftmon_column_drift_score",
        "Drift score of a column (method-specific).",
        [*labels, "method"],
    )
    threshold = _gauge(
        "driftmon_column_drift_threshold", "Threshold the score is compared with.", labels
    )
    drifted = _gauge(
        "driftmon_column_drifted", "1 when the column drifted in the latest ok run.", labels
    )
    missing = _gauge(
        "driftmon_column_missing_share", "Share of missing values in the window.", labels
    )
    for result in results:
        for column, verdict in result.columns.items():
            key = [result.model, column]
            missing.add_metric(key, verdict.missing_share)
            if verdict.score is None or verdict.drifted is None:
                continue
            score.add_metric([*key, verdict.method or ""], verdict.score)
            threshold.add_metric(key, verdict.threshold or 0.0)
            drifted.add_metric(key, float(verdict.drifted))
    yield from (score, threshold, drifted, missing)


def _last_success(results: Iterable[RunResult]) -> GaugeMetricFamily:
    gauge = _gauge(
        "driftmon_last_successful_run_timestamp_seconds",
        "Start time of the latest run with status ok.",
        ["model"],
    )
    for result in results:
        gauge.add_metric([result.model], _timestamp(result.started_at))
    return gauge


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _verdict_gauges(
    prefix: str, what: str, verdicts: dict[str, ColumnResult | None]
) -> Iterator[GaugeMetricFamily]:
    """Score and verdict of one part of the prediction section, by model."""
    score = _gauge(f"{prefix}_score", f"Drift score of the {what}.", ["model", "method"])
    drifted = _gauge(f"{prefix}ed", f"1 when the {what} drifted.", ["model"])
    for model, verdict in verdicts.items():
        if verdict is None or verdict.score is None or verdict.drifted is None:
            continue
        score.add_metric([model, verdict.method or ""], verdict.score)
        drifted.add_metric([model], float(verdict.drifted))
    yield from (score, drifted)


def _prediction_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    predictions = {result.model: result.prediction for result in results}
    drifts = {model: prediction.drift for model, prediction in predictions.items()}
    confidences = {model: prediction.confidence for model, prediction in predictions.items()}
    yield from _verdict_gauges("driftmon_prediction_drift", "prediction column", drifts)
    yield from _verdict_gauges("driftmon_confidence_drift", "model confidence", confidences)
    mean = _gauge(
        "driftmon_mean_confidence",
        "Mean top-class probability, in the window and in the reference.",
        ["model", "dataset"],
    )
    for model, prediction in predictions.items():
        if prediction.mean_confidence is not None:
            mean.add_metric([model, "reference"], prediction.mean_confidence.reference)
            mean.add_metric([model, "window"], prediction.mean_confidence.window)
    yield mean


def _quality_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    labels = ["model", "column"]
    unseen = _gauge(
        "driftmon_column_unseen_category_share",
        "Share of window values that are categories the reference never had.",
        labels,
    )
    out_of_range = _gauge(
        "driftmon_column_out_of_range_share",
        "Share of window values outside the reference's range.",
        labels,
    )
    mismatches = _gauge(
        "driftmon_column_type_mismatches",
        "Records rejected during the window for a wrong type in this column.",
        labels,
    )
    findings = _gauge(
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


def _performance_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    quality = _gauge(
        "driftmon_model_quality",
        "Model quality from ground truth (accuracy, f1, roc_auc, mae, ...).",
        ["model", "metric", "dataset"],
    )
    coverage = _gauge(
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


def _multivariate_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    score = _gauge(
        "driftmon_multivariate_drift_score",
        "Cross-validated ROC AUC of a classifier telling window from reference (0.5: same).",
        ["model", "method"],
    )
    drifted = _gauge(
        "driftmon_multivariate_drifted", "1 when the joint distribution shifted.", ["model"]
    )
    for result in results:
        verdict = result.multivariate
        if verdict is None or verdict.score is None or verdict.drifted is None:
            continue
        score.add_metric([result.model, verdict.method], verdict.score)
        drifted.add_metric([result.model], float(verdict.drifted))
    yield from (score, drifted)


def _kpi_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    labels = ["model", "kpi"]
    window = _gauge("driftmon_kpi_window_mean", "Mean of a business KPI in the window.", labels)
    baseline = _gauge(
        "driftmon_kpi_baseline_mean", "Mean of a business KPI in its baseline period.", labels
    )
    change = _gauge(
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
