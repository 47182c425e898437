"""Counters whose labels take closed sets of values, created at 0.

Prometheus' own advice: a labelled series that first appears at 2 looks to `increase()`
and `rate()` as if it had always been 2, so the first increments after a start are
lost (DriftmonDeadLettersGrowing missed the first dead letters that way). A counter
declared here names the closed values of its trailing labels (outcome, status,
reason, ...); the first time its leading, open labels (model, source, stream, channel)
are used, every closed value is created at 0 beside the one being counted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import product

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

EVENT_OUTCOMES = ("accepted", "duplicate", "rejected")
REJECT_REASONS = ("invalid", "type_mismatch", "unknown_field")
LABEL_OUTCOMES = ("accepted", "unknown")
LABELING_OUTCOMES = ("queued", "duplicate", "evicted")
ANNOTATION_OUTCOMES = ("labeled", "skipped")
RUN_STATUSES = ("ok", "insufficient_data", "error")
RUN_TRIGGERS = ("schedule", "manual")
STREAM_OUTCOMES = ("read", "redelivered", "acked", "dead_lettered", "deleted")
# delivered; retried: the attempt failed and another follows; dead_lettered: given up
# (attempts or age exhausted, or refused for good); failed: the dispatcher itself failed
# (the outbox unreachable), the notification is claimed again when its lease runs out
DELIVERY_OUTCOMES = ("delivered", "retried", "dead_lettered", "failed")
# the (half, outcome) pairs collectors/ce_intake.py counts
CLOUDEVENT_OUTCOMES = {
    "request": ("waiting", "joined", "unknown_model", "invalid"),
    "response": ("waiting", "joined", "unknown_model", "invalid"),
    "feedback": ("joined", "unknown_model", "invalid"),
    "other": ("ignored_type", "invalid"),
}


class ZeroedCounters:
    """Declares counters with closed trailing labels and creates their values at 0."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._closed: dict[Counter, tuple[Sequence[str], ...]] = {}
        # (counter, values of its open labels) whose closed values exist
        self._zeroed: set[tuple[Counter, tuple[str, ...]]] = set()

    def counter(
        self, name: str, documentation: str, labels: list[str], *closed: Sequence[str]
    ) -> Counter:
        """A counter whose last len(closed) labels take the closed values given."""
        counter = Counter(name, documentation, labels, registry=self._registry)
        self._closed[counter] = closed
        return counter

    def zero(self, counter: Counter, *open_values: str) -> None:
        """Every closed value of the counter at 0 (if not there yet) for these open ones."""
        key = (counter, open_values)
        if key in self._zeroed:
            return
        self._zeroed.add(key)
        for closed_values in product(*self._closed[counter]):
            counter.labels(*open_values, *closed_values)

    def forget(self, label: str, value: str) -> None:
        """After the series with label=value were removed: created again on next use."""

        def kept(counter: Counter, values: tuple[str, ...]) -> bool:
            names = counter._labelnames[: len(values)]  # no public accessor
            return label not in names or values[names.index(label)] != value

        self._zeroed = {
            (counter, values) for counter, values in self._zeroed if kept(counter, values)
        }


class PlainCounter(Collector):
    """A counter without labels, exported from the start at 0."""

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
