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

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from core.clock import Clock
from core.keys import Keys
from core.labeling import Annotation, FlaggedSample, LabelingConfig, LabelTask, TaskState
from core.redis_types import text

# a task id: the model, "~" (no model name holds one), 32 hex digits of a hash of the
# model and the event id: URL-safe, the same for the same event, the model recoverable
TASK_ID = re.compile(r"^(?P<model>[^~{}]+)~[0-9a-f]{32}$")
# ids per view script call
VIEW_CHUNK = 500
# done tasks pruned per settle (or prune) call at most: bounded work in one script, yet
# far more than the one task a settle adds, so a queue past its bounds comes down fast
PRUNE_BATCH = 100

# every script gets the same KEYS, in this order:
# 1 tasks, 2 meta, 3 gold, 4 open, 5 adjudication, 6 done, 7 events, 8 annotations,
# 9 annotators, 10 progress, 11 holders, 12 outcomes, 13 touched, 14 stats
COMMON = r"""
-- a task's live claims {annotator = lease end}, those ended by now left out; their
-- count, and whether any was left out
local function holders_of(id, now)
  local raw = redis.call('HGET', KEYS[11], id)
  local live, count, dropped = {}, 0, false
  if raw then
    for who, ends in pairs(cjson.decode(raw)) do
      if tonumber(ends) > now then
        live[who] = ends
        count = count + 1
      else
        dropped = true
      end
    end
  end
  return live, count, dropped
end

local function save_holders(id, holders, count)
  if count > 0 then
    redis.call('HSET', KEYS[11], id, cjson.encode(holders))
  else
    redis.call('HDEL', KEYS[11], id)
  end
end

-- a done task goes with everything it holds: its annotations (and who answered), its
-- outcome, its gold label and its event id (which a later run may queue again)
local function forget(id)
  local meta = cjson.decode(redis.call('HGET', KEYS[2], id))
  if redis.call('HGET', KEYS[7], meta.e) == id then redis.call('HDEL', KEYS[7], meta.e) end
  if redis.call('HDEL', KEYS[3], id) == 1 then redis.call('HINCRBY', KEYS[14], 'gold', -1) end
  local lines = redis.call('HGET', KEYS[8], id)
  if lines then
    for line in string.gmatch(lines, '[^\n]+') do
      redis.call('HDEL', KEYS[9], id .. '\0' .. cjson.decode(line).annotator)
    end
  end
  for _, k in ipairs({1, 2, 8, 10, 11, 12}) do redis.call('HDEL', KEYS[k], id) end
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[13], id)
  redis.call('HINCRBY', KEYS[14], 'tasks', -1)
  redis.call('HINCRBY', KEYS[14], 'pruned', 1)
end

-- at most `batch` done tasks, oldest first: those settled before `cutoff`, then those
-- beyond `most`. Returns how many went.
local function prune(cutoff, most, batch)
  local pruned = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. cutoff,
      'LIMIT', 0, batch)) do
    forget(id)
    pruned = pruned + 1
  end
  local excess = math.min(redis.call('ZCARD', KEYS[6]) - most, batch - pruned)
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[6], 0, excess - 1)) do
      forget(id)
      pruned = pruned + 1
    end
  end
  return pruned
end

-- {task JSON, annotation lines, gold JSON, outcome JSON, state}, '' for what is missing
local function view(id)
  local state = 'open'
  if redis.call('ZSCORE', KEYS[6], id) then
    state = 'done'
  elseif redis.call('ZSCORE', KEYS[5], id) then
    state = 'adjudication'
  end
  return {redis.call('HGET', KEYS[1], id), redis.call('HGET', KEYS[8], id) or '',
    redis.call('HGET', KEYS[3], id) or '', redis.call('HGET', KEYS[12], id) or '', state}
end
"""

