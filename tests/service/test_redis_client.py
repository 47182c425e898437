"""The service's Redis client packs commands with hiredis, byte for byte as redis-py's
own Python packer does."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from core.redis_client import HiredisPacking, connect_redis, hiredis_packing

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
