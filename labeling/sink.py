"""The labeling run sink: the samples a run flagged go to the model's labeling queue,
once per event however many runs flag it, within the queue's bound."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from core.clock import Clock
from core.labeling import FlaggedSample, LabelingConfig
from core.results import RunResult
from core.stores.label_queue_types import AddResult


class TaskQueue(Protocol):
    async def add(
        self,
        model: str,
        samples: Sequence[FlaggedSample],
        run_id: str,
        config: LabelingConfig,
        now: float,
    ) -> AddResult: ...


class LabelingCounter(Protocol):
    def count_labeling_tasks(self, model: str, outcome: str, amount: int) -> None: ...


class LabelingSink:
    name = "labeling"

    def __init__(
        self,
        queue: TaskQueue,
        labeling_for: Callable[[str], LabelingConfig],
        clock: Clock,
        counter: LabelingCounter,
    ) -> None:
        self._queue = queue
        self._labeling_for = labeling_for
        self._clock = clock
        self._counter = counter

    async def publish(
        self, run: RunResult, previous: RunResult | None, flagged: Sequence[FlaggedSample] = ()
    ) -> None:
        config = self._labeling_for(run.model)
        if not flagged or not config.enabled:
            return
        added = await self._queue.add(run.model, flagged, run.run_id, config, self._clock.now())
        self._counter.count_labeling_tasks(run.model, "queued", added.queued)
        self._counter.count_labeling_tasks(run.model, "duplicate", added.duplicates)
        self._counter.count_labeling_tasks(run.model, "evicted", added.evicted)
