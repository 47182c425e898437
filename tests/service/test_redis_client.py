"""The service's Redis client packs commands with hiredis, byte for byte as redis-py's
own Python packer does, and bounds every wait: a stopped or hung server fails a call
within seconds, a blocking stream read waits its block time, a restart rides through.
The service answers the errors that mean "Redis is unavailable" with a 503."""

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
from fastapi import Request
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import (
    BusyLoadingError,
    DataError,
    OutOfMemoryError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_client import HiredisPacking, block_seconds, connect_redis, hiredis_packing
from service.errors import answer_redis_error, unavailable_reason
from tests.data import credit_reference
from tests.fixtures_app import harness_settings, start_harness, upload_credit_reference
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


@pytest.mark.parametrize("retry_seconds", [0.3, 3.0])
async def test_a_stopped_server_fails_a_call_after_its_retry_seconds(
    own_redis: RedisServer, retry_seconds: float
) -> None:
    client = bounded_client(own_redis, retry_seconds=retry_seconds)
    assert await client.ping()
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await client.ping()
    took = time.monotonic() - started
    # refusals come at once: the retries, and they alone, take the time (before: 3.5 s)
    assert retry_seconds <= took < retry_seconds + 2.0, f"{took:.2f} s"
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


# ---------------------------------------------------------------------------------------------
# What the service answers for a Redis error (service/errors.py): 503 for an outage only
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (BusyLoadingError("Redis is loading the dataset in memory"), True),
        (RedisTimeoutError("Timeout reading from 127.0.0.1:6399"), True),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), True),
        (
            ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's failing"),
            True,
        ),
        (
            ResponseError(
                "Command # 2 (EVALSHA x) of pipeline caused error: ('BUSY Redis is busy',)"
            ),
            True,
        ),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
        (
            ResponseError("ERR user_script:3: Script attempted to access a nonexistent global"),
            False,
        ),
    ],
)
def test_which_redis_errors_mean_unavailable(error: RedisError, unavailable: bool) -> None:
    assert (unavailable_reason(error) is not None) == unavailable


async def test_redis_out_of_memory_is_503_and_a_bug_stays_500(key_prefix: str) -> None:
    with RedisServer() as server:
        async for harness in start_harness(harness_settings(server.url, key_prefix)):
            await upload_credit_reference(harness.client)
            await harness.services.redis.config_set("maxmemory", "1")  # writes refused: OOM
            response = await harness.client.put(
                "/v1/models/credit/reference",
                params={"prediction": "prediction", "scores": "score"},
                content=credit_reference().to_csv(index=False).encode(),
                headers={"content-type": "text/csv"},
            )
            await harness.services.redis.config_set("maxmemory", "0")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert "out of memory" in response.json()["detail"]["error"]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(ResponseError, match="WRONGTYPE"):  # not an outage: the server's 500
        await answer_redis_error(2, request, ResponseError("WRONGTYPE wrong kind of value"))
