"""Ground truth by event id: accepted only for events the model has seen, kept one hash
per model beside an index of event ids scored by their event's ingest time.

The index serves two reads: a run fetches the labels of its window's events alone
(a range of the index, then those fields), not every label of the model; and expiry
drops the labels of events older than the TTL. Both go by the event's ingest time,
which the `seen` set already holds when the label arrives.

Labels stored before the index was scored so are scored by their arrival instead (in
the same unit, seconds). A label arrives after its event, so such a score is never
earlier than the event's: a read from a window's start to the present still finds
every old label of its events (and some of earlier events, which the join by event id
ignores); a read with an upper bound may miss old labels that arrived after it. And an
old label expires its arrival-minus-event delay later than a new one would. Both are
gone one label TTL after the upgrade, without a migration.

A label the labeling queue settled also has an origin (`mark_from_queue`): a third
hash per model, by event id, "random" when the label came from a task sampled for the
queue's random share, else "queue". Origins are set only for indexed labels and are
trimmed with them, so they expire exactly as the labels do. The latest label wins: a
plain label (`put_labels`, as `POST /labels` does) clears its event's origin, and the
labeling workflow marks its own labels after putting them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from core.keys import Keys
from core.redis_types import text

# event ids per HMGET: a window's labels can run to its whole event cap
FETCH_CHUNK = 10_000

RANDOM = b"random"  # labeled through the queue's random share
QUEUE = b"queue"  # labeled through the queue, picked for another reason

# KEYS: labels index, origins; ARGV: event id, origin, ... An origin only for a label
# still indexed: one the index no longer holds would never be trimmed.
MARK_SCRIPT = """
local marked = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    marked = marked + 1
  end
