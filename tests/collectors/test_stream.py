"""The Redis Streams consumer against a real Redis, running inside the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from core.redis_types import entries as stream_entries
from core.redis_types import text
from service.config import Settings
from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference

STREAM = "preds"
MIXED = "mixed"


def consumer_settings(redis_url: str, key_prefix: str) -> Settings:
    return harness_settings(
        redis_url,
        key_prefix,
        streams={STREAM: "credit", MIXED: ""},
        stream_consumer="test-consumer",
        stream_block_ms=50,
        stream_claim_idle_seconds=0.2,
        stream_max_deliveries=3,
    )


async def register_credit_model(redis_url: str, key_prefix: str) -> None:
    """The model exists before any consumer starts."""
    async for harness in start_harness(harness_settings(redis_url, key_prefix)):
        await upload_credit_reference(harness.client)


@pytest.fixture
async def streaming(redis_url: str, key_prefix: str) -> AsyncIterator[Harness]:
    await register_credit_model(redis_url, key_prefix)
    async for harness in start_harness(consumer_settings(redis_url, key_prefix)):
        yield harness


def redis_of(harness: Harness) -> Redis:
    redis: Redis = harness.services.redis
    return redis


async def eventually(check: Callable[[], object], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def stored(harness: Harness) -> int:
    count: int = await harness.services.stores.events.total_events("credit")
    return count


async def dead_letters(harness: Harness, stream: str) -> list[dict[str, str]]:
    key = harness.services.settings.key_prefix + "deadletter:" + stream
    entries = stream_entries(await redis_of(harness).xrange(key))
    return [{text(k): text(v) for k, v in fields.items()} for _, fields in entries]


async def pending(harness: Harness, stream: str) -> int:
    summary = await redis_of(harness).xpending(stream, "driftmon")
    return int(summary["pending"])


async def test_event_and_events_fields_are_stored_and_acked(streaming: Harness) -> None:
    redis = redis_of(streaming)
    events = credit_events(30, seed=1)
    for event in events[:10]:
        await redis.xadd(STREAM, {"event": orjson.dumps(event)})
    await redis.xadd(STREAM, {"events": orjson.dumps(events[10:30])})
    await redis.xadd(MIXED, {"model": "credit", "events": orjson.dumps(credit_events(5, seed=2))})

    async def all_stored() -> bool:
        return await stored(streaming) == 35

    await eventually(all_stored)
    await eventually(lambda: _zero(pending(streaming, STREAM)))
    scrape = (await streaming.client.get("/metrics")).text
    assert 'driftmon_stream_entries_total{outcome="acked",stream="preds"} 11.0' in scrape
    assert 'driftmon_events_total{model="credit",outcome="accepted",source="stream"} 35.0' in scrape


async def _zero(value: Awaitable[int]) -> bool:
    return await value == 0


async def _equals_stored(harness: Harness, expected: int) -> bool:
    return await stored(harness) == expected


async def _no_pending(harness: Harness, stream: str = STREAM) -> bool:
    return await pending(harness, stream) == 0


async def test_redelivery_stores_nothing_twice(streaming: Harness) -> None:
    redis = redis_of(streaming)
    batch = orjson.dumps(credit_events(20, seed=3))
    await redis.xadd(STREAM, {"events": batch})
    await redis.xadd(STREAM, {"events": batch})  # the producer retried

    async def done() -> bool:
        consumer = streaming.services.stream_consumer
        assert consumer is not None
        return consumer.handled >= 2

    await eventually(done)
    assert await stored(streaming) == 20
    scrape = (await streaming.client.get("/metrics")).text
    assert (
        'driftmon_events_total{model="credit",outcome="duplicate",source="stream"} 20.0' in scrape
    )


async def test_malformed_entries_are_dead_lettered_and_do_not_block(streaming: Harness) -> None:
    redis = redis_of(streaming)
    await redis.xadd(STREAM, {"event": b"{not json"})
    await redis.xadd(STREAM, {"something": b"else"})
    await redis.xadd(MIXED, {"event": orjson.dumps(credit_events(1, seed=4)[0])})  # no model
    bad_record = credit_events(2, seed=5)
    bad_record[0]["features"] = {"age": "old"}
    await redis.xadd(STREAM, {"events": orjson.dumps(bad_record)})
    await redis.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=6))})

    async def behind_stored() -> bool:
        return await stored(streaming) == 11

    await eventually(behind_stored)
    letters = await dead_letters(streaming, STREAM) + await dead_letters(streaming, MIXED)
    reasons = sorted(letter["reason"] for letter in letters)
    assert any("invalid JSON" in reason for reason in reasons)
    assert any("no `event`, `events` or `kpis` field" in reason for reason in reasons)
    assert any("no model" in reason for reason in reasons)
    rejected = next(letter for letter in letters if letter["reason"] == "1 record rejected")
    assert "features.age" in rejected["errors"]
    assert rejected["field:events"]  # the original entry travels with its reason
    await eventually(lambda: _zero(pending(streaming, STREAM)))


async def test_a_poison_entry_is_dead_lettered_after_max_deliveries(streaming: Harness) -> None:
    redis = redis_of(streaming)
    await redis.xadd(MIXED, {"model": "ghost", "event": orjson.dumps({"features": {}})})
    await redis.xadd(MIXED, {"model": "credit", "events": orjson.dumps(credit_events(3, seed=7))})

    async def lettered() -> bool:
        return len(await dead_letters(streaming, MIXED)) == 1

    await eventually(lettered)
    letter = (await dead_letters(streaming, MIXED))[0]
    assert letter["reason"].startswith("gave up after 3 deliveries")
    assert "ghost" in letter["reason"]
    assert letter["deliveries"] == "3"
    assert await stored(streaming) == 3
    await eventually(lambda: _zero(pending(streaming, MIXED)))


async def entries_left_by_a_dead_replica(redis_url: str, count: int, trim: bool) -> None:
    """Before our consumer starts: another replica read entries and died before
    acknowledging them; with trim, the producer then trimmed them away."""
    redis = Redis.from_url(redis_url)
    await redis.xgroup_create(STREAM, "driftmon", id="0", mkstream=True)
    for event in credit_events(count, seed=8):
        await redis.xadd(STREAM, {"event": orjson.dumps(event)})
    taken: Any = await redis.xreadgroup("driftmon", "dead-replica", {STREAM: ">"}, count=count)
    assert len(taken[0][1]) == count
    if trim:
        assert await redis.xtrim(STREAM, maxlen=0) == count
    await redis.aclose()


async def test_a_dead_consumers_pending_entries_are_claimed(
    redis_url: str, key_prefix: str
) -> None:
    await register_credit_model(redis_url, key_prefix)
    await entries_left_by_a_dead_replica(redis_url, 8, trim=False)
    async for harness in start_harness(consumer_settings(redis_url, key_prefix)):
        await eventually(partial(_equals_stored, harness, 8))
        await eventually(partial(_no_pending, harness))
        scrape = (await harness.client.get("/metrics")).text
        assert 'driftmon_stream_entries_total{outcome="redelivered",stream="preds"} 8.0' in scrape


async def test_trimmed_pending_entries_are_counted(redis_url: str, key_prefix: str) -> None:
    await register_credit_model(redis_url, key_prefix)
    await entries_left_by_a_dead_replica(redis_url, 5, trim=True)
    async for harness in start_harness(consumer_settings(redis_url, key_prefix)):
        await eventually(partial(_no_pending, harness))
        scrape = (await harness.client.get("/metrics")).text
        assert 'driftmon_stream_entries_total{outcome="deleted",stream="preds"} 5.0' in scrape
        assert await stored(harness) == 0


async def test_a_quiet_stream_does_not_hold_a_validated_batch_back(
    redis_url: str, key_prefix: str
) -> None:
    """The consumer validates one batch while reading the next; when no next one
    comes, it stores what it holds at once instead of waiting out the block time."""
    await register_credit_model(redis_url, key_prefix)
    # a long block time, so that the bound below holds on a busy machine and a held
    # batch (which waits the block time out) still fails it
    settings = consumer_settings(redis_url, key_prefix).model_copy(update={"stream_block_ms": 8000})
    async for harness in start_harness(settings):
        await asyncio.sleep(0.2)  # the consumer now blocks on an empty stream
        for event in credit_events(3, seed=9):
            await redis_of(harness).xadd(STREAM, {"event": orjson.dumps(event)})
        await eventually(partial(_equals_stored, harness, 3), seconds=4.0)
        await eventually(partial(_no_pending, harness), seconds=4.0)


async def test_stopping_mid_stream_loses_nothing_and_stores_nothing_twice(
    redis_url: str, key_prefix: str
) -> None:
    """Shutdown comes while batches are read, validated and stored at once: every
    acknowledged entry is stored, and a restart stores the rest exactly once."""
    await register_credit_model(redis_url, key_prefix)
    redis = Redis.from_url(redis_url)
    events = credit_events(3000, seed=10)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(STREAM, {"event": orjson.dumps(event)})
        await pipe.execute()
    settings = consumer_settings(redis_url, key_prefix).model_copy(
        update={"stream_batch_size": 100}
    )
    async for harness in start_harness(settings):
        await eventually(partial(_any_stored, harness))
    group = (await redis.xinfo_groups(STREAM))[0]  # what Redis 6.2 reports too
    delivered = stream_entries(await redis.xrange(STREAM, max=group["last-delivered-id"]))
    acked = len(delivered) - int(group["pending"])
    async for harness in start_harness(harness_settings(redis_url, key_prefix)):
        assert await stored(harness) >= acked  # acknowledged only once stored
    async for harness in start_harness(settings):
        await eventually(partial(_equals_stored, harness, 3000))
        await eventually(partial(_no_pending, harness))
        store = harness.services.stores.events
        window = await store.read_window("credit", since=0.0, max_events=10_000)
        assert window["__event_id"].is_unique
        assert set(window["__event_id"]) == {event["event_id"] for event in events}
    await redis.aclose()


async def _any_stored(harness: Harness) -> bool:
    return await stored(harness) > 0