# ARGV: now, queue max, gold share, then per sample: task id, event id, priority, meta
# JSON, task JSON, gold label JSON ('' when the sample has no ground truth). Returns
# {queued, duplicates, evicted}.
ADD_SCRIPT = (
    COMMON
    + r"""
local function evict(id)
  local meta = cjson.decode(redis.call('HGET', KEYS[2], id))
  if redis.call('HGET', KEYS[7], meta.e) == id then redis.call('HDEL', KEYS[7], meta.e) end
  for _, reason in ipairs(meta.r) do
    redis.call('HINCRBY', KEYS[14], 'reason:' .. reason, -1)
  end
  if redis.call('HDEL', KEYS[3], id) == 1 then redis.call('HINCRBY', KEYS[14], 'gold', -1) end
  redis.call('HINCRBY', KEYS[14], 'tasks', -1)
  redis.call('HINCRBY', KEYS[14], 'evicted', 1)
  redis.call('ZREM', KEYS[4], id)
  for _, k in ipairs({1, 2, 10, 11}) do redis.call('HDEL', KEYS[k], id) end
end

local now, most, share = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local queued, duplicates, evicted = 0, 0, 0
local new = {}
for i = 4, #ARGV, 6 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[7], ARGV[i + 1], id) == 1 then
    local total = redis.call('HINCRBY', KEYS[14], 'tasks', 1)
    if ARGV[i + 5] ~= '' then
      local gold = tonumber(redis.call('HGET', KEYS[14], 'gold') or '0')
      if gold < share * total then
        redis.call('HSET', KEYS[3], id, ARGV[i + 5])
        redis.call('HINCRBY', KEYS[14], 'gold', 1)
      end
    end
    redis.call('HSET', KEYS[1], id, ARGV[i + 4])
    redis.call('HSET', KEYS[2], id, ARGV[i + 3])
    redis.call('ZADD', KEYS[4], ARGV[i + 2], id)
    for _, reason in ipairs(cjson.decode(ARGV[i + 3]).r) do
      redis.call('HINCRBY', KEYS[14], 'reason:' .. reason, 1)
    end
    new[id] = true
    queued = queued + 1
  else
    duplicates = duplicates + 1
  end
end

-- beyond the bound: the lowest priority first, of the tasks nobody has touched
local excess = redis.call('ZCARD', KEYS[4]) - most
local start = 0
while excess > 0 do
  local ids = redis.call('ZRANGE', KEYS[4], start, start + 99)
  if #ids == 0 then break end
  local kept = 0
  for _, id in ipairs(ids) do
    local _, claims = holders_of(id, now)
    if excess > 0 and claims == 0 and redis.call('HEXISTS', KEYS[8], id) == 0 then
      evict(id)
      excess = excess - 1
      evicted = evicted + 1
      if new[id] then queued = queued - 1 end
    else
      kept = kept + 1
    end
  end
  start = start + kept
end
return {queued, duplicates, evicted}
"""
)

# ARGV: now, annotator, limit, lease end, '1' for an adjudicator. Returns a view per
# claimed task, highest priority first.
CLAIM_SCRIPT = (
    COMMON
    + r"""
local now, annotator, limit, lease = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local adjudicate = ARGV[5] == '1'
local queue = KEYS[4]
if adjudicate then queue = KEYS[5] end
local claimed, start = {}, 0
while #claimed < limit do
  local ids = redis.call('ZREVRANGE', queue, start, start + 99)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if #claimed < limit and redis.call('HEXISTS', KEYS[9], id .. '\0' .. annotator) == 0 then
      local holders, count, dropped = holders_of(id, now)
      if not holders[annotator] then
        -- an adjudication has one slot; an open task K, less the answers it has
        local slots, answered = 1, 0
        if not adjudicate then
          slots = cjson.decode(redis.call('HGET', KEYS[2], id)).k
          answered = tonumber(redis.call('HGET', KEYS[10], id) or '0')
        end
        if count + answered < slots then
          holders[annotator] = lease
          count = count + 1
          dropped = true
          claimed[#claimed + 1] = view(id)
        end
      end
      if dropped then save_holders(id, holders, count) end
    end
  end
  start = start + 100
end
return claimed
"""
)

