"""The per-process metric families (intake, runs, stream consumer, deliveries), created
on a registry with every known outcome, status or reason at 0 from the first use of
their other labels on (service/metrics_counters.py). Metrics (service/metrics.py)
records into them."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from service.metrics_counters import (
    ANNOTATION_OUTCOMES,
    CLOUDEVENT_OUTCOMES,
    DELIVERY_OUTCOMES,
    EVENT_OUTCOMES,
    LABEL_OUTCOMES,
    LABELING_OUTCOMES,
    REJECT_REASONS,
    RUN_STATUSES,
    RUN_TRIGGERS,
    STREAM_OUTCOMES,
    PlainCounter,
    ZeroedCounters,
)

RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# No `<name>_created` series: one more sample per counter child and, in the text format
# Prometheus scrapes, a second (gauge) family per counter that nothing reads.
disable_created_metrics()  # type: ignore[no-untyped-call]


class MetricFamilies:
    """The per-process counters, histograms and gauges, each an attribute (so that
    Metrics.forget_model finds every one with a `model` label by looking)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._zeroed = ZeroedCounters(registry)
        self._intake_counters()
        self._labeling_counters()
        self._upload_counters()
        self._cloudevent_counters()
        self._run_counters()
        self._stream_metrics()
        self._delivery_metrics()

    def _counter(
        self, name: str, documentation: str, labels: list[str], *closed: Sequence[str]
    ) -> Counter:
        """A counter whose last len(closed) labels take closed values, created at 0."""
        return self._zeroed.counter(name, documentation, labels, *closed)

    def _zero(self, counter: Counter, *open_values: str) -> None:
        self._zeroed.zero(counter, *open_values)

    def _intake_counters(self) -> None:
        self.events = self._counter(
            "driftmon_events",
            "Prediction events received, by outcome (accepted, duplicate, rejected).",
            ["model", "source", "outcome"],
            EVENT_OUTCOMES,
        )
        self.rejects = self._counter(
            "driftmon_events_rejected_by_reason",
            "Records rejected at intake, by reason (invalid, type_mismatch, unknown_field).",
            ["model", "source", "reason"],
            REJECT_REASONS,
        )
        self.labels = self._counter(
            "driftmon_labels",
            "Ground-truth labels received, by outcome (accepted, unknown event).",
            ["model", "source", "outcome"],
            LABEL_OUTCOMES,
        )

    def _labeling_counters(self) -> None:
        self.labeling_tasks = self._counter(
            "driftmon_labeling_tasks",
            "Flagged samples offered to the labeling queue, by outcome (queued, duplicate: "
            "queued before, evicted: the queue's bound pushed a lower-priority task out).",
            ["model", "outcome"],
            LABELING_OUTCOMES,
        )
        self.annotations = self._counter(
            "driftmon_labeling_annotations",
            "Annotations received, by outcome (labeled, skipped).",
            ["model", "outcome"],
            ANNOTATION_OUTCOMES,
        )

    def _upload_counters(self) -> None:
        self.reference_uploads = self._counter(
            "driftmon_reference_uploads", "Reference uploads accepted.", ["model"]
        )
        self.kpi_points = self._counter(
            "driftmon_kpi_points", "Business KPI points received.", ["model", "source"]
        )

    def _cloudevent_counters(self) -> None:
        self.cloudevents = self._counter(
            "driftmon_cloudevents",
            "Inference-logger CloudEvents by half (request, response, feedback) and outcome.",
            ["half", "outcome"],
        )
        for half, outcomes in CLOUDEVENT_OUTCOMES.items():
            for outcome in outcomes:
                self.cloudevents.labels(half, outcome)
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
            RUN_STATUSES,
            RUN_TRIGGERS,
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
            STREAM_OUTCOMES,
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

    def _delivery_metrics(self) -> None:
        self.notifications = self._counter(
            "driftmon_alert_notifications",
            "Alert notification deliveries by channel and outcome "
            "(delivered, retried, dead_lettered, failed).",
            ["channel", "outcome"],
            DELIVERY_OUTCOMES,
        )
        self.delivery_seconds = Histogram(
            "driftmon_alert_delivery_seconds",
            "Wall time of one delivery attempt to a channel, whatever its outcome.",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
