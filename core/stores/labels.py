"""Ground truth by event id: accepted only for events the model has seen, kept one hash
per model and expired by an arrival index."""

from __future__ import annotations

import time

import orjson
from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import text


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

    async def labels_for(self, model: str, event_ids: list[str]) -> list[object]:
        """Ground truth per event id, None where none arrived."""
        if not event_ids:
            return []
        raws = await self._redis.hmget(self._keys.labels(model), event_ids)
        return [None if raw is None else orjson.loads(raw) for raw in raws]
