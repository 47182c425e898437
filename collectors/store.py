"""Accepted events in Redis: one stream per model, written in blocks.

Each stream entry is one block of events accepted together: their metadata as
newline-separated JSON rows and their numeric features as packed float64, so that
reading 100k events costs a few hundred entries and one numpy view per block instead
of millions of Python objects. A sorted-set index scores each block by the running
event count at its end, which makes trimming by count and counting a window cheap.
Idempotency and the append are one Lua script, hence atomic per batch."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from redis.asyncio import Redis

from collectors.batch import EncodedBatch, Layout
from service.keys import Keys
from service.redis_types import StreamEntry, entries, text

EVENT_ID = "__event_id"
TIMESTAMP = "__timestamp"
INGESTED_AT = "__ingested_at"
MODEL_VERSION = "__model_version"
PREDICTION = "__prediction"
LABEL = "__label"
SCORE_PREFIX = "__score:"
META_COLUMNS = (EVENT_ID, TIMESTAMP, INGESTED_AT, MODEL_VERSION, PREDICTION, LABEL)

SCRIPT_BATCH = 2000  # ids are unpacked onto Lua's stack, which holds about 8000
READ_CHUNK = 256

# KEYS: stream, index, seen ids.
# ARGV: now_ms, seen_ttl_ms, min_keep_id, max_events, layout, the events' rows joined by
# newlines, their packed numbers joined, bytes of numbers per event, then the event
# ids. Returns how many events were new. One ZMSCORE and one ZADD per batch cost Redis a
# fraction of a SET NX per event. When ZADD NX adds every id, none was seen before and
# none repeats in the batch: the common batch is stored as it came, without the per-id
# bookkeeping that finding the duplicates takes. (Ids joined into one argument and
# split here would spare the client some packing, but cost Redis more than that.)
APPEND_SCRIPT = """
local now, first_id = tonumber(ARGV[1]), 9
local n = #ARGV - first_id + 1
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%.0f', now - tonumber(ARGV[2])))
local known = redis.call('ZMSCORE', KEYS[3], unpack(ARGV, first_id))
local members, score = {}, ARGV[1]  -- a string: Redis would format a number per member
for i = 1, n do
  members[2 * i - 1] = score
  members[2 * i] = ARGV[first_id + i - 1]
