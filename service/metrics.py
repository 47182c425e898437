"""Prometheus metrics on a registry of our own.

Intake and run counters are per process. Drift gauges are rendered at scrape time from
the latest RunResults in Redis, so every replica serves the same answer and a model
or column that disappears stops being exported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from detectors.result import RunResult

RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, registry: CollectorRegistry, version: str) -> None:
        self.registry = registry
        self.events = Counter(
            "driftmon_events",
            "Prediction events received, by outcome (accepted, duplicate, rejected).",
            ["model", "source", "outcome"],
            registry=registry,
        )
        self.labels = Counter(
            "driftmon_labels",
            "Ground-truth labels received, by outcome (accepted, unknown event).",
            ["model", "outcome"],
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
        Info("driftmon_build", "driftmon version.", registry=registry).info({"version": version})
        self.latest = LatestRunsCollector()
        registry.register(self.latest)

    def observe_run(self, result: RunResult) -> None:
        self.runs.labels(result.model, result.status, result.trigger).inc()
        self.run_duration.labels(result.model).observe(result.duration_seconds)


class LatestRunsCollector(Collector):
    """Gauges of the newest run per model, refreshed from Redis before each scrape."""

    def __init__(self) -> None:
        self._latest: dict[str, RunResult] = {}
        self._latest_ok: dict[str, RunResult] = {}

    def update(self, latest: dict[str, RunResult], latest_ok: dict[str, RunResult]) -> None:
        self._latest = latest
        self._latest_ok = latest_ok

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from _run_gauges(self._latest.values())
        yield from _column_gauges(self._latest_ok.values())
        yield _last_success(self._latest_ok.values())

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


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
