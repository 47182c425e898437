"""The service's Redis client packs commands with hiredis, byte for byte as redis-py's
own Python packer does, and bounds every wait: a stopped or hung server fails a call
within seconds, a blocking stream read waits its block time, a restart rides through."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_client import HiredisPacking, block_seconds, connect_redis, hiredis_packing
from tests.redis_server import RedisServer

COMMANDS: list[tuple[Any, ...]] = [
    ("XACK", "stream", "group", b"1795890366075-0", b"1795890366075-1"),
    ("EVALSHA", "abc", 3, "k1", "k2", "k3", 1.5, -7, 10**20, -0.0, b"\x00\xff\n", "é", ""),
    ("CONFIG GET", "maxmemory"),  # a command name of two words
    (b"CLIENT SETNAME", b"driftmon"),
    ("SET", "k", memoryview(b"view"), bytearray(b"array")),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_hiredis_packs_what_redis_py_packs(command: tuple[Any, ...]) -> None:
    python_packed = b"".join(Connection().pack_command(*command))
    hiredis_packed = b"".join(hiredis_packing(Connection)().pack_command(*command))
    assert hiredis_packed == python_packed


@pytest.mark.parametrize("value", [None, True])
def test_unpackable_arguments_are_data_errors_as_before(value: Any) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", value)
    with pytest.raises(DataError):
        hiredis_packing(Connection)().pack_command("SET", "k", value)


@pytest.mark.parametrize(
    ("url", "base"),
    [("redis://127.0.0.1:1/0", Connection), ("unix:///tmp/none.sock", UnixDomainSocketConnection)],
)
async def test_every_kind_of_connection_packs_with_hiredis(url: str, base: type) -> None:
    client = connect_redis(url)
    made = client.connection_pool.connection_class
    assert issubclass(made, HiredisPacking)
    assert issubclass(made, base)
    await client.aclose()


# ---------------------------------------------------------------------------------------------
# Bounded waits: a stopped or hung server fails a call within seconds, a restart rides through
# ---------------------------------------------------------------------------------------------

SLACK_SECONDS = 5.0  # a busy two-core CI machine; the bounds below are far from the old 20 s


@pytest.mark.parametrize(
    ("command", "seconds"),
    [
        (("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "BLOCK", 1500, "STREAMS", "s", ">"), 1.5),
        ((b"xread", b"block", b"250", b"streams", b"s", b"$"), 0.25),
        (("XREADGROUP", "GROUP", "BLOCK", "c", "STREAMS", "s", ">"), 0.0),  # a group "BLOCK"
        (("XREAD", "COUNT", 1, "STREAMS", "BLOCK", "0"), 0.0),  # a stream "BLOCK"
        (("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">"), math.inf),
        (("GET", "BLOCK"), 0.0),
        (("XADD", "s", "*", "BLOCK", "1000"), 0.0),
    ],
)
def test_block_seconds_reads_xread_options_only(command: tuple[Any, ...], seconds: float) -> None:
    assert block_seconds(command) == seconds


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def bounded_client(server: RedisServer, retry_seconds: float = 0.5) -> Redis:
    return connect_redis(
        server.url, socket_timeout=0.5, connect_timeout=0.5, retry_seconds=retry_seconds
    )


@contextmanager
def hung(server: RedisServer) -> Iterator[None]:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


async def test_blocking_reads_wait_their_block_time_beyond_the_socket_timeout(
    own_redis: RedisServer,
) -> None:
    client = bounded_client(own_redis)
    await client.xgroup_create("s", "g", id="0", mkstream=True)
    started = time.monotonic()
    assert await client.xreadgroup("g", "c", {"s": ">"}, count=1, block=1500) == []
    assert time.monotonic() - started >= 1.4
    pipe = client.pipeline(transaction=False)
    pipe.xreadgroup("g", "c", {"s": ">"}, block=1000)
    pipe.ping()
    assert await pipe.execute() == [[], True]
    assert await client.ping()  # the connection still answers in order
    await client.aclose()


@pytest.mark.parametrize("block_ms", [None, 500])
async def test_a_hung_server_fails_a_call_within_its_timeout(
    own_redis: RedisServer, block_ms: int | None
) -> None:
    client = bounded_client(own_redis, retry_seconds=10.0)  # timeouts are not retried
    await client.xgroup_create("s", "g", id="0", mkstream=True)
    with hung(own_redis):
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await client.xreadgroup("g", "c", {"s": ">"}, block=block_ms)
        assert time.monotonic() - started < 0.5 + 0.5 + SLACK_SECONDS
    assert await client.ping()  # back after SIGCONT, on a fresh connection
    await client.aclose()


async def test_a_stopped_server_fails_a_call_after_the_retries(own_redis: RedisServer) -> None:
    client = bounded_client(own_redis, retry_seconds=1.0)
    assert await client.ping()
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await client.ping()
    took = time.monotonic() - started
    assert 0.9 <= took < 1.0 + SLACK_SECONDS, f"{took:.2f} s"  # retried, for its 1 s only
    await client.aclose()


async def test_the_retries_ride_out_a_restart(own_redis: RedisServer) -> None:
    client = bounded_client(own_redis, retry_seconds=60.0)
    assert await client.set("k", "v")
    own_redis.stop()

    async def ping() -> bool:
        return bool(await client.ping())

    pinging = asyncio.create_task(ping())  # refused, retried with backoff
    await asyncio.sleep(0.5)
    assert not pinging.done()
    await asyncio.to_thread(own_redis.start)
    assert await asyncio.wait_for(pinging, timeout=60)
    await client.aclose()
