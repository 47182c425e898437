"""Labeling gauges, read from Redis before each scrape like the alert gauges, so every
replica serves the same answer: the label queue's tasks by state, and each annotator's
agreement with the consensus over the last 7 days.

With a source attached (service/labeling_agreements.py), the /metrics route awaits
`refresh` with the registered models before rendering; without one, the families are
exported empty."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

AGREEMENT_WINDOW_SECONDS = 7 * 86_400.0
# agreements are re-read when a model's queue counts change, else after this long: an
# answer that leaves the counts as they were shows up within it
AGREEMENT_CACHE_SECONDS = 60.0
# exported queue states; `claimed` tasks are open or in adjudication as well
QUEUE_STATES = ("open", "claimed", "adjudication", "done")


class QueueCounts(Protocol):
    """The label queue's counts (core.stores.label_queue_types.QueueStats has these fields)."""

    @property
    def open(self) -> int: ...

    @property
    def claimed(self) -> int: ...

    @property
    def adjudication(self) -> int: ...

    @property
    def done(self) -> int: ...


class AgreementSeries(Protocol):
    """One annotator's agreement (alerts.rules_labeling.AnnotatorAgreement has these)."""

    @property
    def annotator(self) -> str: ...

    @property
    def agreement(self) -> float | None: ...


class LabelingSource(Protocol):
    """Where the gauges read the labeling loop (service.labeling_agreements)."""

    async def queue_stats(self, model: str) -> QueueCounts: ...

    async def agreements(self, model: str, since: float) -> Sequence[AgreementSeries]:
        """Per annotator, over the model's tasks annotated at or after `since`."""
        ...


@dataclass(frozen=True)
class _CachedAgreements:
    read_at: float  # unix seconds
    version: tuple[int, int, int]  # the queue's open, adjudication and done counts then
    series: list[tuple[str, float]]


class LabelingCollector(Collector):
    """`driftmon_labeling_queue_tasks{model, state}` for every model with a task, and
    `driftmon_labeling_annotator_agreement{model, annotator}` for every annotator with an
    answer compared with a consensus in the window, capped per model (`max_per_model`,
    the per-column cap), lowest agreement first. Annotator names are checked by the API
    (labeling.normalize.ANNOTATOR_PATTERN) before they are stored."""

    def __init__(self, max_per_model: int) -> None:
        self._max_per_model = max_per_model
        self._source: LabelingSource | None = None
        self._queues: dict[str, tuple[int, int, int, int]] = {}
        self._agreements: dict[str, list[tuple[str, float]]] = {}
        # model: (read at, queue counts then, series): a week of tasks is costly to read
        self._agreement_cache: dict[str, _CachedAgreements] = {}

    def attach(self, source: LabelingSource | None) -> None:
        self._source = source

    async def refresh(self, now: float, models: Iterable[str]) -> None:
        """Reads the attached source for the next scrape; models left out have no
        series. `now` in unix seconds."""
        if self._source is None:
            return
        queues: dict[str, tuple[int, int, int, int]] = {}
        agreements: dict[str, list[tuple[str, float]]] = {}
        cache: dict[str, _CachedAgreements] = {}
        for model in models:
            stats = await self._source.queue_stats(model)
            counts = (stats.open, stats.claimed, stats.adjudication, stats.done)
            if any(counts):
                queues[model] = counts
            cache[model] = await self._agreements_of(self._source, model, counts, now)
            if cache[model].series:
                agreements[model] = cache[model].series
        self._queues, self._agreements, self._agreement_cache = queues, agreements, cache

    async def _agreements_of(
        self, source: LabelingSource, model: str, counts: tuple[int, int, int, int], now: float
    ) -> _CachedAgreements:
        """The model's capped agreement series, re-read when its queue counts (claims
        aside: they expire by themselves) changed, the cache is older than
        AGREEMENT_CACHE_SECONDS, or the clock went back."""
        version = (counts[0], counts[2], counts[3])
        cached = self._agreement_cache.get(model)
        if (
            cached is not None
            and cached.version == version
            and 0.0 <= now - cached.read_at < AGREEMENT_CACHE_SECONDS
        ):
            return cached
        found = await source.agreements(model, now - AGREEMENT_WINDOW_SECONDS)
        series = [(a.annotator, a.agreement) for a in found if a.agreement is not None]
        return _CachedAgreements(now, version, self._capped(series))

    def _capped(self, series: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return sorted(series, key=lambda item: (item[1], item[0]))[: self._max_per_model]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue = GaugeMetricFamily(
            "driftmon_labeling_queue_tasks",
            "Labeling tasks by state (open, claimed: open or adjudication with a live claim, "
            "adjudication, done).",
            labels=["model", "state"],
        )
        for model, counts in self._queues.items():
            for state, count in zip(QUEUE_STATES, counts, strict=True):
                queue.add_metric([model, state], float(count))
        yield queue
        agreement = GaugeMetricFamily(
            "driftmon_labeling_annotator_agreement",
            "Share of an annotator's answers equal to the consensus, on the tasks annotated "
            "in the last 7 days whose final label rests on two answers or more.",
            labels=["model", "annotator"],
        )
        for model, series in self._agreements.items():
            for annotator, value in series:
                agreement.add_metric([model, annotator], value)
        yield agreement

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
