"""The event store on a real Redis with compressed blocks: a stream written before them
still reads, and a batch holding duplicates stores each new event once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.blocks import EVENT_ID, EncodedBatch, Layout
from core.events import Event
from core.keys import Keys
from core.redis_types import entries
from core.stores.events import EventStore, RetentionPolicy
from tests.core.test_blocks import FORMAT_1_BLOCK, bits

LAYOUT = Layout(numerical=("age", "income"), categorical=("region",))
KEEP_ALL = RetentionPolicy(max_age_seconds=10**9, max_events=1_000_000)
T0 = 1_800_000_010.0


def batch(ids: list[str]) -> EncodedBatch:
    events = [
        Event(event_id, T0 + i, "7", {"age": 20.5 + i, "income": None, "region": "EU"}, "1")
        for i, event_id in enumerate(ids)
    ]
    return EncodedBatch.from_events(events, LAYOUT)


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[EventStore, Redis, Keys]]:
    redis = Redis.from_url(redis_url)
    keys = Keys(key_prefix)
    yield EventStore(redis, keys), redis, keys
    await redis.aclose()


async def test_a_stream_of_format_1_blocks_reads_and_grows(
    store: tuple[EventStore, Redis, Keys],
) -> None:
    """An upgrade finds format-1 blocks with their index and seen ids; it appends
    format-2 blocks after them and reads both as one window."""
    events_store, redis, keys = store
    entry_id, fields = FORMAT_1_BLOCK
    await redis.xadd(keys.events("m"), fields, id=entry_id)  # type: ignore[arg-type]
    await redis.zadd(keys.events_index("m"), {entry_id: 2})
    await redis.zadd(keys.events_seen("m"), {"e0": 1_800_000_002_000, "e1": 1_800_000_002_000})
    result = await events_store.append("m", batch(["e1", "e2"]), KEEP_ALL, now=T0)
    assert (result.accepted, result.duplicates) == (1, 1)
    frame = await events_store.read_window("m", 0.0, 100)
    assert frame[EVENT_ID].tolist() == ["e0", "e1", "e2"]
    assert bits(frame["age"]) == bits([41.5, -0.0, 21.5])
    assert await events_store.total_events("m") == 3


async def test_duplicates_in_and_across_batches_are_stored_once(
    store: tuple[EventStore, Redis, Keys],
) -> None:
    events_store, redis, keys = store
    await events_store.append("m", batch(["a", "b"]), KEEP_ALL, now=T0)
    result = await events_store.append("m", batch(["b", "c", "c", "d", "a"]), KEEP_ALL, now=T0)
    assert (result.accepted, result.duplicates) == (2, 3)
    frame = await events_store.read_window("m", 0.0, 100)
    assert frame[EVENT_ID].tolist() == ["a", "b", "c", "d"]
    # c and d keep their own rows and numbers once the duplicates are taken out
    assert bits(frame["age"]) == bits([20.5, 21.5, 21.5, 23.5])
    assert await redis.zcard(keys.events_seen("m")) == 4
    stored = entries(await redis.xrange(keys.events("m")))
    assert [fields[b"n"] for _, fields in stored] == [b"2", b"2"]
    assert all(set(fields) == {b"n", b"l", b"z"} for _, fields in stored)
    again = await events_store.append("m", batch(["a", "d"]), KEEP_ALL, now=T0 + 1)
    assert (again.accepted, again.duplicates) == (0, 2)
    assert await redis.xlen(keys.events("m")) == 2
