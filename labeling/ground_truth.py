"""Concluding an annotated task: decide on its annotations (consensus.decide), publish a
final label as the event's ground truth, then settle the task in the queue, told how
many annotations were decided on; when another annotation came in meanwhile
(StaleTaskError) the task is read again and decided again, a few times at most (the
newest annotation's own call decides on all of them).

Publishing a final label writes the event's ground truth in the label store (what
`POST /labels` writes, read by the next runs' performance section) and a mark saying
the label came from the queue, and whether the sample was drawn at random (`"random"`
among its reasons), so that the performance section can tell the unbiased labels apart.
Both writes are idempotent and come BEFORE the settle: a process dying between the two
leaves the task unsettled with its label already in the store, and whichever call
concludes the task next (the next annotation on it) writes the same label again and
settles it; never a done task whose label is missing. The price is a label written for
a decision the settle then refuses: when another call settled the task first
(TaskDoneError), this call writes the settled label again should it differ from its own,
so the store ends with the task's final label; when a late annotation turns the decision
into a tie (adjudication), the label written stays until the adjudicator's replaces it
(logged). The settle also prunes the model's old done tasks (the label TTL,
`done_max`: core/stores/label_queue.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from core.labeling import Label, LabelingConfig, LabelTask
from core.stores.label_queue import LabelQueue
from core.stores.label_queue_errors import StaleTaskError, TaskDoneError, UnknownTaskError
from core.stores.label_queue_types import Retention
from labeling.consensus import decide

log = logging.getLogger(__name__)

# decide-and-settle rounds of one annotation before leaving it to a newer one's call
SETTLE_TRIES = 8


class GroundTruth(Protocol):
    """The label store as the workflow writes it (core/stores/labels.py)."""

    async def put_labels(
        self,
        model: str,
        labels: dict[str, object],
        ttl_seconds: float,
        origins: dict[str, bool] | None = None,
        /,
    ) -> tuple[int, int]: ...


class TaskConcluder:
    """Decides, publishes and settles annotated tasks of one app's queue."""

    def __init__(
        self,
        queue: LabelQueue,
        labels: GroundTruth,
        labeling_for: Callable[[str], LabelingConfig],
        label_ttl_seconds: float,
    ) -> None:
        self._queue = queue
        self._labels = labels
        self._labeling_for = labeling_for
        self._ttl = label_ttl_seconds

    async def conclude(self, task: LabelTask) -> LabelTask:
        """Decide on the task's annotations and settle what they decide; a final label is
        published (as the event's ground truth) before the settle that makes it final."""
        published: list[Label | None] = []  # the label this call wrote, if any
        for _ in range(SETTLE_TRIES):
            decision = decide(task)
            if decision.state in ("open", task.state):
                return await self._after(task, published)
            if decision.state == "done" and published != [decision.final_label]:
                await self._publish(task, decision.final_label)
                published = [decision.final_label]
            config = self._labeling_for(task.model)
            try:
                settled = await self._queue.settle(
                    task.id,
                    decision.state,
                    decision.final_label,
                    decision.agreement,
                    expected_annotations=len(task.annotations),
                    retention=Retention(self._ttl, config.done_max),
                )
            except StaleTaskError:
                task = await self._reread(task)
                continue
            except TaskDoneError:  # another call settled it, and published its label first
                return await self._after(await self._reread(task), published)
            return await self._after(settled, published)
        log.info(
            "task %s changed under %d decisions: a newer annotation decides", task.id, SETTLE_TRIES
        )
        return task

    async def _after(self, task: LabelTask, published: list[Label | None]) -> LabelTask:
        """The task as settled (by this call or another), once this one published a label:
        the store gets the task's final label again should this call's have replaced it."""
        if not published:
            return task
        if task.state == "done":
            if published != [task.final_label]:
                await self._publish(task, task.final_label)
        else:
            log.info(
                "task %s went to %s after its label %r was published: the %s replaces it",
                task.id,
                task.state,
                published[0],
                "adjudicator's" if task.state == "adjudication" else "next decision",
            )
        return task

    async def _reread(self, task: LabelTask) -> LabelTask:
        fresh = await self._queue.get(task.id)
        if fresh is None:  # its model was deleted meanwhile, or the task pruned
            raise UnknownTaskError(task.id, f"no task {task.id!r}")
        return fresh

    async def _publish(self, task: LabelTask, final_label: Label | None) -> None:
        """The final label becomes the event's ground truth, marked as the queue's."""
        event_id = task.sample.event_id
        origin = {event_id: "random" in task.sample.reasons}
        _, unknown = await self._labels.put_labels(
            task.model, {event_id: final_label}, self._ttl, origin
        )
        if unknown:  # the event is past retention: nothing to join the label to
            log.info("final label of task %s: event %r is no longer stored", task.id, event_id)
