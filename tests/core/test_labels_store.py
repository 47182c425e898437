"""Labels are indexed by their event's ingest time: a run reads its window's labels
alone, expiry goes by the event's age, and labels indexed by arrival (before that
change) are still found. Labels from the labeling queue keep their origin, which
expires with them, and a plain label clears."""

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
from core.stores.labels import LabelStore, WindowLabels
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
    read = store.window_labels

    async def counted(model: str, since: float, until: float | None = None) -> WindowLabels:
        found = await read(model, since, until)
        fetched.append(len(found.labels))
        return found

    monkeypatch.setattr(store, "window_labels", counted)
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    assert run["window"]["events"] == 200
    assert run["performance"]["labeled_events"] == 100
    assert run["performance"]["label_coverage"] == 0.5
    assert fetched == [100]


async def test_queue_origins_are_kept_beside_their_labels(
    stores: tuple[EventStore, LabelStore],
) -> None:
    event_store, labels = stores
    now = time.time()
    await event_store.append("m", events(5, "e"), KEEP_ALL, now=now)
    await labels.put_labels("m", {f"e{i}": "1" for i in range(4)}, ttl_seconds=30 * DAY)
    # e4 was seen but never labeled, zz never seen: no origin without a stored label
    origins = {"e0": True, "e1": False, "e4": True, "zz": False}
    assert await labels.mark_from_queue("m", origins, ttl=30 * DAY) == 2
    assert await labels.origins_for("m", ["e0", "e1", "e2", "e4", "zz"]) == {
        "e0": True,
        "e1": False,
    }
    window = await labels.window_labels("m", since=now - 60)
    assert window.labels == {f"e{i}": "1" for i in range(4)}
    assert window.origins == {"e0": True, "e1": False}
    # the plain read does not bother with origins
    assert await labels.labels_between("m", since=now - 60) == window.labels


async def test_a_plain_label_clears_the_queue_origin(stores: tuple[EventStore, LabelStore]) -> None:
    """The latest label wins, and a label posted to /labels is no longer the queue's."""
    event_store, labels = stores
    now = time.time()
    await event_store.append("m", events(2, "e"), KEEP_ALL, now=now)
    await labels.put_labels("m", {"e0": "1", "e1": "1"}, ttl_seconds=30 * DAY)
    await labels.mark_from_queue("m", {"e0": True, "e1": False}, ttl=30 * DAY)
    await labels.put_labels("m", {"e0": "0"}, ttl_seconds=30 * DAY)
    assert await labels.origins_for("m", ["e0", "e1"]) == {"e1": False}
    window = await labels.window_labels("m", since=now - 60)
    assert window.labels == {"e0": "0", "e1": "1"}
    assert window.origins == {"e1": False}
    # the workflow's order: its put clears, its mark sets again
    await labels.put_labels("m", {"e0": "1"}, ttl_seconds=30 * DAY)
    await labels.mark_from_queue("m", {"e0": False}, ttl=30 * DAY)
    assert await labels.origins_for("m", ["e0", "e1"]) == {"e0": False, "e1": False}
    # or in one transaction, as the workflow does it; an unknown event is neither
    accepted = await labels.put_labels(
        "m", {"e1": "0", "zz": "1"}, ttl_seconds=30 * DAY, origins={"e1": True, "zz": True}
    )
    assert accepted == (1, 1)
    assert await labels.origins_for("m", ["e0", "e1", "zz"]) == {"e0": False, "e1": True}


async def test_queue_origins_expire_with_their_labels(
    stores: tuple[EventStore, LabelStore], redis_url: str, key_prefix: str
) -> None:
    event_store, labels = stores
    now = time.time()
    await event_store.append("m", events(2, "aged"), KEEP_ALL, now=now - 10 * DAY)
    await event_store.append("m", events(2, "fresh"), KEEP_ALL, now=now)
    await labels.put_labels("m", {"aged0": "1", "aged1": "0"}, ttl_seconds=20 * DAY)
    await labels.mark_from_queue("m", {"aged0": True, "aged1": False}, ttl=20 * DAY)
    # a label write with a shorter TTL trims the aged labels and their origins
    await labels.put_labels("m", {"fresh0": "1"}, ttl_seconds=5 * DAY)
    await labels.mark_from_queue("m", {"fresh0": True}, ttl=5 * DAY)
    assert await labels.origins_for("m", ["aged0", "aged1", "fresh0"]) == {"fresh0": True}
    # so does a mark: the trim is the same, whichever writes
    await labels.put_labels("m", {"fresh1": "1"}, ttl_seconds=20 * DAY)
    await labels.mark_from_queue("m", {"fresh1": False}, ttl=-1.0)
    assert await labels.labels_for("m", ["fresh0", "fresh1"]) == [None, None]
    async with Redis.from_url(redis_url) as redis:
        keys = Keys(key_prefix)
        assert await redis.exists(keys.labels_origin("m")) == 0
        assert await redis.exists(keys.labels_index("m")) == 0


async def test_a_run_reports_the_labels_from_the_queue(harness: Harness) -> None:
    response = await harness.client.put(
        "/v1/models/credit/reference",
        params={"prediction": "prediction", "scores": "score", "label": "label"},
        content=labeled_reference_csv(),
    )
    assert response.status_code == 201, response.text
    inside = credit_events(200, seed=2, prefix="inside")
    await post(harness, "events", inside)
    await post(harness, "labels", [{"event_id": e["event_id"], "label": 0} for e in inside[:100]])
    store = harness.services.stores.labels
    origins = {str(e["event_id"]): i < 20 for i, e in enumerate(inside[:30])}
    assert await store.mark_from_queue("credit", origins, 30 * DAY) == 30
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    section = run["performance"]
    assert section["labeled_events"] == 100
    assert section["labels_from_queue"] == 30
    estimate = section["random_estimate"]
    assert estimate["labeled_events"] == 20
    assert estimate["min_labeled_events"] == 10  # a fifth of the default 50, at least 10
    assert set(estimate["window"]) >= {"accuracy", "precision", "recall", "f1"}
