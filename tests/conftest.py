"""Shared fixtures, grouped in sections. Add new ones to the section they belong to."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from tests.redis_server import RedisServer

# the running app (harness, start_harness) lives beside the Redis fixtures
pytest_plugins = ["tests.fixtures_app"]

# ---------------------------------------------------------------------------------------------
# Redis: one throwaway redis-server for the whole session, emptied before each test that
# asks for `redis_url`. Never the system Redis on 6379. Tests that stop or restart a server
# should start their own RedisServer instead of using this one.
# ---------------------------------------------------------------------------------------------

SYSTEM_REDIS_PORT = 6379


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's test server, flushed so that each test starts from empty."""
    assert redis_server.port != SYSTEM_REDIS_PORT, "refusing to flush the system Redis"
    redis_server.start()  # no-op unless an earlier test stopped it
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


# ---------------------------------------------------------------------------------------------
# Key layout
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of this test alone."""
    return f"dmtest{uuid4().hex[:8]}:"
