"""The stream consumer is supervised: whatever escapes it is logged and counted, it is
restarted with capped backoff, and /readyz answers 503 while it is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from core.redis_types import text
from service.config import Settings
from service.supervisor import Backoff, Supervisor
from tests.collectors.test_stream import STREAM, eventually, register_credit_model
from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness

PROMPTLY_SECONDS = 5.0  # generous: the CI machine is shared


class Flaky:
    """Work that raises `failures` times, then runs until stopped."""

    def __init__(self, failures: int, stop: asyncio.Event) -> None:
        self.failures = failures
        self.stop = stop
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"failure {self.calls}")
        await self.stop.wait()


async def test_failing_work_is_restarted_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    work = Flaky(failures=5, stop=stop)
    restarts: list[int] = []
    supervisor = Supervisor(
        "flaky", work, stop, lambda: restarts.append(1), Backoff(0.01, max_seconds=0.08)
    )
    with caplog.at_level(logging.INFO, logger="service.supervisor"):
        task = asyncio.create_task(supervisor.run())
        await eventually(lambda: _true(supervisor.up and work.calls == 6))
    assert len(restarts) == 5
    assert supervisor.last_error == "RuntimeError: failure 5"
    failures = [r for r in caplog.records if r.getMessage() == "flaky failed"]
    assert len(failures) == 5
    assert all(r.exc_info is not None for r in failures), "each failure has its traceback"
    delays = [r.args[1] for r in caplog.records if "restarting in" in r.msg]  # type: ignore[index]
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.08], "doubling, capped"
    stop.set()
    await asyncio.wait_for(task, PROMPTLY_SECONDS)
    assert not supervisor.up


async def test_stop_ends_a_backoff_wait_at_once() -> None:
    stop = asyncio.Event()
    restarts: list[int] = []
    supervisor = Supervisor(
        "flaky", Flaky(1, stop), stop, lambda: restarts.append(1), Backoff(600, 600)
    )
    task = asyncio.create_task(supervisor.run())
    await eventually(lambda: _true(supervisor.last_error is not None))
    assert not supervisor.up
    stop.set()
    await asyncio.wait_for(task, PROMPTLY_SECONDS)
    assert restarts == [], "stopped during the wait: not restarted"


async def _true(value: bool) -> bool:
    return value


def supervised_settings(redis_url: str, key_prefix: str) -> Settings:
    values: dict[str, object] = {
        "streams": {STREAM: "credit"},
        "stream_consumer": "test-consumer",
        "stream_block_ms": 50,
        # the first failed store dead-letters, and the dead letter is what hits the OOM
        "stream_max_deliveries": 1,
        "stream_restart_max_seconds": 0.5,
    }
    return harness_settings(redis_url, key_prefix, **values)


@pytest.fixture
async def supervised(redis_url: str, key_prefix: str) -> AsyncIterator[Harness]:
    await register_credit_model(redis_url, key_prefix)
    settings = supervised_settings(redis_url, key_prefix)
    async for harness in start_harness(settings):
        yield harness


def redis_of(harness: Harness) -> Redis:
    redis: Redis = harness.services.redis
    return redis


@asynccontextmanager
async def memory_restored(redis: Redis) -> AsyncIterator[None]:
    """Whatever a test does to maxmemory, the server gets its settings back."""
    saved = {text(k): text(v) for k, v in (await redis.config_get("maxmemory*")).items()}
    try:
        yield
    finally:
        await redis.config_set("maxmemory", saved["maxmemory"])
        await redis.config_set("maxmemory-policy", saved["maxmemory-policy"])


async def refuse_writes_after(redis: Redis, fields: dict[str, bytes]) -> None:
    """Appends an entry and makes Redis refuse writes in one transaction: the consumer,
    waiting for entries, reads it only once Redis is full."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(STREAM, fields)  # type: ignore[arg-type]
        pipe.config_set("maxmemory-policy", "noeviction")
        pipe.config_set("maxmemory", 1)
        await pipe.execute()


async def allow_writes(redis: Redis) -> None:
    await redis.config_set("maxmemory", 0)


