"""Intake counters an operator alerts on: rejects by reason, and the stream consumer's
lag and pending entries, read from /metrics of the running app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson
import pytest
from prometheus_client.samples import Sample
from redis.asyncio import Redis

from tests.collectors.test_stream import STREAM, dead_letters, eventually, register_credit_model
from tests.data import credit_events
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)

REJECTS = "driftmon_events_rejected_by_reason_total"
LAG = "driftmon_stream_lag_entries"
PENDING = "driftmon_stream_pending_entries"
# the consumer reports its status every STATUS_INTERVAL_SECONDS (5 s); a busy machine
# may take several times that
STATUS_TIMEOUT_SECONDS = 60.0

Status = tuple[float | None, float | None]  # (lag, pending); None: not exported


def rejects_by_series(samples: list[Sample]) -> dict[tuple[str, str, str], float]:
    """{(model, source, reason): count} of every rejects-by-reason series above 0 (every
    reason is exported at 0 from a model and source's first batch on)."""
    return {
        (sample.labels["model"], sample.labels["source"], sample.labels["reason"]): sample.value
        for sample in samples
        if sample.name == REJECTS and sample.value > 0
    }


def with_features(seed: int, prefix: str, **features: object) -> dict[str, object]:
    """One credit event whose features are updated with `features`."""
    event = credit_events(1, seed=seed, prefix=prefix)[0]
    valid = event["features"]
    assert isinstance(valid, dict)
    return event | {"features": valid | features}


async def post(harness: Harness, model: str, events: Sequence[object]) -> dict[str, Any]:
    response = await harness.client.post(f"/v1/models/{model}/events", json=events)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_http_rejects_are_counted_by_model_source_and_reason(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, streams={STREAM: "credit"})
    async for harness in start_harness(settings):
        await upload_credit_reference(harness.client, "credit")
        await upload_credit_reference(harness.client, "fraud")
        credit = [
            *credit_events(2, seed=1),
            {"features": "age=40"},  # invalid: features must be an object
            with_features(2, "ts", age=41.0) | {"timestamp": "yesterday"},  # invalid
            with_features(3, "tm", age="forty"),  # type_mismatch
            with_features(4, "tm", region=3.5),  # type_mismatch
            with_features(5, "uf", shoe_size=44),  # unknown_field
            with_features(6, "uf", shoe_size=45),  # unknown_field
            with_features(7, "uf", eye_colour="blue"),  # unknown_field
        ]
        body = await post(harness, "credit", credit)
        assert (body["accepted"], body["rejected"]) == (2, 7), body
        reasons = [error["reason"] for error in body["errors"]]
        assert reasons == ["invalid"] * 2 + ["type_mismatch"] * 2 + ["unknown_field"] * 3
        fraud = [with_features(8, "fr", shoe_size=40), *credit_events(1, seed=8)]
        body = await post(harness, "fraud", fraud)
        assert (body["accepted"], body["rejected"]) == (1, 1), body
        # the same reason from the stream counts under its own source
        redis: Redis = harness.services.redis
        bad = [with_features(9, "st", age="old"), *credit_events(1, seed=10)]
        await redis.xadd(STREAM, {"events": orjson.dumps(bad)})
        await eventually(partial(dead_lettered, harness), seconds=30)  # entry settled
        samples = await scrape_samples(harness.client)
    assert rejects_by_series(samples) == {
        ("credit", "http", "invalid"): 2.0,
        ("credit", "http", "type_mismatch"): 2.0,
        ("credit", "http", "unknown_field"): 3.0,
        ("fraud", "http", "unknown_field"): 1.0,
        ("credit", "stream", "type_mismatch"): 1.0,
    }
    rejected = sample_value(
        samples, "driftmon_events_total", model="credit", outcome="rejected", source="http"
    )
    assert rejected == 7.0


async def dead_lettered(harness: Harness) -> bool:
    return len(await dead_letters(harness, STREAM)) == 1


async def stream_left_behind(redis_url: str, entries: int, held: int) -> None:
    """Before our consumer starts: `entries` events wait in the stream's group, of which
    another replica has read the first `held` and died before acknowledging them."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.xgroup_create(STREAM, "driftmon", id="0", mkstream=True)
        for event in credit_events(entries, seed=20):
            await redis.xadd(STREAM, {"event": orjson.dumps(event)})
        taken: Any = await redis.xreadgroup("driftmon", "dead-replica", {STREAM: ">"}, count=held)
        assert len(taken[0][1]) == held
    finally:
        await redis.aclose()


async def status_of(harness: Harness) -> Status:
    """(lag, pending) of the stream as /metrics reports them; None while unreported."""
    samples = await scrape_samples(harness.client)
    return sample_value(samples, LAG, stream=STREAM), sample_value(samples, PENDING, stream=STREAM)


async def test_stream_lag_and_pending_are_reported_until_caught_up(
    redis_url: str, key_prefix: str
) -> None:
    """The lag gauge drives an alert: it must show a backlog, then drop to 0 once the
    consumer has caught up; pending entries of a dead replica show until acknowledged."""
    entries, held = 40, 4
    await register_credit_model(redis_url, key_prefix)
    await stream_left_behind(redis_url, entries, held)
    settings = harness_settings(
        redis_url,
        key_prefix,
        streams={STREAM: "credit"},
        stream_consumer="pod-b",
        stream_block_ms=50,
        # the dead replica's entries stay pending: no janitor claims them during the test
        stream_claim_idle_seconds=3600,
    )
    async for harness in start_harness(settings):
        redis: Redis = harness.services.redis
        lag_supported = "lag" in (await redis.xinfo_groups(STREAM))[0]  # Redis 7+
        # The consumer reports its first status before its first read, so it shows the
        # backlog, and the next one STATUS_INTERVAL_SECONDS (5 s) later: the first one
        # stays on /metrics far longer than the 50 ms between polls.
        first = await until_status(harness, lambda status: status[1] is not None)
        expected_lag = entries - held if lag_supported else None
        assert first == (expected_lag, held)
        await eventually(partial(stored_is, harness, entries - held), seconds=30)
        # the dead replica's entries are handled elsewhere and acknowledged
        pending: Any = await redis.xpending_range(STREAM, "driftmon", "-", "+", count=100)
        assert {item["consumer"] for item in pending} == {b"dead-replica"}
        await redis.xack(STREAM, "driftmon", *[item["message_id"] for item in pending])
        caught_up = (0 if lag_supported else None, 0)
        assert await until_status(harness, caught_up.__eq__) == caught_up


async def stored_is(harness: Harness, count: int) -> bool:
    return bool(await harness.services.stores.events.total_events("credit") == count)


async def until_status(
    harness: Harness, reached: Callable[[Status], bool], seconds: float = STATUS_TIMEOUT_SECONDS
) -> Status:
    """Polls the reported (lag, pending) until `reached(status)`; fails with the last
    status seen after `seconds` of wall time."""
    deadline = time.monotonic() + seconds
    status = await status_of(harness)
    while not reached(status):
        if time.monotonic() > deadline:
            pytest.fail(f"stream (lag, pending) still {status} after {seconds:g} s")
        await asyncio.sleep(0.05)
        status = await status_of(harness)
    return status
