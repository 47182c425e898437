"""Accepted events in Redis: one stream per model, written in blocks.

Each stream entry is one block of events accepted together (`core.blocks`: their
metadata as JSON rows and their numeric features, compressed), so that reading 100k
events costs a few hundred entries and a few numpy operations per block instead of
millions of Python objects. A sorted-set index scores each block by the running
event count at its end, which makes trimming by count and counting a window cheap.
Idempotency and the append are one Lua script, hence atomic per batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pandas as pd
from redis.asyncio import Redis

from core.blocks import EncodedBatch, decode_window, entry_id_order
from core.keys import Keys
from core.redis_types import StreamEntry, entries, text

SCRIPT_BATCH = 2000  # ids are unpacked onto Lua's stack, which holds about 8000
READ_CHUNK = 256

# KEYS: stream, index, seen ids.
# ARGV: now_ms, seen_ttl_ms, min_keep_id, max_events, layout, the packed block,
# dedup_max_ids, then the event ids. Returns how many events were stored, or, when some
# were seen before or repeat in the batch, stores nothing and returns the 1-based
# positions of the new ones (the block is compressed: the client packs them again and
# calls again, which checks them again). One ZMSCORE and one ZADD per batch
# cost Redis a fraction of a SET NX per event. When ZADD NX adds every id, none was seen before and
# none repeats in the batch: the common batch is stored as it came, without the per-id
# bookkeeping that finding the duplicates takes. (Ids joined into one argument and
# split here would spare the client some packing, but cost Redis more than that.)
# The seen ids are trimmed by age, then by count: the oldest go beyond dedup_max_ids,
# but never the id of an event still stored (in the oldest block left or after it), so
# that a stored event is never stored twice, whatever the caps.
APPEND_SCRIPT = """
local now, first_id = tonumber(ARGV[1]), 8
local n = #ARGV - first_id + 1
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%.0f', now - tonumber(ARGV[2])))
local known = redis.call('ZMSCORE', KEYS[3], unpack(ARGV, first_id))
local members, score = {}, ARGV[1]  -- a string: Redis would format a number per member
for i = 1, n do
  members[2 * i - 1] = score
  members[2 * i] = ARGV[first_id + i - 1]
end
local fresh = n
if redis.call('ZADD', KEYS[3], 'NX', unpack(members)) < n then
  local taken, kept, added = {}, {}, {}
  for i = 1, n do
    local id = ARGV[first_id + i - 1]
    if not known[i] and not taken[id] then
      taken[id] = true
      kept[#kept + 1] = i
      added[#added + 1] = id
    end
  end
  if #kept == 0 then return 0 end
  redis.call('ZREM', KEYS[3], unpack(added))  -- stored on the next call, with their block
  return kept
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
redis.call('XADD', KEYS[1], id, 'n', fresh, 'l', ARGV[5], 'z', ARGV[6])
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
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  local oldest_ms = tonumber(string.match(oldest[1] or '0-0', '(%d+)-'))
  local cut = redis.call('ZRANGE', KEYS[3], over - 1, over - 1, 'WITHSCORES')
  if tonumber(cut[2]) < oldest_ms then
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%.0f', oldest_ms))
  end
end
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
    # event ids remembered for idempotency, beyond those of the events still stored
    dedup_max_ids: int = 100_000


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
            accepted += await self._append_new(model, part, retention, now)
        return AppendResult(accepted=accepted, duplicates=len(batch) - accepted)

    async def _append_new(
        self, model: str, batch: EncodedBatch, retention: RetentionPolicy, now: float
    ) -> int:
        """Stores the batch's new events; a batch holding duplicates is packed again
        without them (each retry is shorter, so this ends)."""
        while True:
            answer = await self._append_part(model, batch, retention, now)
            if isinstance(answer, int):
                return answer
            batch = batch.take([int(position) - 1 for position in answer])

    async def _append_part(
        self, model: str, batch: EncodedBatch, retention: RetentionPolicy, now: float
    ) -> int | list[int]:
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
            batch.packed(),
            retention.dedup_max_ids,
            *batch.event_ids,
        ]
        answer = await self._append(keys=keys, args=args)
        return [int(position) for position in answer] if isinstance(answer, list) else int(answer)

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
        return max(since_id, count_id, key=entry_id_order)

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
