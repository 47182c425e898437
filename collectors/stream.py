"""Redis Streams intake: a consumer group with at-least-once delivery.

Entries hold one event as JSON in a field `event`, or a JSON array in `events`, and
name their model in a field `model` unless the stream is mapped to one. The consumer
first re-reads its own pending entries (what it had read but not acknowledged when it
stopped), then new ones. It acknowledges an entry only after its events are stored, so
a crash can redeliver but never lose; the event id makes redelivery harmless. A
janitor claims entries left idle by dead consumers. An entry that cannot succeed goes
to a dead-letter stream with its reason, written before the acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collectors.intake import Intake, UnknownModelError
from service.redis_types import text

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 5.0
STATUS_INTERVAL_SECONDS = 5.0


class StreamCounter(Protocol):
    def count_stream(self, stream: str, outcome: str, amount: int) -> None:
        """outcome: read, acked, redelivered, dead_lettered, deleted."""

    def set_stream_status(self, stream: str, lag: int | None, pending: int) -> None: ...


@dataclass(frozen=True)
class StreamSettings:
    streams: dict[str, str | None]  # stream key -> model, or None: entries name it
    consumer: str
    group: str = "driftmon"
    batch_size: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    start_id: str = "0"
    dead_letter_prefix: str = "driftmon:deadletter:"

    def dead_letter(self, stream: str) -> str:
        return f"{self.dead_letter_prefix}{stream}"


class PoisonEntryError(ValueError):
    """The entry can never succeed: dead-letter it now."""


class RetryableEntryError(RuntimeError):
    """It may succeed later (for example, its model is not registered yet)."""


@dataclass
class Entry:
    stream: str
    entry_id: str
    fields: dict[str, bytes] | None  # None: deleted from the stream while pending
    deliveries: int = 1


def _decode_fields(raw: dict[bytes, bytes] | None) -> dict[str, bytes] | None:
    """Field names as text; values stay bytes, which orjson reads without a copy."""
    if raw is None:
        return None
    return {text(key): value for key, value in raw.items()}


def records_of(entry: Entry, streams: dict[str, str | None]) -> tuple[str, str, list[object]]:
    """(model, kind, records) of an entry, kind "events" or "kpis"; or PoisonEntryError
    saying why not."""
    fields = entry.fields or {}
    named = fields.get("model")
    model = streams.get(entry.stream) or (named.decode(errors="replace") if named else None)
    if not model:
        raise PoisonEntryError("no model: map the stream to one or add a `model` field")
    found = [name for name in ("event", "events", "kpis") if name in fields]
    if not found:
        raise PoisonEntryError("no `event`, `events` or `kpis` field")
    name = found[0]
    try:
        parsed = orjson.loads(fields[name])
    except orjson.JSONDecodeError as exc:
        raise PoisonEntryError(f"invalid JSON in `{name}`: {exc}") from exc
    if name != "event" and not isinstance(parsed, list):
        raise PoisonEntryError(f"`{name}` must hold a JSON array")
    return model, "kpis" if name == "kpis" else "events", parsed if name != "event" else [parsed]


class StreamConsumer:
    def __init__(
        self, redis: Redis, intake: Intake, settings: StreamSettings, counter: StreamCounter
    ) -> None:
        self._redis = redis
        self._intake = intake
        self._settings = settings
        self._counter = counter
        self.handled = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._ensure_groups()
                await self._drain_own_pending()
                await self._consume(stop)
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

    async def _ensure_groups(self) -> None:
        for stream in self._settings.streams:
            try:
                await self._redis.xgroup_create(
                    stream, self._settings.group, id=self._settings.start_id, mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _consume(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_janitor = next_status = loop.time()
        while not stop.is_set():
            if loop.time() >= next_janitor:
                await self.janitor()
                next_janitor = loop.time() + self._settings.claim_idle_ms / 2000
            if loop.time() >= next_status:
                await self.report_status()
                next_status = loop.time() + STATUS_INTERVAL_SECONDS
            reply = await self._redis.xreadgroup(
                self._settings.group,
                self._settings.consumer,
                dict.fromkeys(self._settings.streams, ">"),
                count=self._settings.batch_size,
                block=self._settings.block_ms,
            )
            await self._handle_all(_entries_of(reply), redelivered=False)

    async def _drain_own_pending(self) -> None:
        """What this consumer had read but not acknowledged before it stopped."""
        for stream in self._settings.streams:
            start = "0"
            while True:
                reply = await self._redis.xreadgroup(
                    self._settings.group,
                    self._settings.consumer,
                    {stream: start},
                    count=self._settings.batch_size,
                )
                entries = _entries_of(reply)
                if not entries:
                    break
                await self._with_delivery_counts(entries)
                await self._handle_all(entries, redelivered=True)
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
                entries = [_entry(stream, item) for item in reply[1] if item is not None]
                # Redis 7 lists the ids it found deleted (trimmed) while pending; 6.2 does not
                deleted = list(reply[2]) if len(reply) > 2 else []
                if deleted:
                    self._counter.count_stream(stream, "deleted", len(deleted))
                if entries:
                    await self._with_delivery_counts(entries)
                    await self._handle_all(entries, redelivered=True)
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

    async def _handle_all(self, entries: list[Entry], redelivered: bool) -> None:
        """A read batch as one unit: entries of one model are stored in one call and
        acknowledged in one XACK; a failing entry is retried or dead-lettered alone."""
        for stream, count in Counter(entry.stream for entry in entries).items():
            self._counter.count_stream(stream, "redelivered" if redelivered else "read", count)
        done: list[Entry] = []
        groups: dict[tuple[str, str], list[tuple[Entry, list[object]]]] = {}
        for entry in entries:
            if entry.fields is None:
                self._counter.count_stream(entry.stream, "deleted", 1)
                done.append(entry)
                continue
            try:
                model, kind, records = records_of(entry, self._settings.streams)
            except PoisonEntryError as exc:
                done.append(await self._dead_letter(entry, str(exc)))
                continue
            groups.setdefault((model, kind), []).append((entry, records))
        for (model, kind), members in groups.items():
            done += await self._submit_group(model, kind, members)
        await self._ack(done)

    async def _submit_group(
        self, model: str, kind: str, members: list[tuple[Entry, list[object]]]
    ) -> list[Entry]:
        """Store one model's records of a batch; returns the entries to acknowledge."""
        records = [record for _, own in members for record in own]
        try:
            if kind == "kpis":
                result = await self._intake.submit_kpis(model, records, source="stream")
            else:
                result = await self._intake.submit(model, records, source="stream")
        except (RedisConnectionError, RedisTimeoutError):
            raise  # the entries stay pending; the consumer reconnects and redelivers
        except Exception as exc:  # unknown model, a bug, a surprise: bounded retries
            if not isinstance(exc, UnknownModelError):
                log.exception("stream entries of model %s failed", model)
            reason = (
                str(exc) if isinstance(exc, UnknownModelError) else f"{type(exc).__name__}: {exc}"
            )
            return [
                await self._dead_letter(e, f"gave up after {e.deliveries} deliveries: {reason}")
                for e, _ in members
                if self._out_of_retries(e, reason)
            ]
        if not result.errors:
            return [entry for entry, _ in members]
        return [
            await self._settle(entry, errors)
            for entry, errors in _errors_by_entry(members, result.errors)
        ]

    async def _settle(self, entry: Entry, errors: list[dict[str, Any]]) -> Entry:
        if errors:
            noun = "record" if len(errors) == 1 else "records"
            await self._dead_letter(entry, f"{len(errors)} {noun} rejected", errors)
        return entry

    def _out_of_retries(self, entry: Entry, reason: str) -> bool:
        if entry.deliveries >= self._settings.max_deliveries:
            return True
        log.info("entry %s of %s will be retried: %s", entry.entry_id, entry.stream, reason)
        return False

    async def _dead_letter(
        self, entry: Entry, reason: str, errors: list[dict[str, Any]] | None = None
    ) -> Entry:
        """Written before the entry is acknowledged; returns the entry to acknowledge."""
        letter: dict[str, str] = {
            "stream": entry.stream,
            "id": entry.entry_id,
            "reason": reason,
            "deliveries": str(entry.deliveries),
        }
        if errors:
            letter["errors"] = orjson.dumps(errors).decode()
        for name, value in (entry.fields or {}).items():
            letter[f"field:{name}"] = value.decode(errors="replace")
        await self._redis.xadd(self._settings.dead_letter(entry.stream), letter)  # type: ignore[arg-type]
        self._counter.count_stream(entry.stream, "dead_lettered", 1)
        return entry

    async def _ack(self, entries: list[Entry]) -> None:
        """Acknowledge after storing (and after dead-lettering): at-least-once."""
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            await self._redis.xack(stream, self._settings.group, *ids)
            self._counter.count_stream(stream, "acked", len(ids))
        self.handled += len(entries)


def _errors_by_entry(
    members: list[tuple[Entry, list[object]]], errors: list[dict[str, Any]]
) -> list[tuple[Entry, list[dict[str, Any]]]]:
    """Each entry with the errors of its own records, indexes made local to it."""
    out: list[tuple[Entry, list[dict[str, Any]]]] = []
    start = 0
    for entry, records in members:
        end = start + len(records)
        own = [{**e, "index": e["index"] - start} for e in errors if start <= e["index"] < end]
        out.append((entry, own))
        start = end
    return out


def _entry(stream: str, item: Any) -> Entry:
    entry_id, raw = item
    return Entry(stream, text(entry_id), _decode_fields(raw))


def _entries_of(reply: Any) -> list[Entry]:
    """XREADGROUP's reply ([stream, entries] pairs, or a dict in RESP3) as entries."""
    pairs = reply.items() if isinstance(reply, dict) else (reply or [])
    entries: list[Entry] = []
    for stream, items in pairs:
        entries += [_entry(text(stream), item) for item in items]
    return entries


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
