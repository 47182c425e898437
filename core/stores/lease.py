"""Exactly one replica runs a model's scheduled detection per tick.

Replicas share one Redis and align their schedules to the same instants; the first to
SET NX the (model, tick) key runs, the others skip. The key expires on its own."""

from __future__ import annotations

from redis.asyncio import Redis

from core.keys import Keys


class RunLease:
    def __init__(self, redis: Redis, keys: Keys, holder: str) -> None:
        self._redis = redis
        self._keys = keys
        self.holder = holder

    async def acquire(self, model: str, tick: int, ttl_seconds: float) -> bool:
        key = self._keys.run_lease(model, tick)
        taken = await self._redis.set(key, self.holder, nx=True, px=max(1, int(ttl_seconds * 1000)))
        return bool(taken)


def tick_of(now: float, interval_seconds: float) -> int:
    """Scheduled instants are multiples of the interval since the epoch; rounding keeps a
    replica whose timer fires a little late in the same tick."""
    return round(now / interval_seconds)
