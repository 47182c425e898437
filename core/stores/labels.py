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
gone one label TTL after the upgrade, without a migration."""

from __future__ import annotations

import time
from typing import cast

import orjson
from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import text

# event ids per HMGET: a window's labels can run to its whole event cap
FETCH_CHUNK = 10_000


class LabelStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def put_labels(
        self, model: str, labels: dict[str, object], ttl_seconds: float
    ) -> tuple[int, int]:
        """Store ground truth for events we have seen. Returns (accepted, unknown)."""
        event_ids = list(labels)
        seen = await self._redis.zmscore(self._keys.events_seen(model), event_ids) if labels else []
        # the seen set scores in ms; the index in seconds, as it did by arrival
        known = {
            event_id: float(score) / 1000
            for event_id, score in zip(event_ids, seen, strict=True)
            if score is not None
        }
        if known:
            await self._store_labels(model, labels, known, ttl_seconds)
        return len(known), len(event_ids) - len(known)

    async def _store_labels(
        self, model: str, labels: dict[str, object], event_times: dict[str, float], ttl: float
    ) -> None:
        """One hash per model (hash fields have no TTL in Redis 7.0); the index expires
        the labels of events older than the TTL, on each write."""
        values = {event_id: orjson.dumps(labels[event_id]) for event_id in event_times}
        index = self._keys.labels_index(model)
        expired = await self._redis.zrangebyscore(index, "-inf", time.time() - ttl)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.labels(model), mapping=values)  # type: ignore[arg-type]
            pipe.zadd(index, event_times)
            if expired:
                pipe.hdel(self._keys.labels(model), *expired)
                pipe.zrem(index, *expired)
            await pipe.execute()

    async def labels_between(
        self, model: str, since: float, until: float | None = None
    ) -> dict[str, object]:
        """The labels of events ingested from `since` to `until` (inclusive, seconds), by
        event id; labels stored by arrival time may come along (see the module)."""
        index = self._keys.labels_index(model)
        event_ids = cast(
            list[bytes],
            await self._redis.zrangebyscore(index, since, "+inf" if until is None else until),
        )
        found: dict[str, object] = {}
        for start in range(0, len(event_ids), FETCH_CHUNK):
            chunk = event_ids[start : start + FETCH_CHUNK]
            raws = await self._redis.hmget(self._keys.labels(model), chunk)
            for event_id, raw in zip(chunk, raws, strict=True):
                if raw is not None:  # indexed, but expired by a write meanwhile
                    found[text(event_id)] = orjson.loads(raw)
        return found

    async def labels_for(self, model: str, event_ids: list[str]) -> list[object]:
        """Ground truth per event id, None where none arrived."""
        if not event_ids:
            return []
        raws = await self._redis.hmget(self._keys.labels(model), event_ids)
        return [None if raw is None else orjson.loads(raw) for raw in raws]
