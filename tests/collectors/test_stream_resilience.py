"""The stream consumer survives a Redis restart and a SIGKILL of its process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from core.stores.events import EventStore
from service.launch import free_port, serve_command, wait_until_ready
from tests.collectors.test_stream import (
    STREAM,
    consumer_settings,
    eventually,
    register_credit_model,
)
from tests.data import credit_events
from tests.fixtures_app import start_harness
from tests.redis_server import RedisServer

TOTAL = 3000


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer(appendonly=True) as server:
        yield server


async def test_consumer_carries_on_after_a_redis_restart(
    own_redis: RedisServer, key_prefix: str
) -> None:
    await register_credit_model(own_redis.url, key_prefix)
    async for harness in start_harness(consumer_settings(own_redis.url, key_prefix)):
        redis: Redis = harness.services.redis
        store = harness.services.stores.events
        await redis.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=1))})
        await eventually(partial(_stored_is, store, 10))
        await asyncio.to_thread(own_redis.restart)
        await asyncio.sleep(0.5)
        await redis.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=2))})
        await eventually(partial(_stored_is, store, 20), seconds=20)


async def _stored_is(store: EventStore, count: int) -> bool:
    return await store.total_events("credit") == count


def serve(redis_url: str, key_prefix: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = serve_command(
        port, log.parent / "data", "--redis-url", redis_url, "--key-prefix", key_prefix,
        "--detection-workers", "0", "--stream", f"{STREAM}=credit", "--stream-consumer", "pod-a",
    )  # fmt: skip
    env = {**os.environ, "DRIFTMON_STREAM_BATCH_SIZE": "20", "DRIFTMON_LOG_LEVEL": "warning"}
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


@pytest.mark.timeout(120)
async def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    await register_credit_model(redis_url, key_prefix)
    redis = Redis.from_url(redis_url)
    events = credit_events(TOTAL, seed=3)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(STREAM, {"event": orjson.dumps(event)})
        await pipe.execute()
    index = f"{key_prefix}{{credit}}:events:index"

    async def stored() -> int:
        last = await redis.zrange(index, -1, -1, withscores=True)
        return int(last[0][1]) if last else 0

    port = free_port()
    first = serve(redis_url, key_prefix, port, tmp_path / "serve.log")
    try:
        for _ in range(600):
            if await stored() >= TOTAL // 5:
                break
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    partial = await stored()
    assert 0 < partial < TOTAL, f"kill landed outside the stream: {partial}"

    second = serve(redis_url, key_prefix, port, tmp_path / "serve.log")
    try:
        ready = await asyncio.to_thread(wait_until_ready, f"http://127.0.0.1:{port}", second, 60.0)
        assert ready, "driftmon serve did not restart"

        async def complete() -> bool:
            summary = await redis.xpending(STREAM, "driftmon")
            groups = await redis.xinfo_groups(STREAM)
            return await stored() >= TOTAL and summary["pending"] == 0 and groups[0]["lag"] == 0

        await eventually(complete, seconds=60)
        seen_key = f"{key_prefix}{{credit}}:seen"
        scores = await redis.zmscore(seen_key, [str(event["event_id"]) for event in events])
        assert None not in scores, "an event was lost"
        assert await redis.zcard(seen_key) == TOTAL
        assert await stored() == TOTAL, "an event was stored twice"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            model = (await client.get("/v1/models/credit")).json()
        assert model["stored_events"] == TOTAL
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        await redis.aclose()