end
local fresh = n
local rows, nums = ARGV[6], ARGV[7]
if redis.call('ZADD', KEYS[3], 'NX', unpack(members)) < n then
  local taken, kept = {}, {}
  for i = 1, n do
    local id = ARGV[first_id + i - 1]
    if not known[i] and not taken[id] then
      taken[id] = true
      kept[#kept + 1] = i
    end
  end
  fresh = #kept
  if fresh == 0 then return 0 end
  local width, all_rows, pos = tonumber(ARGV[8]), {}, 1
  for i = 1, n do
    local stop = string.find(rows, '\\n', pos, true) or (#rows + 1)
    all_rows[i] = string.sub(rows, pos, stop - 1)
    pos = stop + 1
  end
  local kept_rows, kept_nums = {}, {}
  for k, i in ipairs(kept) do
    kept_rows[k] = all_rows[i]
    kept_nums[k] = string.sub(nums, (i - 1) * width + 1, i * width)
  end
  rows, nums = table.concat(kept_rows, '\\n'), table.concat(kept_nums)
end
local ms, seq, cum = tonumber(ARGV[1]), 0, 0
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #last > 0 then
  local lms, lseq = string.match(last[1], '(%d+)-(%d+)')
  cum = tonumber(last[2])
  if ms <= tonumber(lms) then ms = tonumber(lms); seq = tonumber(lseq) + 1 end
end
local id = string.format('%.0f-%.0f', ms, seq)
cum = cum + fresh
redis.call('XADD', KEYS[1], id, 'n', fresh, 'l', ARGV[5], 'r', rows, 'x', nums)
redis.call('ZADD', KEYS[2], cum, id)
local keep_after = cum - tonumber(ARGV[4])
if keep_after > 0 then
  local first = redis.call('ZRANGEBYSCORE', KEYS[2], string.format('(%.0f', keep_after),
                           '+inf', 'LIMIT', 0, 1)
  redis.call('XTRIM', KEYS[1], 'MINID', first[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', keep_after))
end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
local extra = redis.call('ZCARD', KEYS[2]) - redis.call('XLEN', KEYS[1])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
return fresh
"""


@dataclass
class AppendResult:
    accepted: int
    duplicates: int


@dataclass
class RetentionPolicy:
    max_age_seconds: float
    max_events: int


class EventStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._append = redis.register_script(APPEND_SCRIPT)

    async def append(
        self, model: str, batch: EncodedBatch, retention: RetentionPolicy, now: float
    ) -> AppendResult:
        accepted = 0
        for start in range(0, len(batch), SCRIPT_BATCH):
            part = batch.part(start, start + SCRIPT_BATCH)
            accepted += await self._append_part(model, part, retention, now)
        return AppendResult(accepted=accepted, duplicates=len(batch) - accepted)

    async def _append_part(
        self, model: str, batch: EncodedBatch, retention: RetentionPolicy, now: float
    ) -> int:
        now_ms = int(now * 1000)
        min_keep_ms = max(0, now_ms - int(retention.max_age_seconds * 1000))
        keys = [
            self._keys.events(model),
            self._keys.events_index(model),
            self._keys.events_seen(model),
        ]
        args: list[bytes | str | int] = [
            now_ms,
            int(retention.max_age_seconds * 1000),
            f"{min_keep_ms}-0",
            retention.max_events,
            batch.layout.encode(),
            batch.joined_rows(),
            batch.packed_numbers(),
            8 * len(batch.layout.numerical),
            *batch.event_ids,
        ]
        return int(await self._append(keys=keys, args=args))

    async def put_labels(
        self, model: str, labels: dict[str, object], ttl_seconds: float
    ) -> tuple[int, int]:
        """Store ground truth for events we have seen. Returns (accepted, unknown)."""
        event_ids = list(labels)
        seen = await self._redis.zmscore(self._keys.events_seen(model), event_ids) if labels else []
        known = [
            event_id for event_id, score in zip(event_ids, seen, strict=True) if score is not None
        ]
        if known:
            await self._store_labels(model, {eid: labels[eid] for eid in known}, ttl_seconds)
        return len(known), len(event_ids) - len(known)

    async def _store_labels(self, model: str, labels: dict[str, object], ttl: float) -> None:
        """One hash per model, so a run fetches the labels that exist rather than probing
        every window event; an arrival index expires them (hash fields have no TTL in
        Redis 7.0)."""
        now = time.time()
        values = {event_id: orjson.dumps(value) for event_id, value in labels.items()}
        expired = await self._redis.zrangebyscore(self._keys.labels_index(model), "-inf", now - ttl)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.labels(model), mapping=values)  # type: ignore[arg-type]
            pipe.zadd(self._keys.labels_index(model), dict.fromkeys(labels, now))
            if expired:
                pipe.hdel(self._keys.labels(model), *expired)
                pipe.zrem(self._keys.labels_index(model), *expired)
            await pipe.execute()

    async def all_labels(self, model: str) -> dict[str, object]:
        """Every stored label of the model, by event id."""
        raw = await self._redis.hgetall(self._keys.labels(model))
        return {text(event_id): orjson.loads(value) for event_id, value in raw.items()}

    async def count_rejects(
        self, model: str, rejects: list[tuple[str, str]], now: float, ttl_seconds: float
    ) -> None:
        """Per-minute counts of rejected records by (reason, field), so a detection run
        can report type mismatches and unknown columns seen during its window."""
        if not rejects:
            return
        key = self._keys.rejects(model, int(now // 60))
        async with self._redis.pipeline(transaction=False) as pipe:
            for reason, field_name in rejects:
                pipe.hincrby(key, f"{reason}|{field_name}", 1)
            pipe.expire(key, int(ttl_seconds))
            await pipe.execute()

    async def rejects_between(
        self, model: str, since: float, until: float
    ) -> dict[str, dict[str, int]]:
        """{reason: {field: count}} of records rejected from `since` to `until`."""
        minutes = range(int(since // 60), int(until // 60) + 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(self._keys.rejects(model, minute))
            buckets = await pipe.execute()
        totals: dict[str, dict[str, int]] = {}
        for bucket in buckets:
            for raw_key, raw_count in bucket.items():
                reason, _, field_name = text(raw_key).partition("|")
                per_reason = totals.setdefault(reason, {})
                per_reason[field_name] = per_reason.get(field_name, 0) + int(raw_count)
        return totals

    async def labels_for(self, model: str, event_ids: list[str]) -> list[object]:
        """Ground truth per event id, None where none arrived."""
        if not event_ids:
            return []
        raws = await self._redis.hmget(self._keys.labels(model), event_ids)
        return [None if raw is None else orjson.loads(raw) for raw in raws]

    async def total_events(self, model: str) -> int:
        """Events currently stored for the model (after trimming)."""
        return await self.count_since(model, 0.0, None)

    async def count_since(self, model: str, since: float, max_events: int | None) -> int:
        """Events ingested at or after `since`, capped at `max_events`, from the index
        alone (no event is decoded)."""
        index = self._keys.events_index(model)
        last = await self._redis.zrange(index, -1, -1, withscores=True)
        first = entries(
            await self._redis.xrange(
                self._keys.events(model), min=f"{int(since * 1000)}-0", count=1
            )
        )
        if not last or not first:
            return 0
        first_id, fields = first[0]
        first_end = float(await self._redis.zscore(index, first_id) or 0.0)
        count = int(float(last[0][1]) - first_end) + int(fields[b"n"])
        return count if max_events is None else min(count, max_events)

    async def _start_id(self, model: str, since: float, max_events: int) -> str:
        """The first block that may hold a window event: newer than `since` and among the
        blocks holding the newest `max_events` events."""
        index = self._keys.events_index(model)
        since_id = f"{int(since * 1000)}-0"
        last = await self._redis.zrange(index, -1, -1, withscores=True)
        if not last:
            return since_id
        keep_after = int(last[0][1]) - max_events
        first = await self._redis.zrangebyscore(index, f"({keep_after}", "+inf", start=0, num=1)
        count_id = text(first[0]) if first else since_id
        return max(since_id, count_id, key=_id_order)

    async def read_window(
        self, model: str, since: float, max_events: int, until: float | None = None
    ) -> pd.DataFrame:
        """Events ingested from `since` to `until` (inclusive), the newest `max_events` of
        them, as a frame of feature columns plus the META_COLUMNS and one SCORE_PREFIX
        column per class."""
        blocks = await self.read_blocks(model, since, max_events, until)
        return await asyncio.to_thread(decode_window, blocks, max_events)

    async def read_blocks(
        self, model: str, since: float, max_events: int, until: float | None = None
    ) -> list[StreamEntry]:
        """The stream entries holding that window, undecoded: bytes are cheap to hand to
        a worker process, which decodes them with `decode_window`."""
        stream = self._keys.events(model)
        if until is None:
            start = await self._start_id(model, since, max_events)
        else:  # a past window: the count bound is applied to its own tail below
            start = f"{int(since * 1000)}-0"
        end = "+" if until is None else str(int(until * 1000))
        blocks: list[StreamEntry] = []
        while True:
            chunk = entries(await self._redis.xrange(stream, min=start, max=end, count=READ_CHUNK))
            blocks.extend(chunk)
            if len(chunk) < READ_CHUNK:
                break
            start = "(" + chunk[-1][0].decode()
        return blocks


def decode_window(blocks: list[StreamEntry], max_events: int) -> pd.DataFrame:
    """The newest `max_events` events of the blocks as a DataFrame."""
    frame = decode_blocks(blocks)
    if len(frame) > max_events:
        frame = frame.iloc[len(frame) - max_events :].reset_index(drop=True)
    return frame


def _id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding allocates millions of acyclic objects; the cyclic collector would walk
    them again and again for nothing (it doubles the decode time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_blocks(blocks: list[StreamEntry]) -> pd.DataFrame:
    """Stream entries to one DataFrame; consecutive blocks sharing a layout are decoded
    together so that a long window is a handful of numpy operations."""
    with _gc_paused():
        return _decode_blocks(blocks)


def _decode_blocks(blocks: list[StreamEntry]) -> pd.DataFrame:
    frames: list[pd.DataFrame] = []
    group: list[StreamEntry] = []
    for block in blocks:
        if group and block[1][b"l"] != group[0][1][b"l"]:
            frames.append(_decode_group(group))
            group = []
        group.append(block)
    if group:
        frames.append(_decode_group(group))
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in META_COLUMNS})
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _decode_group(group: list[StreamEntry]) -> pd.DataFrame:
    layout = Layout.decode(group[0][1][b"l"])
    sizes = [int(fields[b"n"]) for _, fields in group]
    packed = b"".join(fields[b"x"] for _, fields in group)
    numbers = np.frombuffer(packed, dtype="<f8").reshape(sum(sizes), len(layout.numerical))
    joined = b",".join(fields[b"r"].replace(b"\n", b",") for _, fields in group)
    rows = orjson.loads(b"[" + joined + b"]")
    ingested = [_id_order(entry_id.decode())[0] / 1000.0 for entry_id, _ in group]
    event_ids, timestamps, versions, predictions, scores, labels, categories = (
        zip(*rows, strict=True) if rows else ((),) * 7
    )
    columns: dict[str, Any] = {}
    for name, values in zip(layout.categorical, zip(*categories, strict=True), strict=True):
        columns[name] = _text(values)
    columns[EVENT_ID] = _text(event_ids)
    columns[TIMESTAMP] = np.array(timestamps, dtype="float64")
    columns[INGESTED_AT] = np.repeat(ingested, sizes)
    columns[MODEL_VERSION] = _text(versions)
    columns[PREDICTION] = _text(predictions)
    columns[LABEL] = _text(labels)
    columns.update(_score_columns(scores))
    # numbers stay one 2-D block: no per-column copies
    numeric = pd.DataFrame(numbers, columns=list(layout.numerical), copy=False)
    return pd.concat([numeric, pd.DataFrame(columns)], axis=1)


def _text(values: tuple[object, ...]) -> pd.Series:
    """Object dtype on purpose: pandas would otherwise convert each text column to Arrow
    strings, which costs more than the decode and is not what Evidently expects."""
    return pd.Series(np.array(values, dtype=object), dtype=object, copy=False)


def _score_columns(scores: tuple[dict[str, float] | None, ...]) -> dict[str, Any]:
    classes = sorted({cls for entry in scores if entry for cls in entry})
    return {
        SCORE_PREFIX + cls: np.array(
            [math.nan if not entry else entry.get(cls, math.nan) for entry in scores],
            dtype="float64",
        )
        for cls in classes
    }
