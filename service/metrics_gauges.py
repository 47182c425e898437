"""Drift gauges, rendered at scrape time from the latest RunResults in Redis: every
replica serves the same answer, and a model or column that disappears stops being
exported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.results import ColumnResult, RunResult
from service.metrics_sections import (
    gauge,
    kpi_gauges,
    multivariate_gauges,
    performance_gauges,
    prediction_gauges,
    quality_gauges,
)
from service.metrics_text import PerModelExposition


@dataclass
class ModelSnapshot:
    """What one model's gauges are rendered from at scrape time."""

    latest: RunResult | None
    latest_ok: RunResult | None
    schedule_seconds: float
    # when the model was registered (its first reference), unix seconds: the age of a
    # model that never had an ok run (DriftmonMonitorStale)
    created_at: float | None = None


class LatestRunsCollector(Collector):
    """Gauges of the newest run per model, refreshed from Redis before each scrape.

    Per-column gauges are capped per model (`max_columns`): a wide model would otherwise
    multiply every series by its width. Drifted and high-scoring columns go first.

    /metrics serves `exposition()`, the same text as `generate_latest` of `collect()`
    from each model's text cached while its snapshot stays the same
    (service/metrics_text.py): the collector is not registered on the registry."""

    def __init__(self, max_columns: int) -> None:
        self._max_columns = max_columns
        self._models: Mapping[str, ModelSnapshot] = {}
        self._text = PerModelExposition(self._families, _same_snapshot)

    def update(self, models: Mapping[str, ModelSnapshot]) -> None:
        self._models = models

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self._families(self._models)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def exposition(self) -> str:
        """The gauges in the Prometheus text format."""
        return self._text.render(self._models)

    def _families(self, models: Mapping[str, ModelSnapshot]) -> Iterator[GaugeMetricFamily]:
        ok_runs = [
            capped_columns(snapshot.latest_ok, self._max_columns)
            for snapshot in models.values()
            if snapshot.latest_ok is not None
        ]
        latest = [s.latest for s in models.values() if s.latest is not None]
        yield from _run_gauges(latest)
        yield from _schedule_gauges(models, self._max_columns)
        yield from _column_gauges(ok_runs)
        yield from prediction_gauges(ok_runs)
        yield from quality_gauges(ok_runs)
        yield from performance_gauges(ok_runs)
        yield from multivariate_gauges(ok_runs)
        yield from kpi_gauges(ok_runs)
        yield _last_success(ok_runs)


def _same_snapshot(rendered: ModelSnapshot, current: ModelSnapshot) -> bool:
    """The runs compared by identity: the reader (service/metrics_latest.py) hands out the
    same decoded run for as long as it is a model's latest, and a stored run never
    changes; one decoded again is rendered again."""
    return (
        rendered.latest is current.latest
        and rendered.latest_ok is current.latest_ok
        and rendered.schedule_seconds == current.schedule_seconds
        and rendered.created_at == current.created_at
    )


def capped_columns(result: RunResult, cap: int) -> RunResult:
    """The result with at most `cap` columns: drifted first, then by score."""
    if len(result.columns) <= cap:
        return result

    def priority(item: tuple[str, ColumnResult]) -> tuple[bool, float, str]:
        name, verdict = item
        return (not verdict.drifted, -(verdict.score or 0.0), name)

    kept = dict(sorted(result.columns.items(), key=priority)[:cap])
    return result.model_copy(update={"columns": kept})


def _schedule_gauges(models: Mapping[str, ModelSnapshot], cap: int) -> Iterator[GaugeMetricFamily]:
    interval = gauge(
        "driftmon_schedule_interval_seconds", "Configured detection interval.", ["model"]
    )
    streak = gauge(
        "driftmon_dataset_drift_streak_runs",
        "Consecutive latest successful runs that found dataset drift.",
        ["model"],
    )
    span = gauge(
        "driftmon_window_span_seconds",
        "Time between the oldest and newest event of the latest run's window.",
        ["model"],
    )
    unexported = gauge(
        "driftmon_unexported_columns",
        "Columns left out of per-column metrics by DRIFTMON_METRICS_MAX_COLUMNS.",
        ["model"],
    )
    created = gauge(
        "driftmon_model_created_timestamp_seconds",
        "When the model was registered (its first reference upload).",
        ["model"],
    )
    for model, snapshot in models.items():
        interval.add_metric([model], snapshot.schedule_seconds)
        if snapshot.created_at is not None:
            created.add_metric([model], snapshot.created_at)
        ok = snapshot.latest_ok
        if ok is None:
            continue
        streak.add_metric([model], ok.dataset_drift_streak)
        if ok.window.start and ok.window.end:
            span.add_metric([model], _timestamp(ok.window.end) - _timestamp(ok.window.start))
        unexported.add_metric([model], max(0, len(ok.columns) - cap))
    yield from (interval, created, streak, span, unexported)


def _run_gauges(results: Iterable[RunResult]) -> Iterator[GaugeMetricFamily]:
    window = gauge("driftmon_window_events", "Events in the window of the latest run.", ["model"])
    dataset = gauge(
        "driftmon_dataset_drift", "1 when the latest run found dataset drift.", ["model"]
    )
    share = gauge(
        "driftmon_drifted_columns_share", "Share of columns drifted in the latest run.", ["model"]
    )
    status = gauge(
        "driftmon_last_run_status",
        "1 for the status of the latest run (ok, insufficient_data, error).",
        ["model", "status"],
    )
    duration = gauge(
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
    score = gauge(
        "driftmon_column_drift_score",
        "Drift score of a column (method-specific).",
        [*labels, "method"],
    )
    threshold = gauge(
        "driftmon_column_drift_threshold", "Threshold the score is compared with.", labels
    )
    drifted = gauge(
        "driftmon_column_drifted", "1 when the column drifted in the latest ok run.", labels
    )
    missing = gauge(
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
    started = gauge(
        "driftmon_last_successful_run_timestamp_seconds",
        "Start time of the latest run with status ok.",
        ["model"],
    )
    for result in results:
        started.add_metric([result.model], _timestamp(result.started_at))
    return started


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
