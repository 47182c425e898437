"""The stream consumer survives a Redis restart and a SIGKILL of its process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from core.stores.events import EventStore
from service.launch import free_port, serve_command, wait_until_ready
from tests.collectors.test_stream import STREAM, consumer_settings, register_credit_model
from tests.data import credit_events
from tests.fixtures_app import start_harness
from tests.redis_server import RedisServer

TOTAL = 3000
POLL_SECONDS = 0.005
READY_TIMEOUT_SECONDS = 120.0  # a cold `driftmon serve`: imports, then the lifespan
STORE_TIMEOUT_SECONDS = 60.0
COMPLETE_TIMEOUT_SECONDS = 120.0


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
        await within(STORE_TIMEOUT_SECONDS, partial(_stored_is, store, 10), "first 10 stored")
        await asyncio.to_thread(own_redis.restart)  # returns once the server answers PING
        # the app's client retries across the restart; the consumer reconnects on its own
        await redis.xadd(STREAM, {"events": orjson.dumps(credit_events(10, seed=2))})
        await within(STORE_TIMEOUT_SECONDS, partial(_stored_is, store, 20), "next 10 stored")


async def _stored_is(store: EventStore, count: int) -> bool:
    return await store.total_events("credit") == count


async def within(seconds: float, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls `check` until it holds; fails naming `what` after `seconds` of wall time
    (bounds are generous: a busy CI machine shares two cores among several servers)."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {seconds:g} s: {what}")
        await asyncio.sleep(POLL_SECONDS)


def serve(redis_url: str, key_prefix: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = serve_command(
        port, log.parent / "data", "--redis-url", redis_url, "--key-prefix", key_prefix,
        "--detection-workers", "0", "--stream", f"{STREAM}=credit", "--stream-consumer", "pod-a",
    )  # fmt: skip
    env = {**os.environ, "DRIFTMON_STREAM_BATCH_SIZE": "5", "DRIFTMON_LOG_LEVEL": "warning"}
    with log.open("ab") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


async def until_ready(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until /readyz of the subprocess answers 200; fails with its log if it exits or
    takes longer than READY_TIMEOUT_SECONDS."""
    base = f"http://127.0.0.1:{port}"
    ready = await asyncio.to_thread(wait_until_ready, base, server, READY_TIMEOUT_SECONDS)
    assert ready, f"driftmon serve not ready (exit code {server.poll()}):\n{log_tail(log)}"


@pytest.mark.timeout(600)
async def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    await register_credit_model(redis_url, key_prefix)
    redis = Redis.from_url(redis_url)
    events = credit_events(TOTAL, seed=3)
    index = f"{key_prefix}{{credit}}:events:index"
    log = tmp_path / "serve.log"

    async def stored() -> int:
        last = await redis.zrange(index, -1, -1, withscores=True)
        return int(last[0][1]) if last else 0

    async def some_stored() -> bool:
        return await stored() > 0

    port = free_port()
    first = serve(redis_url, key_prefix, port, log)
    try:
        # The stream is filled only once the server is ready, however long a cold start
        # takes. The consumer then needs TOTAL / 5 batches, each a read, a store and an
        # ack (about 0.3 s on an idle machine, longer on a busy one), so a kill as soon
        # as the first events are stored lands long before the last.
        await until_ready(port, first, log)
        async with redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(STREAM, {"event": orjson.dumps(event)})
            await pipe.execute()
        await within(STORE_TIMEOUT_SECONDS, some_stored, "first events stored before the kill")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
    partial = await stored()
    assert 0 < partial < TOTAL, f"kill landed outside the stream: {partial}"

    second = serve(redis_url, key_prefix, port, log)
    try:
        await until_ready(port, second, log)

        async def complete() -> bool:
            summary = await redis.xpending(STREAM, "driftmon")
            groups = await redis.xinfo_groups(STREAM)
            lag = groups[0].get("lag", 0)  # Redis 6.2 does not report it
            return await stored() >= TOTAL and summary["pending"] == 0 and lag == 0

        await within(COMPLETE_TIMEOUT_SECONDS, complete, "every entry stored and acknowledged")
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
        second.wait(timeout=60)
        await redis.aclose()
