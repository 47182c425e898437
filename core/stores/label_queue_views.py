"""The label queue's reads: tasks as the scripts view them (everything, gold label,
ground truth and annotations included: the service must not show them to annotators as
they are), and the queue's counts. LabelQueue (label_queue.py) adds the writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from core.clock import Clock
from core.keys import Keys
from core.labeling import Annotation, LabelTask, TaskState
from core.redis_types import text
from core.stores.label_queue_errors import UnknownTaskError, refusal
from core.stores.label_queue_lua import VIEWS_SCRIPT, script_keys
from core.stores.label_queue_types import QueueStats, model_of

# ids per view script call
VIEW_CHUNK = 500


class LabelQueueReads:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._views = redis.register_script(VIEWS_SCRIPT)

    async def get(self, task_id: str) -> LabelTask | None:
        """The task with everything (gold label, ground truth, annotations)."""
        try:
            model = model_of(task_id)
        except UnknownTaskError:
            return None
        found = await self._view(model, [task_id])
        return found[0] if found else None

    async def tasks(
        self, model: str, state: TaskState | None = None, limit: int = 100
    ) -> list[LabelTask]:
        """Tasks in one state or all (open, then adjudication, then done): open and
        adjudication ones highest priority first, done ones newest first."""
        if limit <= 0:
            return []
        queues = {
            "open": self._keys.label_open(model),
            "adjudication": self._keys.label_adjudication(model),
            "done": self._keys.label_done(model),
        }
        chosen = list(queues.values()) if state is None else [queues[state]]
        ids: list[bytes] = []
        for queue in chosen:
            if len(ids) >= limit:
                break
            ids += cast(list[bytes], await self._redis.zrevrange(queue, 0, limit - len(ids) - 1))
        return await self._view(model, [text(task_id) for task_id in ids])

    async def annotations(self, model: str, since: float | None = None) -> list[LabelTask]:
        """The tasks annotated at or after `since` (unix seconds; all when None), each
        with all its annotations and gold label: the audit's input. Oldest first."""
        ids = cast(
            list[bytes],
            await self._redis.zrangebyscore(
                self._keys.label_touched(model), "-inf" if since is None else since, "+inf"
            ),
        )
        return await self._view(model, [text(task_id) for task_id in ids])

    async def stats(self, model: str) -> QueueStats:
        keys = self._keys
        # no MULTI: Redis refuses even a read-only transaction at maxmemory, and /metrics
        # reads these while intake is refused
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.label_open(model))
            pipe.zcard(keys.label_adjudication(model))
            pipe.zcard(keys.label_done(model))
            pipe.hgetall(keys.label_stats(model))
            pipe.hvals(keys.label_holders(model))
            open_, adjudication, done, counters, holders = await pipe.execute()
        now = self._clock.now()
        claimed = sum(
            1 for raw in holders if any(float(ends) > now for ends in orjson.loads(raw).values())
        )
        counts = {text(name): int(value) for name, value in counters.items()}
        by_reason = {
            name.removeprefix("reason:"): value
            for name, value in sorted(counts.items())
            if name.startswith("reason:") and value > 0
        }
        return QueueStats(
            open=int(open_),
            claimed=claimed,
            adjudication=int(adjudication),
            done=int(done),
            by_reason=by_reason,
            evicted_total=counts.get("evicted", 0),
            pruned_total=counts.get("pruned", 0),
        )

    async def _view(self, model: str, task_ids: list[str]) -> list[LabelTask]:
        found: list[LabelTask] = []
        for start in range(0, len(task_ids), VIEW_CHUNK):
            chunk = task_ids[start : start + VIEW_CHUNK]
            views = await self._views(keys=script_keys(self._keys, model), args=chunk)
            found += [task_from_view(view) for view in views]
        return found


def task_from_reply(task_id: str, reply: list[Any]) -> LabelTask:
    """The task of a writing script's reply {'ok', view...}; its refusal's error else."""
    status = text(reply[0])
    if status != "ok":
        raise refusal(status, task_id)
    return task_from_view(reply[1:])


def task_from_view(view: Sequence[Any]) -> LabelTask:
    """A task from a script's view: {task JSON, annotation lines, gold, outcome, state}."""
    raw, lines, gold, outcome, state = view
    update: dict[str, Any] = {"state": text(state)}
    if lines:
        update["annotations"] = [
            Annotation.model_validate_json(line) for line in cast(bytes, lines).split(b"\n")
        ]
    if gold:
        update["gold_label"] = orjson.loads(gold)
    if outcome:
        settled = orjson.loads(outcome)
        update["final_label"] = settled["final_label"]
        update["agreement"] = settled["agreement"]
    return LabelTask.model_validate_json(raw).model_copy(update=update)
