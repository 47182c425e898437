"""Entries read but not acknowledged: this consumer's own from before it (re)started, and
those of any consumer left idle longer than claim_idle_ms (a dead replica's, or this
one's own failures, retried this way). Also the group's lag and pending count."""

from __future__ import annotations

from redis.asyncio import Redis

from collectors.stream_config import StreamCounter, StreamSettings
from collectors.stream_entries import Entry, entries_of, entry_of
from collectors.stream_handling import EntryHandler
from core.redis_types import text


class PendingEntries:
    def __init__(
        self,
        redis: Redis,
        reader: Redis,
        settings: StreamSettings,
        counter: StreamCounter,
        handler: EntryHandler,
    ) -> None:
        self._redis = redis
        self._reader = reader  # replies as Redis sent them (stream_entries.raw_reads)
        self._settings = settings
        self._counter = counter
        self._handler = handler

    async def drain_own(self) -> None:
        """What this consumer had read but not acknowledged before it stopped."""
        for stream in self._settings.streams:
            start = "0"
            while True:
                reply = await self._reader.xreadgroup(
                    self._settings.group,
                    self._settings.consumer,
                    {stream: start},
                    count=self._settings.batch_size,
                )
                entries = entries_of(reply)
                if not entries:
                    break
                await self._with_delivery_counts(entries)
                await self._handler.handle(entries, redelivered=True)
                start = entries[-1].entry_id

    async def janitor(self) -> None:
        """Claim entries idle longer than claim_idle_ms from any consumer, this one
        included (its own failures are retried this way)."""
        for stream in self._settings.streams:
            cursor = "0-0"
            while True:
                reply = await self._redis.xautoclaim(
                    stream,
                    self._settings.group,
                    self._settings.consumer,
                    min_idle_time=self._settings.claim_idle_ms,
                    start_id=cursor,
                    count=self._settings.batch_size,
                )
                cursor = text(reply[0])
                entries = [entry_of(stream, item) for item in reply[1] if item is not None]
                # Redis 7 lists the ids it found deleted (trimmed) while pending; 6.2 does not
                deleted = list(reply[2]) if len(reply) > 2 else []
                if deleted:
                    self._counter.count_stream(stream, "deleted", len(deleted))
                if entries:
                    await self._with_delivery_counts(entries)
                    await self._handler.handle(entries, redelivered=True)
                if cursor == "0-0":
                    break

    async def report_status(self) -> None:
        for stream in self._settings.streams:
            groups = await self._redis.xinfo_groups(stream)
            for group in groups:
                if text(group.get("name")) == self._settings.group:
                    lag = group.get("lag")  # Redis 7+; None when Redis cannot tell
                    self._counter.set_stream_status(
                        stream, None if lag is None else int(lag), int(group.get("pending", 0))
                    )

    async def _with_delivery_counts(self, entries: list[Entry]) -> None:
        by_stream: dict[str, list[Entry]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry)
        for stream, members in by_stream.items():
            pending = await self._redis.xpending_range(
                stream,
                self._settings.group,
                min=members[0].entry_id,
                max=members[-1].entry_id,
                count=len(members) + 100,
            )
            counts = {text(item["message_id"]): int(item["times_delivered"]) for item in pending}
            for entry in members:
                entry.deliveries = counts.get(entry.entry_id, entry.deliveries)
