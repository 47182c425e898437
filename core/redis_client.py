"""The service's Redis client: bounded waits, a bounded retry across a restart, and
commands packed in C.

Every wait is bounded, so a stopped or hung Redis turns into an error within seconds
(the service answers it with a 503) instead of holding requests: a connection attempt
waits at most the connect timeout, a reply the socket timeout. A refused or dropped
connection is retried with backoff for a few seconds, which rides out a Redis restart.

redis-py's asyncio connections pack every command argument in Python, while its sync
client packs with hiredis. Stream acknowledgements and event appends carry one
argument per event, and packing them in Python cost the intake about 0.9 us per
argument here against 0.2 us with hiredis, so the connections get hiredis's packer,
exactly as redis-py's sync client uses it."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import hiredis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")

BACKOFF_BASE_SECONDS = 0.025  # the first retry waits 0.05 s, doubling up to the cap
BACKOFF_CAP_SECONDS = 0.25
BLOCKING_READS = {b"XREAD": 1, b"XREADGROUP": 4}  # command -> index of its first option


def connect_redis(
    url: str,
    *,
    socket_timeout: float = 2.0,
    connect_timeout: float = 1.0,
    retry_seconds: float = 1.0,
) -> Redis:
    """A client whose every call ends within seconds, and that rides out a restart.

    A connection attempt waits at most `connect_timeout`, a reply `socket_timeout` (a
    blocking stream read, XREAD(GROUP) ... BLOCK ms, that long more; BLOCK 0 waits as
    long as it asked to). A refused or dropped connection (a restarting Redis, one
    still loading its data) is retried with backoff, 0.05 s doubling up to 0.25 s,
    until `retry_seconds` have passed since the retries began. A timeout is not
    retried: against a hung Redis every retry would wait the whole timeout again.

    Worst case of one call: a stopped Redis refuses at once, so the call fails after
    `retry_seconds` (1 s by default); a hung one after `socket_timeout`, plus
    `connect_timeout` on a fresh connection (3 s), since a timeout ends the call. A
    flapping Redis can take a call through both of its retry loops, connecting and
    then the command, each ending `retry_seconds` after it began plus the attempt
    under way: at most 2 * (retry_seconds + connect_timeout + socket_timeout), 8 s by
    default. (A slow Redis that does answer is bounded per reply, not per call.)"""
    pool = ConnectionPool.from_url(
        url,
        retry=DeadlineRetry(retry_seconds),
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=10,  # an idle connection is checked with a PING before use
    )
    pool.connection_class = service_connection(pool.connection_class)
    return Redis(connection_pool=pool)


class DeadlineRetry(Retry):
    """Retries connection errors (not timeouts) with backoff until `seconds` have
    passed since the call began. redis-py nests retries (a command's attempt may
    reconnect with retries of its own); counting retries instead of time would
    multiply the waits, a deadline does not: the outer call's deadline comes first."""

    def __init__(self, seconds: float) -> None:
        backoff = ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=BACKOFF_BASE_SECONDS)
        # retries: how many fit in `seconds`; redis-py reads it to tell a last failure
        retries = math.ceil(seconds / BACKOFF_BASE_SECONDS)
        super().__init__(backoff, retries, supported_errors=(RedisConnectionError,))
        self._seconds = seconds

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        deadline = time.monotonic() + self._seconds  # the backoff is stateless: no reset
        failures = 0
        while True:
            try:
                return await do()
            except self._supported_errors as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                left = deadline - time.monotonic()
                if left <= 0 or failures > self._retries:
                    raise
                await asyncio.sleep(min(left, self._backoff.compute(failures)))


def service_connection(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """`base` (TCP, TLS or Unix socket) with blocking reads' waits, packing with hiredis
    when hiredis can."""
    packing = hiredis_packing(base)
    if issubclass(packing, BlockingReads):
        return packing
    return type(f"Service{base.__name__}", (BlockingReads, packing), {})


class BlockingReads(AbstractConnection):
    """Mixed into a connection class: the reply to XREAD or XREADGROUP with BLOCK ms
    may come that long after the command, so it waits the socket timeout plus the
    block time (BLOCK 0 blocks until an entry comes, and so does its reply)."""

    _packed_wait = 0.0  # block time of what was packed last, not yet sent
    _reply_wait = 0.0  # block time of what was sent last, whose replies are read

    async def connect(self) -> None:
        # a connection torn down while it is being set up (Redis stopping) surfaces from
        # the event loop's transport as a RuntimeError: it is a failed connection
        try:
            await super().connect()  # type: ignore[no-untyped-call]
        except RuntimeError as exc:
            raise RedisConnectionError(f"connecting to Redis failed: {exc}") from exc

    def pack_command(self, *args: Any) -> list[bytes]:
        self._packed_wait = block_seconds(args)
        return super().pack_command(*args)

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        listed = [tuple(command) for command in commands]
        packed = super().pack_commands(listed)
        self._packed_wait = max((block_seconds(command) for command in listed), default=0.0)
        return packed

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        # taken before sending: a health-check PING or a handshake sent first packs
        # and reads commands of its own
        wait, self._packed_wait = self._packed_wait, 0.0
        await super().send_packed_command(command, check_health)
        self._reply_wait = wait

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (redis-py's signature, overridden)
        **kwargs: Any,
    ) -> Any:
        wait = self._reply_wait
        if not wait or timeout is not None or self.socket_timeout is None:
            return await super().read_response(disable_decoding, timeout, **kwargs)
        if math.isinf(wait):
            return await super().read_response(disable_decoding, math.inf, **kwargs)
        try:
            async with asyncio.timeout(self.socket_timeout + wait):
                # math.inf: no wait of redis-py's own, ours bounds it (a read cut short
                # disconnects, so a late reply never answers the next command)
                return await super().read_response(disable_decoding, math.inf, **kwargs)
        except TimeoutError:
            raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from None


def block_seconds(command: tuple[Any, ...]) -> float:
    """How long Redis may hold the reply to `command`: XREAD(GROUP)'s BLOCK, in seconds
    (infinite for BLOCK 0); 0.0 for every other command."""
    name = command[0] if command else b""
    name = (name.encode() if isinstance(name, str) else bytes(name)).upper()
    first_option = BLOCKING_READS.get(name)
    if first_option is None:
        return 0.0
    options = [_token(arg) for arg in command[first_option:]]
    end = options.index(b"STREAMS") if b"STREAMS" in options else len(options)
    if b"BLOCK" not in options[:end] or options.index(b"BLOCK") + 1 >= end:
        return 0.0
    block_ms = int(options[options.index(b"BLOCK") + 1])
    return block_ms / 1000 if block_ms > 0 else math.inf


def _token(arg: Any) -> bytes:
    if isinstance(arg, str):
        return arg.encode().upper()
    if isinstance(arg, bytes):
        return arg.upper()
    return str(arg).encode()


class HiredisPacking:
    """Mixed into a connection class: redis-py's own hiredis serializer, for asyncio."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # hiredis takes no memoryview: convert those, only then
            pass
        args = tuple(bytes(arg) if isinstance(arg, bytearray | memoryview) else arg for arg in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            raise DataError(sys.exc_info()[1]) from None


def hiredis_packing(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """`base` (TCP, TLS or Unix socket) packing with hiredis, when hiredis can."""
    if not hasattr(hiredis, "pack_command") or issubclass(base, HiredisPacking):
        return base
    return type(f"Hiredis{base.__name__}", (HiredisPacking, base), {})
