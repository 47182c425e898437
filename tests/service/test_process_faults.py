"""`driftmon serve` on its embedded Redis, killed or stopped in the middle of intake:
a SIGKILL loses no acknowledged event, and a SIGTERM finishes the requests it has,
acknowledges to the stream what it stored, shuts its Redis down cleanly and exits."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.keys import Keys
from service.embedded_redis import EmbeddedRedis
from tests.collectors.test_stream_resilience import until_ready, within
from tests.data import credit_events
from tests.fixtures_app import upload_credit_reference
from tests.service.test_redis_faults import (
    BATCH,
    EVENTS_PATH,
    EXIT_TIMEOUT_SECONDS,
    Answer,
    Served,
    acknowledged,
    assert_stored,
    intake_loop,
    start_serve,
    stop_serve,
)

STREAM = "faults:stream"
GROUP = "driftmon"  # the default stream_group
HELD = 8  # requests whose bodies are held back until the SIGTERM is under way
HOLD_SECONDS = 1.0  # how long after the listener closed they are held still
WAIT_SECONDS = 60.0  # any one step; generous for a busy CI machine
# Redis is not the fault here: waits long enough that an event loop starved of CPU on a
# busy machine (seconds, here, beside other test runs) cannot time a Redis call out
PATIENT = {
    "DRIFTMON_REDIS_SOCKET_TIMEOUT_SECONDS": "10",
    "DRIFTMON_REDIS_CONNECT_TIMEOUT_SECONDS": "10",
}


def client_of(served: Served) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=100)
    return httpx.AsyncClient(base_url=served.base_url, timeout=60.0, limits=limits)


@asynccontextmanager
async def embedded_client(data_dir: Path) -> AsyncIterator[Redis]:
    """A client of the embedded Redis of a running `driftmon serve` on `data_dir`."""
    socket_path = (data_dir / "redis" / "socket-path").read_text().strip()
    async with Redis(unix_socket_path=socket_path, socket_timeout=10) as redis:
        yield redis


@asynccontextmanager
async def reopened(data_dir: Path) -> AsyncIterator[Redis]:
    """The data dir's Redis started anew (driftmon being gone), and a client of it."""
    embedded = EmbeddedRedis(data_dir)
    await asyncio.to_thread(embedded.start)
    try:
        async with Redis.from_url(embedded.url, socket_timeout=10) as redis:
            yield redis
    finally:
        await asyncio.to_thread(embedded.stop)


