"""Bounded intake below the HTTP layer: value lengths and timestamps on every validation
path (the fast paths refuse, the careful path names the field), and the idempotency
memory bounded by count as well as age."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from collectors.columnar import encode_columnar
from collectors.events import RecordError, RecordLimits, normalize_record, parse_timestamp
from collectors.typed import TypedDecoder
from collectors.validation import layout_for, record_error
from core.blocks import EncodedBatch
from core.events import Event
from core.keys import Keys
from core.schema import ModelSchema
from core.stores.events import EventStore, RetentionPolicy
from tests.collectors.test_columnar import CLASSIFIER, NOW, assert_same, record
from tests.collectors.test_store import LAYOUT, T0, make_events

LONG = 256  # the default max_value_length
TIGHT = RecordLimits(max_value_length=8, max_future_seconds=86400.0)


def careful(
    records: list[Any], limits: RecordLimits, schema: ModelSchema = CLASSIFIER
) -> tuple[list[Event], list[dict[str, Any]]]:
    """The per-record path (normalize_all's loop) with these limits."""
    events: list[Event] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(records):
        try:
            events.append(normalize_record(raw, "m", schema, NOW, limits))
        except RecordError as exc:
            errors.append(record_error(index, exc))
    return events, errors


def paths(records: list[Any], limits: RecordLimits, schema: ModelSchema = CLASSIFIER) -> Any:
    """(columnar, typed, careful) results for the same records."""
    layout = layout_for(schema)
    columnar = encode_columnar(records, "m", schema, layout, NOW, limits)
    decoder = TypedDecoder(schema, layout, limits)
    # json, not orjson: some records hold integers beyond 64 bits
    typed_records = decoder.records(json.dumps(records).encode(), many=True)
    typed = None if typed_records is None else decoder.encode_records(typed_records, "m", NOW)
    return columnar, typed, careful(records, limits, schema)


OVER_LONG: list[tuple[dict[str, Any], str]] = [
    ({"event_id": "e" * (LONG + 1)}, "event_id"),
    ({"model_version": "v" * (LONG + 1)}, "model_version"),
    ({"features": {"age": 1.0, "income": 1, "region": "r" * (LONG + 1), "plan": None}},
     "features.region"),
    ({"prediction": "p" * (LONG + 1)}, "prediction"),
    ({"label": "l" * (LONG + 1)}, "label"),
    ({"prediction": int("9" * (LONG + 1))}, "prediction"),  # an integer class id's digits
    ({"scores": {"c" * (LONG + 1): 0.5}}, "scores"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), OVER_LONG)
def test_over_long_values_are_refused_fast_and_named_carefully(
    change: dict[str, Any], field: str
) -> None:
    records = [record(0), record(1, **change), record(2)]
    limits = RecordLimits()
    columnar, typed, (events, errors) = paths(records, limits)
    assert columnar is None
    assert typed is None
    assert [error["index"] for error in errors] == [1]
    assert errors[0]["field"] == field
    assert "DRIFTMON_MAX_VALUE_LENGTH" in errors[0]["error"]
    assert len(errors[0]["error"]) < 100  # the value is not echoed
    assert len(events) == 2


def test_values_at_the_limit_take_every_path_with_the_same_bytes() -> None:
    at_limit = {
        "event_id": "e" * 8,
        "model_version": "v" * 8,
        "features": {"age": 1.0, "income": 1, "region": "r" * 8, "plan": None},
        "prediction": "p" * 8,
        "scores": {"c" * 8: 0.5},
    }
    records = [record(0, event_id="a"), {**record(1), **at_limit}]
    columnar, typed, (events, errors) = paths(records, TIGHT)
    assert errors == []
    careful = EncodedBatch.from_events(events, layout_for(CLASSIFIER))
    assert columnar is not None
    assert typed is not None
    assert_same(columnar, careful)
    assert_same(typed, careful)


def test_a_tighter_limit_applies_to_every_path() -> None:
    records = [record(0, model_version="v" * 9)]
    columnar, typed, (_, errors) = paths(records, TIGHT)
    assert (columnar, typed) == (None, None)
    assert errors[0]["field"] == "model_version"


@pytest.mark.parametrize(
    "timestamp",
    [-1e18, 0, 946_684_799, "1999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", 10**400],
    ids=["-1e18", "0", "1999 epoch", "1999 ISO", "year 1", "beyond floats"],
)
def test_timestamps_before_2000_are_rejected(timestamp: object) -> None:
    records: list[Any] = [record(0), record(1, timestamp=timestamp)]
    assert encode_columnar(records, "m", CLASSIFIER, layout_for(CLASSIFIER), NOW) is None
    errors = careful(records, RecordLimits())[1]
    assert [(error["index"], error["field"]) for error in errors] == [(1, "timestamp")]


@pytest.mark.parametrize("timestamp", [NOW + 86400.5, "9999-12-31T23:59:59Z", 1e12 * 1000])
def test_timestamps_too_far_ahead_are_rejected(timestamp: object) -> None:
    records = [record(0), record(1, timestamp=timestamp)]
    columnar, typed, (_, errors) = paths(records, TIGHT)
    assert (columnar, typed) == (None, None)
    assert [(error["index"], error["field"]) for error in errors] == [(1, "timestamp")]
    assert "DRIFTMON_TIMESTAMP_MAX_FUTURE_SECONDS" in errors[0]["error"]


def test_timestamps_within_the_range_pass() -> None:
    assert parse_timestamp(NOW + 86400, NOW, TIGHT) == NOW + 86400
    assert parse_timestamp("2000-01-01T00:00:00Z", NOW, TIGHT) == 946_684_800.0
    assert parse_timestamp(None, 5.0, TIGHT) == 5.0  # absent: now, whatever now is
    with pytest.raises(RecordError, match="DRIFTMON_TIMESTAMP_NOT_BEFORE"):
        normalize_record({"features": {}, "timestamp": 1}, "m", CLASSIFIER, NOW)


# --- the idempotency memory -------------------------------------------------------------------


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[EventStore, Redis, Keys]]:
    redis = Redis.from_url(redis_url)
    keys = Keys(key_prefix)
    yield EventStore(redis, keys), redis, keys
    await redis.aclose()


