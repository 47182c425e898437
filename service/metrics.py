"""Prometheus metrics on a registry of our own.

Intake and run counters are per process. Drift gauges are rendered at scrape time from
the latest RunResults in Redis (service/metrics_gauges.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from core.results import RunResult
from service.metrics_gauges import LatestRunsCollector

RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, registry: CollectorRegistry, version: str, max_columns: int = 100) -> None:
        self.registry = registry
        self._intake_counters()
        self._run_counters()
        self._stream_metrics()
        Info("driftmon_build", "driftmon version.", registry=registry).info({"version": version})
        self.latest = LatestRunsCollector(max_columns)
        registry.register(self.latest)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    def _counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _intake_counters(self) -> None:
        self.events = self._counter(
            "driftmon_events",
            "Prediction events received, by outcome (accepted, duplicate, rejected).",
            ["model", "source", "outcome"],
        )
        self.rejects = self._counter(
            "driftmon_events_rejected_by_reason",
            "Records rejected at intake, by reason (invalid, type_mismatch, unknown_field).",
            ["model", "source", "reason"],
        )
        self.labels = self._counter(
            "driftmon_labels",
            "Ground-truth labels received, by outcome (accepted, unknown event).",
            ["model", "source", "outcome"],
        )
        self.reference_uploads = self._counter(
            "driftmon_reference_uploads", "Reference uploads accepted.", ["model"]
        )
        self.kpi_points = self._counter(
            "driftmon_kpi_points", "Business KPI points received.", ["model", "source"]
        )
        self.cloudevents = self._counter(
            "driftmon_cloudevents",
            "Inference-logger CloudEvents by half (request, response, feedback) and outcome.",
            ["half", "outcome"],
        )
        self.cloudevents_unmatched = self._counter(
            "driftmon_cloudevents_unmatched",
            "Request or response halves that expired without their partner.",
            ["model"],
        )

    def _run_counters(self) -> None:
        self.runs = self._counter(
            "driftmon_detection_runs",
            "Detection runs finished in this process, by status.",
            ["model", "status", "trigger"],
        )
        self.run_duration = Histogram(
            "driftmon_detection_run_duration_seconds",
            "Wall time of detection runs in this process.",
            ["model"],
            buckets=RUN_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.sink_failures = self._counter(
            "driftmon_run_sink_failures",
            "Run sinks (metrics, alerts, labeling) that raised on a finished run.",
            ["sink"],
        )

    def _stream_metrics(self) -> None:
        self.stream_entries = self._counter(
            "driftmon_stream_entries",
            "Redis Stream entries by outcome (read, redelivered, acked, dead_lettered, deleted).",
            ["stream", "outcome"],
        )
        self.stream_lag = Gauge(
            "driftmon_stream_lag_entries",
            "Entries in the stream not yet delivered to the consumer group.",
            ["stream"],
            registry=self.registry,
        )
        self.stream_pending = Gauge(
            "driftmon_stream_pending_entries",
            "Entries delivered to the consumer group but not yet acknowledged.",
            ["stream"],
            registry=self.registry,
        )
        # no labels: the series exists at 0 from start, so `increase()` sees the first one
        self.stream_consumer_restarts = PlainCounter(
            "driftmon_stream_consumer_restarts",
            "Restarts of the stream consumer after it failed (each failure is logged).",
        )
        self.registry.register(self.stream_consumer_restarts)

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

    def count_stream_consumer_restart(self) -> None:
        self.stream_consumer_restarts.inc()

    def observe_run(self, result: RunResult) -> None:
        self.runs.labels(result.model, result.status, result.trigger).inc()
        self.run_duration.labels(result.model).observe(result.duration_seconds)

    def count_sink_failure(self, sink: str) -> None:
        self.sink_failures.labels(sink).inc()

    def forget_model(self, model: str) -> None:
        """Drop the series of a deleted model from every per-process metric with a `model`
        label (found by looking, so that a metric added later is covered too)."""
        for metric in vars(self).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            names = metric._labelnames  # prometheus_client has no public accessor
            if "model" not in names:
                continue
            children = {
                tuple(sample.labels[name] for name in names)
                for family in metric.collect()
                for sample in family.samples
                if sample.labels.get("model") == model
            }
            for labelvalues in children:
                metric.remove(*labelvalues)


class PlainCounter(Collector):
    """A counter without labels. prometheus_client's own would also export a
    `<name>_created` gauge, a second family that docs/metrics.md would have to list."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self.value)

    def describe(self) -> Iterable[CounterMetricFamily]:
        return self.collect()


class MetricsSink:
    """Counts and times each finished run. The gauges need no sink: they are rendered
    from the latest runs in Redis at scrape time."""

    name = "metrics"

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def publish(self, run: RunResult, previous: RunResult | None) -> None:
        self._metrics.observe_run(run)