# ARGV: task id, annotator, 'label' or 'skip', '1' for an adjudicator, annotation JSON,
# its time, now. Returns {'ok', view...} or {why not}.
ANNOTATE_SCRIPT = (
    COMMON
    + r"""
local id, annotator = ARGV[1], ARGV[2]
if redis.call('HEXISTS', KEYS[1], id) == 0 then return {'unknown'} end
if redis.call('ZSCORE', KEYS[6], id) then return {'done'} end
local field = id .. '\0' .. annotator
if redis.call('HEXISTS', KEYS[9], field) == 1 then return {'annotated'} end
if ARGV[4] ~= '1' and redis.call('ZSCORE', KEYS[5], id) then return {'adjudication'} end
redis.call('HSET', KEYS[9], field, ARGV[3])
local holders, count, dropped = holders_of(id, tonumber(ARGV[7]))
if holders[annotator] then
  holders[annotator] = nil
  count = count - 1
  dropped = true
end
if dropped then save_holders(id, holders, count) end
local lines = redis.call('HGET', KEYS[8], id)
if lines then lines = lines .. '\n' .. ARGV[5] else lines = ARGV[5] end
redis.call('HSET', KEYS[8], id, lines)
if ARGV[3] == 'label' and ARGV[4] ~= '1' then redis.call('HINCRBY', KEYS[10], id, 1) end
redis.call('ZADD', KEYS[13], 'GT', ARGV[6], id)
local found = view(id)
table.insert(found, 1, 'ok')
return found
"""
)

# ARGV: task id, 'adjudication' or 'done', outcome JSON, now, the annotations the
# caller decided on ('' to not check), then for a task settled as done the pruning's
# cutoff ('' for none), most done tasks kept, batch. Returns {'ok', view...} (the view
# before pruning) or {why not}.
SETTLE_SCRIPT = (
    COMMON
    + r"""
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], id) == 0 then return {'unknown'} end
if redis.call('ZSCORE', KEYS[6], id) then return {'done'} end
if ARGV[5] ~= '' then
  local lines = redis.call('HGET', KEYS[8], id)
  local n = 0
  if lines then n = select(2, string.gsub(lines, '\n', '')) + 1 end
  if n ~= tonumber(ARGV[5]) then return {'stale'} end
end
local priority = redis.call('ZSCORE', KEYS[4], id) or redis.call('ZSCORE', KEYS[5], id)
redis.call('HDEL', KEYS[11], id)
redis.call('HSET', KEYS[12], id, ARGV[3])
redis.call('ZREM', KEYS[4], id)
if ARGV[2] == 'adjudication' then
  redis.call('ZADD', KEYS[5], priority, id)
else
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZADD', KEYS[6], ARGV[4], id)
  for _, reason in ipairs(cjson.decode(redis.call('HGET', KEYS[2], id)).r) do
    redis.call('HINCRBY', KEYS[14], 'reason:' .. reason, -1)
  end
end
local found = view(id)
if ARGV[2] == 'done' and ARGV[6] ~= '' then
  prune(ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
end
table.insert(found, 1, 'ok')
return found
"""
)

