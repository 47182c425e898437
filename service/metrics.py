"""Prometheus metrics on a registry of our own.

Intake, run and delivery counters are per process (service/metrics_families.py). Drift
gauges are rendered at scrape time from the latest RunResults in Redis
(service/metrics_gauges.py, each model's text cached while its latest runs stay the
same, service/metrics_text.py), alert and outbox gauges from the alert store and the outbox
(service/metrics_alerts.py), labeling gauges from the label queue
(service/metrics_labeling.py).

Counters with an outcome, status or reason label export every known value at 0 from
the first use of their other labels on (service/metrics_counters.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from core.labeling import FlaggedSample
from core.results import RunResult
from core.stores.runs import RunStore
from service.metrics_alerts import AlertsCollector, AlertStateSource, OutboxStats
from service.metrics_families import MetricFamilies
from service.metrics_gauges import LatestRunsCollector
from service.metrics_labeling import LabelingCollector, LabelingSource
from service.metrics_latest import CreatedAtSource, LatestRunsReader


class Metrics(MetricFamilies):
    """Records into the per-process families (service/metrics_families.py) and renders
    the gauges of the latest runs, the alerts and the label queues at scrape time."""

    def __init__(self, registry: CollectorRegistry, version: str, max_columns: int = 100) -> None:
        super().__init__(registry)
        Info("driftmon_build", "driftmon version.", registry=registry).info({"version": version})
        # not registered: exposition() appends its text, cached per model
        self.latest = LatestRunsCollector(max_columns)
        self._latest_reader = LatestRunsReader()
        self.alerting = AlertsCollector(max_columns)
        registry.register(self.alerting)
        self.labeling = LabelingCollector(max_columns)
        registry.register(self.labeling)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    def exposition(self) -> bytes:
        """What /metrics serves: the registry's families, then the drift gauges."""
        return generate_latest(self.registry) + self.latest.exposition().encode()

    def count_events(self, model: str, source: str, outcome: str, amount: int) -> None:
        self._zero(self.events, model, source)
        self._zero(self.rejects, model, source)  # a batch's rejects are counted after it
        self.events.labels(model, source, outcome).inc(amount)

    def count_rejects(self, model: str, source: str, reason: str, amount: int) -> None:
        self._zero(self.rejects, model, source)
        self.rejects.labels(model, source, reason).inc(amount)

    def count_labels(self, model: str, source: str, outcome: str, amount: int) -> None:
        self._zero(self.labels, model, source)
        self.labels.labels(model, source, outcome).inc(amount)

    def count_labeling_tasks(self, model: str, outcome: str, amount: int) -> None:
        self._zero(self.labeling_tasks, model)
        self.labeling_tasks.labels(model, outcome).inc(amount)

    def count_annotation(self, model: str, outcome: str) -> None:
        self._zero(self.annotations, model)
        self.annotations.labels(model, outcome).inc()

    def count_kpis(self, model: str, source: str, amount: int) -> None:
        self.kpi_points.labels(model, source).inc(amount)

    def count_cloudevent(self, half: str, outcome: str, amount: int = 1) -> None:
        self.cloudevents.labels(half, outcome).inc(amount)

    def count_unmatched(self, model: str, amount: int) -> None:
        self.cloudevents_unmatched.labels(model).inc(amount)

    def count_stream(self, stream: str, outcome: str, amount: int) -> None:
        self._zero(self.stream_entries, stream)
        self.stream_entries.labels(stream, outcome).inc(amount)

    def set_stream_status(self, stream: str, lag: int | None, pending: int) -> None:
        self._zero(self.stream_entries, stream)  # reported from the consumer's start on
        if lag is not None:
            self.stream_lag.labels(stream).set(lag)
        self.stream_pending.labels(stream).set(pending)

    def count_stream_consumer_restart(self) -> None:
        self.stream_consumer_restarts.inc()

    def observe_run(self, result: RunResult) -> None:
        self._zero(self.runs, result.model)
        self.runs.labels(result.model, result.status, result.trigger).inc()
        self.run_duration.labels(result.model).observe(result.duration_seconds)

    def declare_sinks(self, names: Sequence[str]) -> None:
        """Run sinks whose failure counter starts at 0 (MetricsSink declares itself)."""
        for name in names:
            self._zero(self.sink_failures, name)

    def count_sink_failure(self, sink: str) -> None:
        self._zero(self.sink_failures, sink)
        self.sink_failures.labels(sink).inc()

    def declare_channels(self, names: Sequence[str]) -> None:
        """Notification channels whose delivery series start at 0 (every outcome)."""
        for name in names:
            self._zero(self.notifications, name)
            self.delivery_seconds.labels(name)

    def count_delivery(self, channel: str, outcome: str) -> None:
        """One delivery attempt's outcome: delivered, retried, dead_lettered or failed."""
        self._zero(self.notifications, channel)
        self.notifications.labels(channel, outcome).inc()

    def observe_delivery_seconds(self, channel: str, seconds: float) -> None:
        self.delivery_seconds.labels(channel).observe(seconds)

    def set_alert_states(self, model: str, states: Sequence[tuple[str, str | None, str]]) -> None:
        """The model's alerts as (rule, column or None, state), replacing its series:
        pending and firing ones are exported, at most max_columns per model."""
        self.alerting.set_model(model, states)

    def attach_alert_sources(
        self, outbox: OutboxStats | None, alerts: AlertStateSource | None
    ) -> None:
        """Where refresh_alerts reads the outbox and the alert states from."""
        self.alerting.attach(outbox, alerts)

    async def refresh_latest(
        self,
        runs: RunStore,
        registry: CreatedAtSource,
        models: Sequence[str],
        schedule_seconds: Callable[[str], float],
        now: float,
    ) -> None:
        """Reads the drift gauges' latest runs for the next scrape, in a bounded number of
        round trips whatever the number of models (service/metrics_latest.py)."""
        snapshots = await self._latest_reader.snapshots(
            runs, registry, models, schedule_seconds, now
        )
        self.latest.update(snapshots)

    async def refresh_alerts(self, now: float) -> None:
        """Reads the outbox and alert gauges for the next scrape (the /metrics route
        awaits it before rendering, as it refreshes the drift gauges)."""
        await self.alerting.refresh(now)

    def attach_labeling_sources(self, source: LabelingSource | None) -> None:
        """Where refresh_labeling reads the label queues and the annotators' agreement."""
        self.labeling.attach(source)

    async def refresh_labeling(self, now: float, models: Iterable[str]) -> None:
        """Reads the labeling gauges of these models for the next scrape (the /metrics
        route awaits it before rendering, as it refreshes the alert gauges)."""
        await self.labeling.refresh(now, models)

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
        self._zeroed.forget("model", model)  # created at 0 again if the model comes back
        self.alerting.forget_model(model)
        self._latest_reader.forget_model(model)


class MetricsSink:
    """Counts and times each finished run. The gauges need no sink: they are rendered
    from the latest runs in Redis at scrape time."""

    name = "metrics"

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        metrics.declare_sinks([self.name])

    async def publish(
        self,
        run: RunResult,
        previous: RunResult | None,
        flagged: Sequence[FlaggedSample] = (),
    ) -> None:
        self._metrics.observe_run(run)
