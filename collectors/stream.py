"""Redis Streams intake: a consumer group with at-least-once delivery.

Entries hold one event as JSON in a field `event`, or a JSON array in `events`, and
name their model in a field `model` unless the stream is mapped to one. The consumer
first re-reads its own pending entries (what it had read but not acknowledged when it
stopped), then new ones. It acknowledges an entry only after its events are stored, so
a crash can redeliver but never lose; the event id makes redelivery harmless. A
janitor claims entries left idle by dead consumers. An entry that cannot succeed goes
to a dead-letter stream with its reason, written before the acknowledgement.

The parts: stream_loop (reading new entries, the fast path), stream_pending (own
pending entries, the janitor, the status report), stream_handling (entry by entry:
storing, dead letters, acknowledgements), stream_entries (parsing the replies)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collectors.intake import Intake
from collectors.stream_config import StreamCounter, StreamSettings
from collectors.stream_entries import raw_reads
from collectors.stream_handling import EntryHandler
from collectors.stream_loop import ConsumeLoop
from collectors.stream_pending import PendingEntries
from core.keys import Keys

__all__ = ["StreamConsumer", "StreamCounter", "StreamSettings"]

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 5.0


class StreamConsumer:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        intake: Intake,
        settings: StreamSettings,
        counter: StreamCounter,
    ) -> None:
        self._redis = redis
        self._settings = settings
        reader = raw_reads(redis)
        self._handler = EntryHandler(redis, keys, intake, settings, counter)
        self._pending = PendingEntries(redis, reader, settings, counter, self._handler)
        self._loop = ConsumeLoop(reader, intake, settings, counter, self._handler, self._pending)

    @property
    def handled(self) -> int:
        """Entries acknowledged so far, stored or dead-lettered."""
        return self._handler.handled

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._ensure_groups()
                await self._pending.drain_own()
                await self._loop.run(stop)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("stream consumer lost Redis (%s); retrying in %.1fs", exc, backoff)
                await _sleep_or_stop(stop, backoff)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
                continue
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group vanished (Redis restarted empty?); recreating")
            backoff = 0.1

    async def janitor(self) -> None:
        """Claim entries idle longer than claim_idle_ms from any consumer, this one
        included (its own failures are retried this way)."""
        await self._pending.janitor()

    async def report_status(self) -> None:
        await self._pending.report_status()

    async def _ensure_groups(self) -> None:
        for stream in self._settings.streams:
            try:
                await self._redis.xgroup_create(
                    stream, self._settings.group, id=self._settings.start_id, mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