def at_least(answers: list[Answer], count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(acknowledged(answers)) >= count * BATCH

    return check


@pytest.mark.timeout(600)
async def test_sigkill_during_intake_loses_no_acknowledged_event(
    key_prefix: str, tmp_path: Path
) -> None:
    answers: list[Answer] = []
    stop, seeds = asyncio.Event(), itertools.count()
    first = start_serve(tmp_path, key_prefix, **PATIENT)  # no --redis-url: embedded Redis
    try:
        await until_ready(first.port, first.process, first.log)
        async with client_of(first) as client:
            await upload_credit_reference(client)
            loops = [
                asyncio.create_task(intake_loop(client, seeds, stop, answers)) for _ in range(4)
            ]
            try:
                await within(WAIT_SECONDS, at_least(answers, 20), "20 batches acknowledged")
                first.process.kill()  # with requests in flight
                await asyncio.to_thread(first.process.wait, EXIT_TIMEOUT_SECONDS)
            finally:
                stop.set()
                await asyncio.gather(*loops)
    finally:
        stop_serve(first)
    for answer in answers:  # acknowledged, or cut off by the kill
        assert answer.status in (202, None), f"{answer.status} {answer.body[:300]!r}"
    second = start_serve(tmp_path, key_prefix, **PATIENT)  # the same data dir
    try:
        await until_ready(second.port, second.process, second.log)
        async with embedded_client(tmp_path / "data") as redis:
            await assert_stored(redis, key_prefix, acknowledged(answers))
    finally:
        stop_serve(second)


def accepted_connections(pid: int, port: int) -> int:
    """Connections to `port` that process `pid` has accepted (its sockets); the ones
    still waiting in the listen backlog are not counted."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        established = fields[3] == "01"
        count += local_port == port and established and fields[9] in inodes
    return count


async def post_held(client: httpx.AsyncClient, seed: int, release: asyncio.Event) -> Answer:
    """A POST whose body stops after its first byte until `release`: a request the
    server is in the middle of."""
    events = credit_events(BATCH, seed=seed, prefix="held")
    body = orjson.dumps(events)

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:1]
        await release.wait()
        yield body[1:]

    started = time.monotonic()
    ids = [str(event["event_id"]) for event in events]
    try:
        headers = {"content-type": "application/json"}
        response = await client.post(EVENTS_PATH, content=chunks(), headers=headers)
    except httpx.TransportError as exc:
        return Answer(started, time.monotonic() - started, ids, error=repr(exc))
    seconds = time.monotonic() - started
    return Answer(started, seconds, ids, response.status_code, body=response.content)


async def produce(redis: Redis, served: Served) -> int:
    """XADDs one event per entry, ten at a time, for as long as the server's Redis
    takes them: the consumer has entries in hand when it is told to stop. How many."""
    added = 0
    while served.process.poll() is None:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for event in credit_events(10, seed=added, prefix="stream"):
                    pipe.xadd(STREAM, {"event": orjson.dumps(event)})
                await pipe.execute()
        except (RedisError, OSError):  # its Redis shut down with it
            break
        added += 10
        await asyncio.sleep(0.01)
    return added


def refusing(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return False
        except ConnectionRefusedError:
            return True

    return check


async def held_in_flight(
    served: Served, client: httpx.AsyncClient, release: asyncio.Event
) -> list[asyncio.Task[Answer]]:
    """HELD requests the server has accepted and is waiting on (no other client is
    connected meanwhile, so the count of its connections is theirs)."""

    async def count_is(expected: int) -> bool:
        return accepted_connections(served.process.pid, served.port) == expected

    await within(WAIT_SECONDS, lambda: count_is(0), "no connection left before the held ones")
    held = [asyncio.create_task(post_held(client, seed, release)) for seed in range(HELD)]
    await within(WAIT_SECONDS, lambda: count_is(HELD), f"{HELD} held requests accepted")
    return held


@dataclass
class Outcome:
    answers: list[Answer]  # HTTP intake's, from before the SIGTERM into the shutdown
    held: list[Answer]
    exit_code: int


async def sigterm_mid_intake(served: Served, key_prefix: str, data_dir: Path) -> Outcome:
    """HELD requests in flight, HTTP intake going on and the stream being fed, then a
    SIGTERM; the held requests send the rest of their bodies HOLD_SECONDS after the
    listener closed. Returns once the server has exited."""
    answers: list[Answer] = []
    stop, release, seeds = asyncio.Event(), asyncio.Event(), itertools.count()
    async with client_of(served) as held_client, client_of(served) as client:
        held = await held_in_flight(served, held_client, release)
        async with embedded_client(data_dir) as redis:
            producer = asyncio.create_task(produce(redis, served))
            loops = [
                asyncio.create_task(intake_loop(client, seeds, stop, answers)) for _ in range(4)
            ]
            try:
                await within(WAIT_SECONDS, at_least(answers, 10), "10 batches acknowledged")
                await within(WAIT_SECONDS, lambda: consumed(redis, key_prefix), "stream stored")
                served.process.send_signal(signal.SIGTERM)
                stop.set()
                await within(WAIT_SECONDS, refusing(served.port), "the listener closed")
                await asyncio.sleep(HOLD_SECONDS)  # the held requests outlast the SIGTERM
            finally:
                stop.set()
                release.set()
                held_answers = await asyncio.gather(*held)
                await asyncio.gather(*loops)
            try:
                code = await asyncio.to_thread(served.process.wait, EXIT_TIMEOUT_SECONDS)
            finally:
                producer.cancel()  # ended by itself with the server, unless that hung
                await asyncio.gather(producer, return_exceptions=True)
    return Outcome(answers, held_answers, code)


@pytest.mark.timeout(600)
async def test_sigterm_during_intake_finishes_acks_and_flushes(
    key_prefix: str, tmp_path: Path
) -> None:
    env = {"DRIFTMON_STREAM_BATCH_SIZE": "5", **PATIENT}
    served = start_serve(tmp_path, key_prefix, "--stream", f"{STREAM}=credit", **env)
    try:
        await until_ready(served.port, served.process, served.log)
        async with client_of(served) as client:
            await upload_credit_reference(client)
        outcome = await sigterm_mid_intake(served, key_prefix, tmp_path / "data")
    finally:
        stop_serve(served)
    for answer in outcome.held:  # in the middle of it at the SIGTERM: finished
        assert answer.status == 202, f"{answer.status} {answer.error} {answer.body[:300]!r}"
    for answer in outcome.answers:  # a POST racing the closing listener may get no answer
        assert answer.status in (202, None), f"{answer.status} {answer.body[:300]!r}"
    redis_log = (tmp_path / "data" / "redis" / "redis.log").read_text()
    assert "User requested shutdown" in redis_log, "the embedded Redis was not SHUTDOWN"
    assert "ready to exit" in redis_log
    async with reopened(tmp_path / "data") as redis:
        await assert_stored(redis, key_prefix, acknowledged([*outcome.answers, *outcome.held]))
        await assert_stream_acked_only_what_was_stored(redis, key_prefix)
    assert outcome.exit_code == 0, f"a graceful stop exits 0, not {outcome.exit_code}"


async def consumed(redis: Redis, key_prefix: str) -> bool:
    return bool(await redis.zcard(Keys(key_prefix).events_seen("credit")))


async def assert_stream_acked_only_what_was_stored(redis: Redis, key_prefix: str) -> None:
    """Every entry delivered and acknowledged has its event stored; none is left
    pending, and surely none whose event was stored."""
    group = (await redis.xinfo_groups(STREAM))[0]
    delivered: list[Any] = await redis.xrange(STREAM, "-", group["last-delivered-id"]) or []
    pending = await redis.xpending_range(STREAM, GROUP, "-", "+", count=len(delivered) + 1)
    pending_ids = {entry["message_id"] for entry in pending}
    assert await redis.xlen(Keys(key_prefix).dead_letters(STREAM)) == 0
    seen = Keys(key_prefix).events_seen("credit")
    event_ids = [orjson.loads(fields[b"event"])["event_id"] for _, fields in delivered]
    scores = await redis.zmscore(seen, event_ids) if event_ids else []
    for (entry_id, _), event_id, score in zip(delivered, event_ids, scores, strict=True):
        if entry_id in pending_ids:
            assert score is None, f"entry {entry_id!r} stored but left pending"
        else:
            assert score is not None, f"entry {entry_id!r} acknowledged, {event_id} not stored"
    assert delivered, "the consumer had read nothing"
    print(f"stream: {len(delivered)} delivered, {len(pending_ids)} left pending")
    # stopping, the consumer stores and acknowledges what it has read before it exits
    assert not pending_ids, f"{len(pending_ids)} entries read but left pending"