# ARGV: cutoff, most done tasks kept, batch. Returns how many went.
PRUNE_SCRIPT = (
    COMMON
    + r"""
return prune(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)

# ARGV: task ids. Returns a view per task that exists, in order. Flagged read-only, so
# that Redis runs it at maxmemory too (it refuses any script that might write then).
VIEWS_SCRIPT = (
    "#!lua flags=no-writes\n"
    + COMMON
    + """
local found = {}
for _, id in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[1], id) == 1 then found[#found + 1] = view(id) end
end
return found
"""
)


class LabelQueueError(Exception):
    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class UnknownTaskError(LabelQueueError, LookupError):
    """No such task (never queued, evicted, or its model forgotten)."""


class AlreadyAnnotatedError(LabelQueueError):
    """The annotator answered (or skipped) this task already."""


class TaskDoneError(LabelQueueError):
    """The task is settled: it takes no more annotations."""


class AdjudicationPendingError(LabelQueueError):
    """The task awaits an adjudicator: only an adjudicator's annotation is taken."""


class StaleTaskError(LabelQueueError):
    """Annotations came in after the caller decided: decide again on the task as it is."""


@dataclass(frozen=True)
class AddResult:
    queued: int  # new tasks in the queue after the call
    duplicates: int  # samples whose event has a task already
    evicted: int  # tasks evicted by the call, old ones or new ones that did not fit


@dataclass(frozen=True)
class Retention:
    """How long and how many done tasks a model keeps."""

    seconds: float  # after settling (the label TTL)
    max_done: int  # the oldest beyond this many go first


@dataclass(frozen=True)
class QueueStats:
    open: int
    claimed: int  # open or adjudication tasks with a live claim
    adjudication: int
    done: int
    by_reason: dict[str, int]  # unfinished (open or adjudication) tasks per flag reason
    evicted_total: int
    pruned_total: int = 0  # done tasks dropped past their retention


def task_id_for(model: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{model}\0{event_id}".encode()).hexdigest()[:32]
    return f"{model}~{digest}"


def model_of(task_id: str) -> str:
    """The model of a task id; UnknownTaskError when it is no task id."""
    match = TASK_ID.match(task_id)
    if match is None:
        raise UnknownTaskError(task_id, f"{task_id!r} is no task id")
    return match["model"]


class LabelQueue:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._add = redis.register_script(ADD_SCRIPT)
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._annotate = redis.register_script(ANNOTATE_SCRIPT)
        self._settle = redis.register_script(SETTLE_SCRIPT)
        self._views = redis.register_script(VIEWS_SCRIPT)
        self._prune = redis.register_script(PRUNE_SCRIPT)

    def _all_keys(self, model: str) -> list[str]:
        keys = self._keys
        return [
            keys.label_tasks(model),
            keys.label_meta(model),
            keys.label_gold(model),
            keys.label_open(model),
            keys.label_adjudication(model),
            keys.label_done(model),
            keys.label_events(model),
            keys.label_annotations(model),
            keys.label_annotators(model),
            keys.label_progress(model),
            keys.label_holders(model),
            keys.label_outcomes(model),
            keys.label_touched(model),
            keys.label_stats(model),
        ]

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
            args += [
                task_id,
                sample.event_id,
                repr(sample.priority),
                orjson.dumps(meta),
                task.model_dump_json(),
                gold,
            ]
        queued, duplicates, evicted = await self._add(keys=self._all_keys(model), args=args)
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
            keys=self._all_keys(model),
            args=[now, annotator, limit, repr(now + lease_seconds), "1" if adjudicator else "0"],
        )
        claimed = []
        for found in views:
            task = _task(found)
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
            keys=self._all_keys(model),
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
        return _outcome(task_id, reply)

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
            keys=self._all_keys(model),
            args=[
                task_id,
                state,
                orjson.dumps(outcome),
                now,
                "" if expected_annotations is None else expected_annotations,
                *_prune_args(retention, now),
            ],
        )
        return _outcome(task_id, reply)

    async def prune(self, model: str, retention: Retention, now: float) -> int:
        """Drop up to PRUNE_BATCH done tasks, oldest first: those settled more than
        `retention.seconds` before `now`, then those beyond `retention.max_done`, each
        with its annotations, outcome, gold label and event id. Returns how many went."""
        pruned = await self._prune(keys=self._all_keys(model), args=_prune_args(retention, now))
        return int(pruned)

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

    async def forget_model(self, model: str) -> bool:
        """Every task, annotation and counter of the model goes. True when there was any."""
        return bool(await self._redis.delete(*self._all_keys(model)))

    async def _view(self, model: str, task_ids: list[str]) -> list[LabelTask]:
        found: list[LabelTask] = []
        for start in range(0, len(task_ids), VIEW_CHUNK):
            chunk = task_ids[start : start + VIEW_CHUNK]
            views = await self._views(keys=self._all_keys(model), args=chunk)
            found += [_task(view) for view in views]
        return found


ERRORS: dict[str, tuple[type[LabelQueueError], str]] = {
    "unknown": (UnknownTaskError, "no task {id!r}"),
    "done": (TaskDoneError, "task {id!r} is done"),
    "annotated": (AlreadyAnnotatedError, "the annotator answered task {id!r} already"),
    "adjudication": (AdjudicationPendingError, "task {id!r} awaits an adjudicator"),
    "stale": (StaleTaskError, "task {id!r} has other annotations by now"),
}


def _prune_args(retention: Retention | None, now: float) -> list[Any]:
    """The scripts' pruning arguments: cutoff ('' for no pruning), most kept, batch."""
    if retention is None:
        return ["", 0, 0]
    return [repr(now - retention.seconds), max(retention.max_done, 0), PRUNE_BATCH]


def _outcome(task_id: str, reply: list[Any]) -> LabelTask:
    status = text(reply[0])
    if status != "ok":
        error, message = ERRORS[status]
        raise error(task_id, message.format(id=task_id))
    return _task(reply[1:])


def _task(view: Sequence[Any]) -> LabelTask:
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
