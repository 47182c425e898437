"""Per-minute counts of records intake rejected, by (reason, field): a detection run
reports type mismatches and unknown columns seen during its window from them."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import text


class RejectStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def count_rejects(
        self, model: str, rejects: list[tuple[str, str]], now: float, ttl_seconds: float
    ) -> None:
        """Per-minute counts of rejected records by (reason, field), so a detection run
        can report type mismatches and unknown columns seen during its window."""
        if not rejects:
            return
        key = self._keys.rejects(model, int(now // 60))
        # counted here first: one command per (reason, field), not one per record
        counts = Counter(f"{reason}|{field_name}" for reason, field_name in rejects)
        async with self._redis.pipeline(transaction=False) as pipe:
            for reason_field, count in counts.items():
                pipe.hincrby(key, reason_field, count)
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
