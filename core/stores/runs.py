"""Run history per model in Redis: a capped index plus the results by id."""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import optional_bytes, text
from core.results import RunResult


class RunStore:
    def __init__(self, redis: Redis, keys: Keys, history: int) -> None:
        self._redis = redis
        self._keys = keys
        self._history = history

    async def save(self, result: RunResult) -> None:
        model = result.model
        started = datetime.fromisoformat(result.started_at).timestamp()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.runs(model), result.run_id, result.model_dump_json())
            pipe.zadd(self._keys.runs_index(model), {result.run_id: started})
            pipe.hset(self._keys.runs_latest(model), "any", result.run_id)
            if result.status == "ok":
                pipe.hset(self._keys.runs_latest(model), "ok", result.run_id)
            await pipe.execute()
        await self._trim(model)

    async def _trim(self, model: str) -> None:
        index = self._keys.runs_index(model)
        excess = await self._redis.zcard(index) - self._history
        if excess <= 0:
            return
        old = [text(run_id) for run_id in await self._redis.zrange(index, 0, excess - 1)]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(index, *old)
            pipe.hdel(self._keys.runs(model), *old)
            pipe.delete(*(self._keys.report(model, run_id) for run_id in old))
            await pipe.execute()

    async def get(self, model: str, run_id: str) -> RunResult | None:
        raw = await self._redis.hget(self._keys.runs(model), run_id)
        return None if raw is None else RunResult.model_validate_json(raw)

    async def recent(self, model: str, limit: int) -> list[RunResult]:
        ids = [
            text(run_id)
            for run_id in await self._redis.zrevrange(self._keys.runs_index(model), 0, limit - 1)
        ]
        if not ids:
            return []
        raws = await self._redis.hmget(self._keys.runs(model), ids)
        return [RunResult.model_validate_json(raw) for raw in raws if raw is not None]

    async def latest(self, model: str, ok_only: bool = False) -> RunResult | None:
        run_id = await self._redis.hget(self._keys.runs_latest(model), "ok" if ok_only else "any")
        return None if run_id is None else await self.get(model, text(run_id))

    async def cached_report(self, model: str, run_id: str) -> bytes | None:
        return optional_bytes(await self._redis.get(self._keys.report(model, run_id)))

    async def cache_report(self, model: str, run_id: str, html: bytes, ttl: float) -> None:
        await self._redis.set(self._keys.report(model, run_id), html, px=int(ttl * 1000))
