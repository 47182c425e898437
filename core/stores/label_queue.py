"""The labeling queue: flagged samples become tasks that people claim and annotate.

One task per event id: a sample whose event already has a task is a duplicate (an
evicted task frees its event id). Open tasks are kept by priority, at most the model's
`queue_max`; beyond it the lowest-priority ones that nobody has touched (no annotation,
no live claim) are evicted and counted. A task needs K non-skip annotations; at most K
annotators hold or have answered it at once: a claim takes a slot for its lease, an
annotation keeps it, a skip frees it (the skipper never gets the task again). The store
does not judge: `annotate` returns the task and the caller (the labeling layer) settles
it as done or sends it to adjudication, where only adjudicators claim it.

Done tasks are kept for a while, not forever: each settle as done also prunes, at most
PRUNE_BATCH of them per call, the oldest done tasks settled more than the retention's
`seconds` ago (the label TTL) or beyond its `max_done` (`LabelingConfig.done_max`),
with their annotations and their event ids. "One task per event" therefore holds while
the event's task is kept: an event whose done task was pruned (or whose open task was
evicted) gets a new task if a later run flags it again, which by then (past the label
TTL) its stored event and label usually no longer allow. A done task holds its final
label and the dataset export's rows: the export reaches back `max_done` tasks at most.

Every write is one Lua script over the model's keys, which share its hash tag (a Redis
Cluster keeps them in one slot), so two replicas never hand a task beyond its K.

Claims hide the answer: a claimed task comes without its gold label, without the
sample's ground truth and (but for adjudicators) without the others' annotations.
`get`, `tasks` and `annotations` return everything: the service must not show them
to annotators as they are."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from core.clock import Clock
from core.keys import Keys
from core.labeling import Annotation, FlaggedSample, LabelingConfig, LabelTask, TaskState
from core.stores.label_queue_lua import PRUNE_SCRIPT, script_keys
from core.stores.label_queue_lua_writes import (
    ADD_SCRIPT,
    ANNOTATE_SCRIPT,
    CLAIM_SCRIPT,
    SETTLE_SCRIPT,
)
from core.stores.label_queue_types import AddResult, Retention, model_of, task_id_for
from core.stores.label_queue_views import LabelQueueReads, task_from_reply, task_from_view

# done tasks pruned per settle (or prune) call at most: bounded work in one script, yet
# far more than the one task a settle adds, so a queue past its bounds comes down fast
PRUNE_BATCH = 100


class LabelQueue(LabelQueueReads):
    """The queue's writes; its reads (`get`, `tasks`, `annotations`, `stats`) are
    LabelQueueReads' (label_queue_views.py)."""

    def __init__(self, redis: Redis, keys: Keys, clock: Clock) -> None:
        super().__init__(redis, keys, clock)
        self._add = redis.register_script(ADD_SCRIPT)
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._annotate = redis.register_script(ANNOTATE_SCRIPT)
        self._settle = redis.register_script(SETTLE_SCRIPT)
        self._prune = redis.register_script(PRUNE_SCRIPT)

    async def add(
        self,
        model: str,
        samples: Sequence[FlaggedSample],
        run_id: str,
        config: LabelingConfig,
        now: float,
    ) -> AddResult:
        """Queue a task per sample whose event has none yet, each needing
        `config.required_for(reasons)` annotations. A sample that carries ground truth
        may become a gold task (its label the known answer), so that gold tasks make
        `config.gold_share` of the tasks as far as such samples allow, in queue order.
        Then the open tasks beyond `config.queue_max` go, lowest priority first, of those
        without annotations or live claims."""
        args: list[Any] = [now, config.queue_max, config.gold_share]
        for sample in samples:
            args += _add_args(model, sample, run_id, config, now)
        keys = script_keys(self._keys, model)
        queued, duplicates, evicted = await self._add(keys=keys, args=args)
        return AddResult(queued=int(queued), duplicates=int(duplicates), evicted=int(evicted))

    async def claim(
        self,
        model: str,
        annotator: str,
        limit: int,
        lease_seconds: float,
        now: float,
        *,
        adjudicator: bool = False,
    ) -> list[LabelTask]:
        """Up to `limit` tasks for `annotator`, highest priority first, each held for
        `lease_seconds`: open tasks (adjudication ones for an adjudicator) that the
        annotator has neither answered nor holds, and whose live claims and non-skip
        annotations are fewer than K (one, for an adjudication). Without the answer: no
        gold label, no ground truth, and no other annotations unless for an adjudicator."""
        if limit <= 0:
            return []
        views = await self._claim(
            keys=script_keys(self._keys, model),
            args=[now, annotator, limit, repr(now + lease_seconds), "1" if adjudicator else "0"],
        )
        claimed = []
        for found in views:
            task = task_from_view(found)
            update: dict[str, Any] = {
                "gold_label": None,
                "sample": task.sample.model_copy(update={"label": None}),
            }
            if not adjudicator:
                update["annotations"] = []
            claimed.append(task.model_copy(update=update))
        return claimed

    async def annotate(self, task_id: str, annotation: Annotation, now: float) -> LabelTask:
        """Record an annotation (ending the annotator's claim) and return the task with
        it. UnknownTaskError, AlreadyAnnotatedError, TaskDoneError, or
        AdjudicationPendingError for a non-adjudicator's answer to a task in
        adjudication; ValueError for an answer without a label. Whether the task is
        done is the caller's to decide (`settle`)."""
        if not annotation.skip and annotation.label is None:
            raise ValueError("an annotation that is no skip needs a label")
        model = model_of(task_id)
        reply = await self._annotate(
            keys=script_keys(self._keys, model),
            args=[
                task_id,
                annotation.annotator,
                "skip" if annotation.skip else "label",
                "1" if annotation.adjudicator else "0",
                annotation.model_dump_json(),
                annotation.at,
                now,
            ],
        )
        return task_from_reply(task_id, reply)

    async def settle(
        self,
        task_id: str,
        state: TaskState,
        final_label: object,
        agreement: float | None,
        *,
        expected_annotations: int | None = None,
        retention: Retention | None = None,
    ) -> LabelTask:
        """Set the outcome the caller decided: "done" (with the final label) or
        "adjudication" (the task goes to the adjudicators' queue, its claims end). Given
        `expected_annotations` (the annotations decided on), StaleTaskError when the task
        has another number by now. Given a `retention`, a task settled as done also
        prunes the model's done tasks past it (`prune`). UnknownTaskError, TaskDoneError.
        Returns the task as settled, even if the pruning took it at once."""
        if state == "open":
            raise ValueError('a task is settled as "done" or "adjudication", not "open"')
        model = model_of(task_id)
        now = self._clock.now()
        outcome = {"final_label": final_label, "agreement": agreement, "settled_at": now}
        reply = await self._settle(
            keys=script_keys(self._keys, model),
            args=[
                task_id,
                state,
                orjson.dumps(outcome),
                now,
                "" if expected_annotations is None else expected_annotations,
                *_prune_args(retention, now),
            ],
        )
        return task_from_reply(task_id, reply)

    async def prune(self, model: str, retention: Retention, now: float) -> int:
        """Drop up to PRUNE_BATCH done tasks, oldest first: those settled more than
        `retention.seconds` before `now`, then those beyond `retention.max_done`, each
        with its annotations, outcome, gold label and event id. Returns how many went."""
        pruned = await self._prune(
            keys=script_keys(self._keys, model), args=_prune_args(retention, now)
        )
        return int(pruned)

    async def forget_model(self, model: str) -> bool:
        """Every task, annotation and counter of the model goes. True when there was any."""
        return bool(await self._redis.delete(*script_keys(self._keys, model)))


def _add_args(
    model: str, sample: FlaggedSample, run_id: str, config: LabelingConfig, now: float
) -> list[Any]:
    """ADD_SCRIPT's arguments for one sample: task id, event id, priority, meta JSON,
    task JSON, gold label JSON ('' when the sample has no ground truth)."""
    if math.isnan(sample.priority):
        raise ValueError(f"event {sample.event_id!r} has no priority (NaN)")
    task_id = task_id_for(model, sample.event_id)
    required = config.required_for(sample.reasons)
    task = LabelTask(
        id=task_id,
        model=model,
        sample=sample,
        required=required,
        created_at=now,
        run_id=run_id,
    )
    meta = {"e": sample.event_id, "k": required, "r": sample.reasons}
    gold = b"" if sample.label is None else orjson.dumps(sample.label)
    return [
        task_id,
        sample.event_id,
        repr(sample.priority),
        orjson.dumps(meta),
        task.model_dump_json(),
        gold,
    ]


def _prune_args(retention: Retention | None, now: float) -> list[Any]:
    """The scripts' pruning arguments: cutoff ('' for no pruning), most kept, batch."""
    if retention is None:
        return ["", 0, 0]
    return [repr(now - retention.seconds), max(retention.max_done, 0), PRUNE_BATCH]
