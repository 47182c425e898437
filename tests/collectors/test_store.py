"""The event store against a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from redis.asyncio import Redis

from core.blocks import (
    EVENT_ID,
    INGESTED_AT,
    PREDICTION,
    SCORE_PREFIX,
    EncodedBatch,
    Layout,
)
from core.events import Event
from core.keys import Keys
from core.stores.events import (
    EventStore,
    RetentionPolicy,
)
from core.stores.labels import LabelStore

LAYOUT = Layout(numerical=("age", "income"), categorical=("region",))
KEEP_ALL = RetentionPolicy(max_age_seconds=86400, max_events=1_000_000)
T0 = 1_800_000_000.0


def make_events(count: int, prefix: str = "e") -> list[Event]:
    rng = np.random.default_rng(count)
    return [
        Event(
            event_id=f"{prefix}{i}",
            timestamp=T0 + i,
            model_version="7",
            features={"age": float(rng.normal(40, 10)), "income": None, "region": "EU"},
            prediction="1",
            scores={"1": 0.75},
        )
        for i in range(count)
    ]


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[EventStore, Redis, Keys]]:
    redis = Redis.from_url(redis_url)
    keys = Keys(key_prefix)
    yield EventStore(redis, keys), redis, keys
    await redis.aclose()


async def test_round_trip_keeps_values_and_order(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, _, _ = store
    events = make_events(50)
    result = await events_store.append(
        "m", EncodedBatch.from_events(events, LAYOUT), KEEP_ALL, now=T0
    )
    assert (result.accepted, result.duplicates) == (50, 0)
    frame = await events_store.read_window("m", since=T0 - 1, max_events=1000)
    assert list(frame[EVENT_ID]) == [event.event_id for event in events]
    assert np.allclose(frame["age"], [float(event.features["age"] or 0) for event in events])
    assert frame["income"].isna().all()
    assert set(frame["region"]) == {"EU"}
    assert set(frame[PREDICTION]) == {"1"}
    assert np.allclose(frame[SCORE_PREFIX + "1"], 0.75)


async def test_duplicates_are_counted_not_stored(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, _, _ = store
    events = make_events(10)
    await events_store.append("m", EncodedBatch.from_events(events, LAYOUT), KEEP_ALL, now=T0)
    again = await events_store.append(
        "m",
        EncodedBatch.from_events(events[5:] + make_events(3, "x"), LAYOUT),
        KEEP_ALL,
        now=T0 + 1,
    )
    assert (again.accepted, again.duplicates) == (3, 5)
    same_batch = await events_store.append(
        "m", EncodedBatch.from_events(make_events(2, "y") * 2, LAYOUT), KEEP_ALL, now=T0 + 2
    )
    assert (same_batch.accepted, same_batch.duplicates) == (2, 2)
    frame = await events_store.read_window("m", since=T0 - 1, max_events=1000)
    assert len(frame) == 15
    assert frame[EVENT_ID].is_unique
    # the script split the batches that held duplicates: each kept row still has its
    # own numbers
    expected = events + make_events(3, "x") + make_events(2, "y")
    assert list(frame[EVENT_ID]) == [event.event_id for event in expected]
    assert np.allclose(frame["age"], [float(event.features["age"] or 0) for event in expected])


async def test_an_id_seen_longer_ago_than_retention_is_new_again(
    store: tuple[EventStore, Redis, Keys],
) -> None:
    events_store, _, _ = store
    policy = RetentionPolicy(max_age_seconds=60, max_events=1000)
    batch = EncodedBatch.from_events(make_events(3), LAYOUT)
    assert (await events_store.append("m", batch, policy, now=T0)).accepted == 3
    soon = await events_store.append("m", batch, policy, now=T0 + 30)
    assert (soon.accepted, soon.duplicates) == (0, 3)  # a repeat does not renew the id
    later = await events_store.append("m", batch, policy, now=T0 + 61)
    assert (later.accepted, later.duplicates) == (3, 0)


async def test_window_by_age_and_count(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, _, _ = store
    for minute in range(5):
        batch = make_events(20, prefix=f"m{minute}-")
        await events_store.append(
            "m", EncodedBatch.from_events(batch, LAYOUT), KEEP_ALL, now=T0 + 60 * minute
        )
    recent = await events_store.read_window("m", since=T0 + 120, max_events=1000)
    assert len(recent) == 60
    assert recent[INGESTED_AT].min() >= T0 + 120
    capped = await events_store.read_window("m", since=T0 - 1, max_events=30)
    assert len(capped) == 30
    assert capped[EVENT_ID].iloc[-1] == "m4-19"
    assert capped[EVENT_ID].iloc[0] == "m3-10"
    past = await events_store.read_window("m", since=T0 + 60, until=T0 + 120, max_events=1000)
    assert set(past[EVENT_ID].str.split("-").str[0]) == {"m1", "m2"}
    assert await events_store.count_since("m", T0 + 120, None) == 60
    assert await events_store.count_since("m", T0 - 1, 30) == 30


async def test_trimming_by_age(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, redis, keys = store
    policy = RetentionPolicy(max_age_seconds=100, max_events=1_000_000)
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(10, "old"), LAYOUT), policy, now=T0
    )
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(10, "new"), LAYOUT), policy, now=T0 + 150
    )
    assert await events_store.total_events("m") == 10
    assert await redis.xlen(keys.events("m")) == 1
    assert await redis.zcard(keys.events_index("m")) == 1


async def test_trimming_by_count(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, redis, keys = store
    policy = RetentionPolicy(max_age_seconds=86400, max_events=25)
    for block in range(6):
        await events_store.append(
            "m",
            EncodedBatch.from_events(make_events(10, f"b{block}-"), LAYOUT),
            policy,
            now=T0 + block,
        )
    # whole blocks go: 25 newest events span the last three blocks of ten
    assert await events_store.total_events("m") == 30
    frame = await events_store.read_window("m", since=T0 - 1, max_events=1000)
    assert frame[EVENT_ID].iloc[0] == "b3-0"
    assert await redis.xlen(keys.events("m")) == await redis.zcard(keys.events_index("m"))


async def test_ids_stay_ordered_when_the_clock_goes_back(
    store: tuple[EventStore, Redis, Keys],
) -> None:
    events_store, _, _ = store
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(3, "a"), LAYOUT), KEEP_ALL, now=T0 + 10
    )
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(3, "b"), LAYOUT), KEEP_ALL, now=T0
    )
    frame = await events_store.read_window("m", since=T0 - 1, max_events=100)
    assert list(frame[EVENT_ID]) == ["a0", "a1", "a2", "b0", "b1", "b2"]


async def test_a_new_layout_mid_stream_keeps_both(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, _, _ = store
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(3, "a"), LAYOUT), KEEP_ALL, now=T0
    )
    wider = Layout(numerical=("age", "income", "tenure"), categorical=("region",))
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(2, "b"), wider), KEEP_ALL, now=T0 + 1
    )
    frame = await events_store.read_window("m", since=T0 - 1, max_events=100)
    assert len(frame) == 5
    assert frame["tenure"].isna().all()


async def test_labels_only_for_known_events(store: tuple[EventStore, Redis, Keys]) -> None:
    events_store, redis, keys = store
    await events_store.append(
        "m", EncodedBatch.from_events(make_events(3), LAYOUT), KEEP_ALL, now=T0
    )
    labels = LabelStore(redis, keys)
    accepted, unknown = await labels.put_labels("m", {"e0": "1", "e2": "0", "zz": "1"}, 60)
    assert (accepted, unknown) == (2, 1)
    assert await labels.labels_for("m", ["e0", "e1", "e2", "zz"]) == ["1", None, "0", None]
