"""Run history per model in Redis: a capped index plus the results by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import optional_bytes, text
from core.results import RunResult


@dataclass(frozen=True)
class LatestRunIds:
    """A model's newest run and newest ok run, by id (None: no such run yet)."""

    any: str | None
    ok: str | None


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

    async def latest_ids(self, models: Sequence[str]) -> list[LatestRunIds]:
        """Each model's latest run ids, in the order given, in one round trip whatever
        the number of models (a pipeline, not a script: the models' keys live in
        different Cluster slots)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for model in models:
                pipe.hmget(self._keys.runs_latest(model), ["any", "ok"])
            replies: list[list[bytes | None]] = await pipe.execute()
        return [
            LatestRunIds(*(None if run_id is None else text(run_id) for run_id in reply))
            for reply in replies
        ]

    async def get_many(self, wanted: Sequence[tuple[str, str]]) -> list[RunResult | None]:
        """The runs of these (model, run id) pairs, in the order given, in one round trip."""
        if not wanted:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for model, run_id in wanted:
                pipe.hget(self._keys.runs(model), run_id)
            raws: list[bytes | None] = await pipe.execute()
        return [None if raw is None else RunResult.model_validate_json(raw) for raw in raws]

    async def cached_report(self, model: str, run_id: str) -> bytes | None:
        return optional_bytes(await self._redis.get(self._keys.report(model, run_id)))

    async def cache_report(self, model: str, run_id: str, html: bytes, ttl: float) -> None:
        await self._redis.set(self._keys.report(model, run_id), html, px=int(ttl * 1000))