async def readiness(harness: Harness) -> tuple[int, dict[str, str]]:
    response = await harness.client.get("/readyz")
    body: dict[str, str] = response.json()
    return response.status_code, body


async def readiness_reaches(harness: Harness, status: int, seconds: float = 30.0) -> dict[str, str]:
    """The body of the first /readyz answer with this status."""
    for _ in range(int(seconds / 0.02)):
        answer, body = await readiness(harness)
        if answer == status:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"/readyz did not answer {status} in time")


async def restarts(harness: Harness) -> float:
    scrape = (await harness.client.get("/metrics")).text
    for family in text_string_to_metric_families(scrape):
        if family.name == "driftmon_stream_consumer_restarts":
            return float(family.samples[0].value)
    raise AssertionError("driftmon_stream_consumer_restarts_total is not exported")


async def stored(harness: Harness) -> int:
    count: int = await harness.services.stores.events.total_events("credit")
    return count


async def test_consumer_failing_on_a_full_redis_is_restarted_and_recovers(
    supervised: Harness,
) -> None:
    redis = redis_of(supervised)
    await redis.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=1))})
    await eventually(partial(_stored_is, supervised, 10))
    assert await readiness(supervised) == (
        200,
        {"status": "ok", "redis": "ok", "stream_consumer": "ok"},
    )
    assert await restarts(supervised) == 0
    async with memory_restored(redis):
        # a full Redis still lets the event store's script run to its end (its first
        # write is one Redis allows when full), but refuses the dead letter of an entry
        # that cannot be stored: that escapes the consumer
        await refuse_writes_after(redis, {"event": b"{not json"})
        body = await readiness_reaches(supervised, 503)
        assert body["stream_consumer"] == "down"
        assert "OutOfMemoryError" in body["stream_consumer_error"]
        await eventually(partial(_restarted, supervised), seconds=30)
        await allow_writes(redis)
        await eventually(partial(_readiness_is, supervised, 200), seconds=30)
    await redis.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=3))})
    await eventually(partial(_stored_is, supervised, 20), seconds=30)
    # the entry read while Redis was full stayed pending: dead-lettered now, not lost
    letters = await redis.xrange(supervised.settings.key_prefix + "deadletter:" + STREAM)
    assert len(letters or []) == 1
    assert (await readiness(supervised))[1]["stream_consumer"] == "ok"


async def test_consumer_that_cannot_start_is_not_ready_until_it_runs(
    redis_url: str, key_prefix: str
) -> None:
    await register_credit_model(redis_url, key_prefix)
    settings = supervised_settings(redis_url, key_prefix)
    admin = Redis.from_url(redis_url)
    try:
        async with memory_restored(admin):
            await admin.config_set("maxmemory-policy", "noeviction")
            await admin.config_set("maxmemory", 1)  # creating the consumer group is refused
            async for harness in start_harness(settings):
                await eventually(partial(_readiness_is, harness, 503), seconds=30)
                await eventually(partial(_restarted, harness), seconds=30)
                await allow_writes(admin)
                await eventually(partial(_readiness_is, harness, 200), seconds=30)
                await admin.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=4))})
                await eventually(partial(_stored_is, harness, 10), seconds=30)
    finally:
        await admin.aclose()


async def test_readyz_names_the_stream_consumer_only_when_streams_are_configured(
    supervised: Harness, redis_url: str, key_prefix: str
) -> None:
    status, body = await readiness(supervised)
    assert (status, body.get("stream_consumer")) == (200, "ok")
    async for plain in start_harness(harness_settings(redis_url, key_prefix)):
        # ready once its detection pool is warm, as an orchestrator would wait for it
        await eventually(partial(_readiness_is, plain, 200), seconds=120)
        assert await readiness(plain) == (200, {"status": "ok", "redis": "ok"})


async def _stored_is(harness: Harness, count: int) -> bool:
    return await stored(harness) == count


async def _readiness_is(harness: Harness, status: int) -> bool:
    return (await readiness(harness))[0] == status


async def _restarted(harness: Harness) -> bool:
    return await restarts(harness) >= 1
