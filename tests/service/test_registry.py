"""Model registry against a real Redis: the schema cache and its limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.clock import ManualClock
from core.keys import Keys
from core.schema import ModelSchema
from core.stores.registry import ModelRegistry, ReferenceInfo

OLD = ModelSchema({"age": "numerical"})
NEW = ModelSchema({"age": "numerical", "region": "categorical"})


def info(version: str) -> ReferenceInfo:
    return ReferenceInfo(version, 1, {}, 0.0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_another_replicas_upload_applies_within_the_cache_time(
    redis: Redis, key_prefix: str
) -> None:
    clock = ManualClock()
    here = ModelRegistry(redis, Keys(key_prefix), clock, schema_cache_seconds=1.0)
    there = ModelRegistry(redis, Keys(key_prefix), clock, schema_cache_seconds=1.0)
    await there.put_reference("m", OLD, info("v1"), b"")
    assert await here.schema("m") == await there.schema("m") == OLD
    await there.put_reference("m", NEW, info("v2"), b"")
    assert await there.schema("m") == NEW  # its own upload applies at once
    assert await here.schema("m") == OLD  # cached
    clock.advance(1.01)
    assert await here.schema("m") == NEW


async def test_an_unknown_model_is_not_cached(redis: Redis, key_prefix: str) -> None:
    clock = ManualClock()
    here = ModelRegistry(redis, Keys(key_prefix), clock, schema_cache_seconds=60.0)
    there = ModelRegistry(redis, Keys(key_prefix), clock, schema_cache_seconds=60.0)
    assert await here.schema("m") is None
    await there.put_reference("m", OLD, info("v1"), b"")
    assert await here.schema("m") == OLD  # stream entries waiting for it go through at once
