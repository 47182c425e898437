"""Prometheus metrics on a registry of our own.

Intake and run counters are per process. Drift gauges are rendered at scrape time from
the latest RunResults in Redis, so every replica serves the same answer and a model
or column that disappears stops being exported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.results import ColumnResult, RunResult

RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, registry: CollectorRegistry, version: str, max_columns: int = 100) -> None:
        self.registry = registry
        self.events = Counter(
            "driftmon_events",
            "Prediction events received, by outcome (accepted, duplicate, rejected).",
            ["model", "source", "outcome"],
            registry=registry,
        )
        self.rejects = Counter(
            "driftmon_events_rejected_by_reason",
            "Records rejected at intake, by reason (invalid, type_mismatch, unknown_field).",
            ["model", "source", "reason"],
            registry=registry,
        )
        self.labels = Counter(
            "driftmon_labels",
            "Ground-truth labels received, by outcome (accepted, unknown event).",
            ["model", "source", "outcome"],
            registry=registry,
        )
        self.runs = Counter(
            "driftmon_detection_runs",
            "Detection runs finished in this process, by status.",
            ["model", "status", "trigger"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "driftmon_detection_run_duration_seconds",
            "Wall time of detection runs in this process.",
            ["model"],
            buckets=RUN_DURATION_BUCKETS,
            registry=registry,
        )
        self.reference_uploads = Counter(
            "driftmon_reference_uploads",
            "Reference uploads accepted.",
            ["model"],
            registry=registry,
        )
        self.kpi_points = Counter(
            "driftmon_kpi_points",
            "Business KPI points received.",
            ["model", "source"],
            registry=registry,
        )
        self.cloudevents = Counter(
            "driftmon_cloudevents",
            "Inference-logger CloudEvents by half (request, response, feedback) and outcome.",
            ["half", "outcome"],
            registry=registry,
        )
        self.cloudevents_unmatched = Counter(
            "driftmon_cloudevents_unmatched",
            "Request or response halves that expired without their partner.",
            ["model"],
            registry=registry,
        )
        self.stream_entries = Counter(
            "driftmon_stream_entries",
            "Redis Stream entries by outcome (read, redelivered, acked, dead_lettered, deleted).",
            ["stream", "outcome"],
            registry=registry,
        )
        self.stream_lag = Gauge(
            "driftmon_stream_lag_entries",
            "Entries in the stream not yet delivered to the consumer group.",
            ["stream"],
            registry=registry,
        )
        self.stream_pending = Gauge(
            "driftmon_stream_pending_entries",
            "Entries delivered to the consumer group but not yet acknowledged.",
            ["stream"],
            registry=registry,
        )
        self.sink_failures = Counter(
            "driftmon_run_sink_failures",
            "Run sinks (metrics, alerts, labeling) that raised on a finished run.",
            ["sink"],
            registry=registry,
        )
        Info("driftmon_build", "driftmon version.", registry=registry).info({"version": version})
        self.latest = LatestRunsCollector(max_columns)
        registry.register(self.latest)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    def count_events(self, model: str, source: str, outcome: str, amount: int) -> None:
        self.events.labels(model, source, outcome).inc(amount)

    def count_rejects(self, model: str, source: str, reason: str, amount: int) -> None:
        self.rejects.labels(model, source, reason).inc(amount)

    def count_labels(self, model: str, source: str, outcome: str, amount: int) -> None:
        self.labels.labels(model, source, outcome).inc(amount)

    def count_kpis(self, model: str, source: str, amount: int) -> None:
        self.kpi_points.labels(model, source).inc(amount)

    def count_cloudevent(self, half: str, outcome: str, amount: int = 1) -> None:
        self.cloudevents.labels(half, outcome).inc(amount)

    def count_unmatched(self, model: str, amount: int) -> None:
        self.cloudevents_unmatched.labels(model).inc(amount)

    def count_stream(self, stream: str, outcome: str, amount: int) -> None:
        self.stream_entries.labels(stream, outcome).inc(amount)

    def set_stream_status(self, stream: str, lag: int | None, pending: int) -> None:
        if lag is not None:
            self.stream_lag.labels(stream).set(lag)
        self.stream_pending.labels(stream).set(pending)

    def observe_run(self, result: RunResult) -> None:
        self.runs.labels(result.model, result.status, result.trigger).inc()
        self.run_duration.labels(result.model).observe(result.duration_seconds)

    def count_sink_failure(self, sink: str) -> None:
        self.sink_failures.labels(sink).inc()


class MetricsSink:
    """Counts and times each finished run. The gauges need no sink: they are rendered
    from the latest runs in Redis at scrape time."""

    name = "metrics"

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def publish(self, run: RunResult, previous: RunResult | None) -> None:
        self._metrics.observe_run(run)


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
            start, end = (
                datetime.fromisoformat(t).timestamp() for t in (ok.window.start, ok.window.end)
            )
            span.add_metric([model], end - start)
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
        gauge.add_metric([result.model], datetime.fromisoformat(result.started_at).timestamp())
    return gauge


def _verdict_gauges(
    prefix: str, what: str, results: Iterable[RunResult], section: str
) -> Iterator[GaugeMetricFamily]:
    score = _gauge(f"{prefix}_score", f"Drift score of the {what}.", ["model", "method"])
    drifted = _gauge(f"{prefix}ed", f"1 when the {what} drifted.", ["model"])
    for result in results:
        verdict = result.prediction.get(section) or {}
        if verdict.get("score") is None or verdict.get("drifted") is None:
            continue
        score.add_metric([result.model, verdict.get("method") or ""], verdict["score"])
        drifted.add_metric([result.model], float(verdict["drifted"]))
    yield from (score, drifted)


def _prediction_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    yield from _verdict_gauges("driftmon_prediction_drift", "prediction column", results, "drift")
    yield from _verdict_gauges(
        "driftmon_confidence_drift", "model confidence", results, "confidence"
    )
    mean = _gauge(
        "driftmon_mean_confidence",
        "Mean top-class probability, in the window and in the reference.",
        ["model", "dataset"],
    )
    for result in results:
        for dataset, value in (result.prediction.get("mean_confidence") or {}).items():
            mean.add_metric([result.model, dataset], value)
    yield mean


QUALITY_SHARES = (
    (
        "unseen_category_share",
        "driftmon_column_unseen_category_share",
        "Share of window values that are categories the reference never had.",
    ),
    (
        "out_of_range_share",
        "driftmon_column_out_of_range_share",
        "Share of window values outside the reference's range.",
    ),
    (
        "type_mismatches",
        "driftmon_column_type_mismatches",
        "Records rejected during the window for a wrong type in this column.",
    ),
)


def _quality_gauges(results: list[RunResult]) -> Iterator[GaugeMetricFamily]:
    families = {key: _gauge(name, doc, ["model", "column"]) for key, name, doc in QUALITY_SHARES}
    findings = _gauge(
        "driftmon_data_quality_findings",
        "Data-quality findings of the latest run, by check and severity.",
        ["model", "check", "severity"],
    )
    for result in results:
        quality = result.data_quality
        for column, stats in (quality.get("columns") or {}).items():
            if column not in result.columns:  # only schema columns become label values
                continue
            for key, family in families.items():
                if key in stats:
                    family.add_metric([result.model, column], float(stats[key]))
        counts: dict[tuple[str, str], int] = {}
        for finding in quality.get("findings") or []:
            check_severity = (str(finding["check"]), str(finding["severity"]))
            counts[check_severity] = counts.get(check_severity, 0) + 1
        for (check, severity), count in counts.items():
            findings.add_metric([result.model, check, severity], count)
    yield from families.values()
    yield findings


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
        if "label_coverage" in performance:
            coverage.add_metric([result.model], performance["label_coverage"])
        for dataset in ("window", "reference"):
            for metric, value in (performance.get(dataset) or {}).items():
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
        multivariate = result.multivariate
        if multivariate.get("score") is None:
            continue
        score.add_metric([result.model, multivariate["method"]], multivariate["score"])
        drifted.add_metric([result.model], float(multivariate["drifted"]))
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
            if comparison["window"]["mean"] is not None:
                window.add_metric(key, comparison["window"]["mean"])
            if comparison["baseline"]["mean"] is not None:
                baseline.add_metric(key, comparison["baseline"]["mean"])
            if comparison["relative_change"] is not None:
                change.add_metric(key, comparison["relative_change"])
    yield from (window, baseline, change)