async def append(
    events_store: EventStore, ids: list[str], policy: RetentionPolicy, at: float
) -> Any:
    events = make_events(len(ids))
    for event, event_id in zip(events, ids, strict=True):
        event.event_id = event_id
    return await events_store.append("m", EncodedBatch.from_events(events, LAYOUT), policy, at)


async def test_seen_ids_are_capped_by_count_and_recent_duplicates_still_refused(
    store: tuple[EventStore, Redis, Keys],
) -> None:
    events_store, redis, keys = store
    policy = RetentionPolicy(max_age_seconds=86400, max_events=100, dedup_max_ids=1000)
    for batch in range(50):  # 5,000 events in batches of 100, one second apart
        ids = [f"e{batch * 100 + i}" for i in range(100)]
        assert (await append(events_store, ids, policy, T0 + batch)).accepted == 100
    assert await redis.zcard(keys.events_seen("m")) == 1000
    assert await events_store.total_events("m") == 100
    # e4000 is no longer stored (count retention) but still remembered: refused
    again = await append(events_store, ["e4000", "e4999"], policy, T0 + 60)
    assert (again.accepted, again.duplicates) == (0, 2)
    # e0 was forgotten: a duplicate of it is stored again (README "Storage")
    assert (await append(events_store, ["e0"], policy, T0 + 61)).accepted == 1


async def test_the_ids_of_stored_events_are_kept_beyond_the_cap(
    store: tuple[EventStore, Redis, Keys],
) -> None:
    """A cap below the stored events never forgets a stored event's id."""
    events_store, redis, keys = store
    policy = RetentionPolicy(max_age_seconds=86400, max_events=3000, dedup_max_ids=500)
    for batch in range(40):
        ids = [f"e{batch * 100 + i}" for i in range(100)]
        await append(events_store, ids, policy, T0 + batch)
    stored = await events_store.total_events("m")
    assert stored == 3000
    assert await redis.zcard(keys.events_seen("m")) == stored
    oldest_stored = f"e{4000 - stored}"
    again = await append(events_store, [oldest_stored, "e3999"], policy, T0 + 60)
    assert again.accepted == 0
