"""Labels are indexed by their event's ingest time: a run reads its window's labels
alone, expiry goes by the event's age, and labels indexed by arrival (before that
change) are still found."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from core.blocks import EncodedBatch, Layout
from core.events import Event
from core.keys import Keys
from core.stores.events import EventStore, RetentionPolicy
from core.stores.labels import LabelStore
from tests.data import credit_events, credit_reference
from tests.fixtures_app import Harness

LAYOUT = Layout(numerical=("age",), categorical=())
KEEP_ALL = RetentionPolicy(max_age_seconds=90 * 86400, max_events=1_000_000)
DAY = 86400.0


def events(count: int, prefix: str) -> EncodedBatch:
    batch = [
        Event(f"{prefix}{i}", timestamp=0.0, model_version="7", features={"age": 40.0})
        for i in range(count)
    ]
    return EncodedBatch.from_events(batch, LAYOUT)


@pytest.fixture
async def stores(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[EventStore, LabelStore]]:
    redis = Redis.from_url(redis_url)
    keys = Keys(key_prefix)
    yield EventStore(redis, keys), LabelStore(redis, keys)
    await redis.aclose()


async def test_a_window_reads_only_its_own_labels(
    stores: tuple[EventStore, LabelStore],
) -> None:
    event_store, labels = stores
    now = time.time()
    await event_store.append("m", events(50_000, "old"), KEEP_ALL, now=now - 2 * 3600)
    await event_store.append("m", events(200, "new"), KEEP_ALL, now=now)
    old: dict[str, object] = {f"old{i}": "1" for i in range(50_000)}
    assert await labels.put_labels("m", old, ttl_seconds=30 * DAY) == (50_000, 0)
    new: dict[str, object] = {f"new{i}": "0" for i in range(100)}
    assert await labels.put_labels("m", new, ttl_seconds=30 * DAY) == (100, 0)
    assert await labels.labels_between("m", since=now - 3600) == new
    assert len(await labels.labels_between("m", since=now - 3 * 3600, until=now - 3600)) == 50_000


async def test_labels_expire_by_their_events_age(stores: tuple[EventStore, LabelStore]) -> None:
    event_store, labels = stores
    now = time.time()
    await event_store.append("m", events(3, "aged"), KEEP_ALL, now=now - 10 * DAY)
    await event_store.append("m", events(1, "fresh"), KEEP_ALL, now=now)
    await labels.put_labels("m", {"aged0": "1", "aged1": "1"}, ttl_seconds=20 * DAY)
    # arrived just now, but their events are 10 days old: a 5-day TTL expires them
    await labels.put_labels("m", {"fresh0": "1"}, ttl_seconds=5 * DAY)
    assert await labels.labels_for("m", ["aged0", "aged1", "fresh0"]) == [None, None, "1"]


async def test_labels_indexed_by_arrival_are_still_read(
    stores: tuple[EventStore, LabelStore], redis_url: str, key_prefix: str
) -> None:
    """What the previous code wrote: the label's arrival time as its index score."""
    event_store, labels = stores
    now = time.time()
    await event_store.append("m", events(2, "e"), KEEP_ALL, now=now - 600)
    keys = Keys(key_prefix)
    async with Redis.from_url(redis_url) as redis:
        await redis.hset(keys.labels("m"), mapping={"e0": b'"1"', "before": b'"0"'})
        # e0 (ingested 10 minutes ago) labelled a minute ago; "before" is an event of
        # an earlier window, labelled during this one
        await redis.zadd(keys.labels_index("m"), {"e0": now - 60, "before": now - 300})
    await labels.put_labels("m", {"e1": "0"}, ttl_seconds=30 * DAY)
    # "before" comes along, harmless: a run joins labels to its events by id
    assert await labels.labels_between("m", since=now - 900) == {
        "e0": "1",
        "e1": "0",
        "before": "0",
    }


def labeled_reference_csv() -> bytes:
    frame = credit_reference()
    frame["label"] = frame["prediction"]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


async def post(harness: Harness, what: str, records: list[dict[str, Any]]) -> None:
    response = await harness.client.post(f"/v1/models/credit/{what}", json=records)
    assert response.status_code == 202, response.text


async def test_a_run_fetches_only_its_windows_labels(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await harness.client.put(
        "/v1/models/credit/reference",
        params={"prediction": "prediction", "scores": "score", "label": "label"},
        content=labeled_reference_csv(),
    )
    assert response.status_code == 201, response.text
    # stored directly, not through the API: only their labels matter, and quickly
    stores, then = harness.services.stores, harness.clock.now()
    await stores.events.append("credit", events(50_000, "before"), KEEP_ALL, now=then)
    before: dict[str, object] = {f"before{i}": "1" for i in range(50_000)}
    assert await stores.labels.put_labels("credit", before, 30 * DAY) == (50_000, 0)
    harness.clock.advance(2 * harness.settings.window_seconds)
    inside = credit_events(200, seed=2, prefix="inside")
    await post(harness, "events", inside)
    await post(harness, "labels", [{"event_id": e["event_id"], "label": 0} for e in inside[:100]])
    store = stores.labels
    fetched: list[int] = []
    read = store.labels_between

    async def counted(model: str, since: float, until: float | None = None) -> dict[str, object]:
        found = await read(model, since, until)
        fetched.append(len(found))
        return found

    monkeypatch.setattr(store, "labels_between", counted)
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    assert run["window"]["events"] == 200
    assert run["performance"]["labeled_events"] == 100
    assert run["performance"]["label_coverage"] == 0.5
    assert fetched == [100]