end
return marked
"""


@dataclass(frozen=True)
class WindowLabels:
    """A window's labels by event id, and the origin of those the labeling queue gave:
    True when through its random share (events absent from `origins`: plain labels)."""

    labels: dict[str, object] = field(default_factory=dict)
    origins: dict[str, bool] = field(default_factory=dict)


class LabelStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def put_labels(
        self,
        model: str,
        labels: dict[str, object],
        ttl_seconds: float,
        origins: dict[str, bool] | None = None,
    ) -> tuple[int, int]:
        """Store ground truth for events we have seen. Returns (accepted, unknown). A
        plain label clears its event's queue origin; `origins` (the labeling queue's
        labels: True for its random share) are marked in the same transaction, which
        spares the workflow the round trips of `mark_from_queue`."""
        event_ids = list(labels)
        seen = await self._redis.zmscore(self._keys.events_seen(model), event_ids) if labels else []
        # the seen set scores in ms; the index in seconds, as it did by arrival
        known = {
            event_id: float(score) / 1000
            for event_id, score in zip(event_ids, seen, strict=True)
            if score is not None
        }
        if known:
            await self._store_labels(model, labels, known, ttl_seconds, origins or {})
        return len(known), len(event_ids) - len(known)

    async def _expired(self, model: str, ttl: float) -> list[bytes]:
        index = self._keys.labels_index(model)
        return cast(list[bytes], await self._redis.zrangebyscore(index, "-inf", time.time() - ttl))

    def _trim(self, pipe: Pipeline, model: str, expired: list[bytes]) -> None:
        """Drop the labels of expired events, their origins and their index entries."""
        if expired:
            pipe.hdel(self._keys.labels(model), *expired)
            pipe.hdel(self._keys.labels_origin(model), *expired)
            pipe.zrem(self._keys.labels_index(model), *expired)

    async def _store_labels(
        self,
        model: str,
        labels: dict[str, object],
        event_times: dict[str, float],
        ttl: float,
        origins: dict[str, bool],
    ) -> None:
        """One hash per model (hash fields have no TTL in Redis 7.0); the index expires
        the labels of events older than the TTL, on each write."""
        values = {event_id: orjson.dumps(labels[event_id]) for event_id in event_times}
        expired = await self._expired(model, ttl)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.labels(model), mapping=values)  # type: ignore[arg-type]
            pipe.zadd(self._keys.labels_index(model), event_times)
            # the latest label wins, and a plain one is not the queue's
            pipe.hdel(self._keys.labels_origin(model), *event_times)
            marks = {e: RANDOM if origins[e] else QUEUE for e in event_times if e in origins}
            if marks:
                pipe.hset(self._keys.labels_origin(model), mapping=marks)  # type: ignore[arg-type]
            self._trim(pipe, model, expired)
            await pipe.execute()

    async def mark_from_queue(self, model: str, origins: dict[str, bool], ttl: float) -> int:
        """Remember that these events' labels came from the labeling queue, True for its
        random share; call it after `put_labels` of the same labels (which clears any
        origin). Events without a stored label are skipped; the TTL trims as
        `put_labels` does. Returns how many were marked. A plain label put between the
        two calls is marked as the queue's: the workflow's window, not worth a lock."""
        if not origins:
            return 0
        args: list[Any] = []
        for event_id, is_random in origins.items():
            args += [event_id, RANDOM if is_random else QUEUE]
        keys = [self._keys.labels_index(model), self._keys.labels_origin(model)]
        expired = await self._expired(model, ttl)
        async with self._redis.pipeline(transaction=True) as pipe:
            # marked first, then trimmed: an expired event's origin goes with its label
            pipe.eval(MARK_SCRIPT, len(keys), *keys, *args)
            self._trim(pipe, model, expired)
            replies = await pipe.execute()
        return int(replies[0])

    async def labels_between(
        self, model: str, since: float, until: float | None = None
    ) -> dict[str, object]:
        """The labels of events ingested from `since` to `until` (inclusive, seconds), by
        event id; labels stored by arrival time may come along (see the module)."""
        return (await self._between(model, since, until, with_origins=False)).labels

    async def window_labels(
        self, model: str, since: float, until: float | None = None
    ) -> WindowLabels:
        """labels_between's labels and their queue origins, read in the same round trips
        (each chunk's HMGET of both hashes pipelined)."""
        return await self._between(model, since, until, with_origins=True)

    async def _between(
        self, model: str, since: float, until: float | None, with_origins: bool
    ) -> WindowLabels:
        index = self._keys.labels_index(model)
        event_ids = cast(
            list[bytes],
            await self._redis.zrangebyscore(index, since, "+inf" if until is None else until),
        )
        found = WindowLabels()
        for start in range(0, len(event_ids), FETCH_CHUNK):
            chunk = event_ids[start : start + FETCH_CHUNK]
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self._keys.labels(model), chunk)
                if with_origins:
                    pipe.hmget(self._keys.labels_origin(model), chunk)
                replies = await pipe.execute()
            raws = replies[0]
            origins = replies[1] if with_origins else [None] * len(chunk)
            for event_id, raw, origin in zip(chunk, raws, origins, strict=True):
                if raw is None:  # indexed, but expired by a write meanwhile
                    continue
                name = text(event_id)
                found.labels[name] = orjson.loads(raw)
                if origin is not None:
                    found.origins[name] = origin == RANDOM
        return found

    async def labels_for(self, model: str, event_ids: list[str]) -> list[object]:
        """Ground truth per event id, None where none arrived."""
        if not event_ids:
            return []
        raws = await self._redis.hmget(self._keys.labels(model), event_ids)
        return [None if raw is None else orjson.loads(raw) for raw in raws]

    async def origins_for(self, model: str, event_ids: list[str]) -> dict[str, bool]:
        """The queue origin of these events' labels, by event id (True: the random
        share); events whose label is plain, or absent, are left out."""
        found: dict[str, bool] = {}
        for start in range(0, len(event_ids), FETCH_CHUNK):
            chunk = event_ids[start : start + FETCH_CHUNK]
            raws = await self._redis.hmget(self._keys.labels_origin(model), chunk)
            for event_id, raw in zip(chunk, raws, strict=True):
                if raw is not None:
                    found[event_id] = raw == RANDOM
        return found
