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
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collectors.intake import Intake
from collectors.stream_entries import (
    FIELD_NAMES,
    Entry,
    PoisonEntryError,
    entries_of,
    entry_of,
    errors_by_entry,
    raw_reads,
    records_of,
    route,
    sole_field,
    stream_items,
)
from collectors.validation import ValidBatch
from core.errors import UnknownModelError
from core.keys import Keys
from core.redis_types import text

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
    batches_in_flight: int = 1
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    start_id: str = "0"


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
        self._keys = keys
        self._intake = intake
        self._settings = settings
        self._counter = counter
        self._reader = raw_reads(redis)
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
        """Overlaps this process's work with Redis's: a batch is validated here while
        Redis stores the one before it and reads the one after it. Redis hands a big
        reply out in 64 KB slices between other clients' commands, so the next read
        goes out before a validated batch is sent to be stored; and it does not block
        while a batch is in hand, so a quiet stream never holds one back. At most
        `batches_in_flight` are being stored at once, and one is read ahead, so a slow
        Redis slows reading down instead of growing memory."""
        loop = asyncio.get_running_loop()
        next_janitor = next_status = loop.time()
        in_flight: set[asyncio.Task[None]] = set()  # kept by the set: tasks are weakly held
        held: Coroutine[Any, Any, None] | None = None  # validated, not yet sent to Redis
        reading: asyncio.Task[Any] | None = None
        try:
            while reading is not None or not stop.is_set():
                if reading is None:  # nothing in hand: housekeeping, then wait for entries
                    if loop.time() >= next_janitor:
                        await _settled(in_flight, 0)  # claims never race a batch in hand
                        await self.janitor()
                        next_janitor = loop.time() + self._settings.claim_idle_ms / 2000
                    if loop.time() >= next_status:
                        await self.report_status()
                        next_status = loop.time() + STATUS_INTERVAL_SECONDS
                    reading = self._read(self._settings.block_ms)
                streams = stream_items(await reading)
                await _settled(in_flight, self._settings.batches_in_flight - 1)
                if held is not None:
                    _start(in_flight, held)
                    held = None
                    await asyncio.sleep(0)  # the task starts sending its batch
                due = loop.time() >= min(next_janitor, next_status)
                reading = self._read(None) if streams and not (due or stop.is_set()) else None
                held = await self._prepare(streams)
                if reading is None:  # nothing read ahead: store what is held now
                    _start(in_flight, held)
                    held = None
        except BaseException:  # lost Redis, cancelled: what was not acked is redelivered
            if held is not None:
                held.close()
            unfinished = [*in_flight, *([reading] if reading else [])]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            raise
        await _settled(in_flight, 0)

    def _read(self, block_ms: int | None) -> asyncio.Task[Any]:
        return asyncio.create_task(self._new_entries(block_ms))

    async def _new_entries(self, block_ms: int | None) -> Any:
        """New entries of every stream, as Redis sent them."""
        return await self._reader.xreadgroup(
            self._settings.group,
            self._settings.consumer,
            dict.fromkeys(self._settings.streams, ">"),
            count=self._settings.batch_size,
            block=block_ms,
        )

    async def _prepare(
        self, streams: list[tuple[str, list[Any]]]
    ) -> Coroutine[Any, Any, None] | None:
        """Validates new entries now; returns what is left to do: storing them and
        acknowledging them (or, for anything unusual, all of `_handle_all`)."""
        steps = [await self._prepare_stream(stream, items) for stream, items in streams]
        return _in_order(steps) if steps else None

    async def _prepare_stream(self, stream: str, items: list[Any]) -> Coroutine[Any, Any, None]:
        """The common batch, a stream mapped to a model whose entries each hold just
        `event` (or just `events`) with plainly valid records, is validated without
        an object per entry; anything else goes through `_handle_all`."""
        model = self._settings.streams.get(stream)
        name = sole_field(items)
        if model and name in (b"event", b"events"):
            documents = [fields[1] for _, fields in items]
            try:
                schema = await self._intake.schema(model)
                many = name == b"events"
                valid = await self._intake.encode_documents(model, schema, documents, many)
            except (RedisConnectionError, RedisTimeoutError):
                raise
            except Exception:  # the entry path meets it again and retries or dead-letters
                valid = None
            if valid is not None:
                self._counter.count_stream(stream, "read", len(items))
                return self._store_valid(stream, items, valid)
        return self._handle_all([entry_of(stream, item) for item in items], redelivered=False)

    async def _store_valid(self, stream: str, items: list[Any], valid: ValidBatch) -> None:
        try:
            await self._intake.store(valid, "stream")
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except Exception:  # a surprise: the entry path retries or dead-letters each entry
            log.exception("storing a batch of %s failed; retrying entry by entry", stream)
            await self._handle_all([entry_of(stream, item) for item in items], redelivered=True)
            return
        await self._ack_ids(stream, [entry_id for entry_id, _ in items])

    async def _drain_own_pending(self) -> None:
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
                entries = [entry_of(stream, item) for item in reply[1] if item is not None]
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
        groups: dict[tuple[str, str], list[Entry]] = {}
        for entry in entries:
            if entry.fields is None:
                self._counter.count_stream(entry.stream, "deleted", 1)
                done.append(entry)
                continue
            try:
                groups.setdefault(route(entry, self._settings.streams), []).append(entry)
            except PoisonEntryError as exc:
                done.append(await self._dead_letter(entry, str(exc)))
        for (model, name), members in groups.items():
            done += await self._submit_group(model, name, members)
        await self._ack(done)

    async def _submit_group(self, model: str, name: str, members: list[Entry]) -> list[Entry]:
        """Store one model's records of a batch, all of them in one `name` field; returns
        the entries to acknowledge. Plainly valid records take the typed fast path;
        otherwise each entry is parsed on its own, so that its errors are its own."""
        if name != "kpis":
            raw_name = FIELD_NAMES[name]
            documents = [(entry.fields or {})[raw_name] for entry in members]
            try:
                fast = await self._intake.submit_documents(
                    model, documents, many=name == "events", source="stream"
                )
            except Exception as exc:
                return await self._failed(model, members, exc)
            if fast is not None:
                return members
        done: list[Entry] = []
        parsed: list[tuple[Entry, list[object]]] = []
        for entry in members:
            try:
                parsed.append((entry, records_of(entry, name)))
            except PoisonEntryError as exc:
                done.append(await self._dead_letter(entry, str(exc)))
        if parsed:
            done += await self._submit_records(model, name, parsed)
        return done

    async def _submit_records(
        self, model: str, name: str, members: list[tuple[Entry, list[object]]]
    ) -> list[Entry]:
        records = [record for _, own in members for record in own]
        try:
            if name == "kpis":
                result = await self._intake.submit_kpis(model, records, source="stream")
            else:
                result = await self._intake.submit(model, records, source="stream")
        except Exception as exc:
            return await self._failed(model, [entry for entry, _ in members], exc)
        if not result.errors:
            return [entry for entry, _ in members]
        return [
            await self._settle(entry, errors)
            for entry, errors in errors_by_entry(members, result.errors)
        ]

    async def _failed(self, model: str, members: list[Entry], exc: Exception) -> list[Entry]:
        """Entries whose storing raised: the ones out of retries, dead-lettered, to
        acknowledge. Lost Redis propagates: the entries stay pending, the consumer
        reconnects and they are delivered again."""
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            raise exc
        if isinstance(exc, UnknownModelError):
            reason = str(exc)
        else:  # a bug, a surprise: bounded retries
            log.error("stream entries of model %s failed", model, exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
        return [
            await self._dead_letter(e, f"gave up after {e.deliveries} deliveries: {reason}")
            for e in members
            if self._out_of_retries(e, reason)
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
            letter[f"field:{text(name)}"] = value.decode(errors="replace")
        await self._redis.xadd(self._keys.dead_letters(entry.stream), letter)  # type: ignore[arg-type]
        self._counter.count_stream(entry.stream, "dead_lettered", 1)
        return entry

    async def _ack(self, entries: list[Entry]) -> None:
        """Acknowledge after storing (and after dead-lettering): at-least-once."""
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            await self._ack_ids(stream, ids)

    async def _ack_ids(self, stream: str, ids: list[bytes] | list[str]) -> None:
        await self._redis.xack(stream, self._settings.group, *ids)
        self._counter.count_stream(stream, "acked", len(ids))
        self.handled += len(ids)


def _start(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None] | None) -> None:
    """Runs `work` as one of `tasks`."""
    if work is not None:
        tasks.add(asyncio.create_task(work))


async def _in_order(steps: list[Coroutine[Any, Any, None]]) -> None:
    for done, step in enumerate(steps, start=1):
        try:
            await step
        except BaseException:
            for left in steps[done:]:  # their entries stay pending, to be delivered again
                left.close()
            raise


async def _settled(tasks: set[asyncio.Task[None]], at_most: int) -> None:
    """Waits until at most `at_most` tasks are running; a failed one raises here (its
    entries stay pending, to be delivered again), after the others are settled."""
    while len(tasks) > at_most or any(task.done() for task in tasks):
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        tasks -= done
        failed = [task for task in done if task.exception() is not None]
        if failed:
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks.clear()
            raise failed[0].exception()  # type: ignore[misc]


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
