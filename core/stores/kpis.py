"""Business KPIs as time series per model: one sorted set per KPI scored by time, and
a capped set of the model's KPI names."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import text


@dataclass(frozen=True)
class KpiPoint:
    name: str
    value: float
    timestamp: float


class KpiStore:
    def __init__(self, redis: Redis, keys: Keys, max_names: int, retention_seconds: float) -> None:
        self._redis = redis
        self._keys = keys
        self._max_names = max_names
        self._retention = retention_seconds

    async def names(self, model: str) -> list[str]:
        return sorted(
            text(name) for name in await self._redis.smembers(self._keys.kpi_names(model))
        )

    async def add(self, model: str, points: list[KpiPoint], now: float) -> list[str]:
        """Store points; returns the names refused because the model has its cap of
        distinct KPIs already."""
        known = set(await self.names(model))
        refused: list[str] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for point in points:
                if point.name not in known:
                    if len(known) >= self._max_names:
                        refused.append(point.name)
                        continue
                    known.add(point.name)
                    pipe.sadd(self._keys.kpi_names(model), point.name)
                key = self._keys.kpi(model, point.name)
                # time and value make the member: a resent point is stored once
                pipe.zadd(key, {f"{point.timestamp!r}:{point.value!r}": point.timestamp})
                pipe.zremrangebyscore(key, "-inf", now - self._retention)
            await pipe.execute()
        return refused

    async def series(self, model: str, name: str, since: float, until: float | str) -> list[float]:
        """Values from `since` to `until` inclusive (a "(t" string excludes t)."""
        members = await self._redis.zrangebyscore(self._keys.kpi(model, name), since, until)
        return [float(text(member).rsplit(":", 1)[1]) for member in members]
