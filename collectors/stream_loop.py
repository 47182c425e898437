"""The consume loop: new entries read, validated and stored as a pipeline.

The common batch takes a fast path, validated without an object per entry; anything
else goes to the entry-by-entry path of stream_handling. Between batches, when nothing
is read ahead, the janitor and the status report run on their own intervals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collectors.intake import Intake
from collectors.stream_config import StreamCounter, StreamSettings
from collectors.stream_entries import entry_of, sole_field, stream_items
from collectors.stream_handling import EntryHandler
from collectors.stream_pending import PendingEntries
from collectors.validation import ValidBatch

log = logging.getLogger(__name__)
STATUS_INTERVAL_SECONDS = 5.0

Work = Coroutine[Any, Any, None]


class ConsumeLoop:
    def __init__(
        self,
        reader: Redis,
        intake: Intake,
        settings: StreamSettings,
        counter: StreamCounter,
        handler: EntryHandler,
        pending: PendingEntries,
    ) -> None:
        self._reader = reader  # replies as Redis sent them (stream_entries.raw_reads)
        self._intake = intake
        self._settings = settings
        self._counter = counter
        self._handler = handler
        self._pending = pending

    async def run(self, stop: asyncio.Event) -> None:
        """Overlaps this process's work with Redis's: a batch is validated here while
        Redis stores the one before it and reads the one after it. Redis hands a big
        reply out in 64 KB slices between other clients' commands, so the next read
        goes out before a validated batch is sent to be stored; and it does not block
        while a batch is in hand, so a quiet stream never holds one back. At most
        `batches_in_flight` are being stored at once, and one is read ahead, so a slow
        Redis slows reading down instead of growing memory."""
        chores = Chores(self._pending, janitor_seconds=self._settings.claim_idle_ms / 2000)
        in_flight: set[asyncio.Task[None]] = set()  # kept by the set: tasks are weakly held
        held: Work | None = None  # validated, not yet sent to Redis
        reading: asyncio.Task[Any] | None = None
        try:
            while reading is not None or not stop.is_set():
                if reading is None:  # nothing in hand: housekeeping, then wait for entries
                    await chores.run_due(in_flight)
                    reading = self._read(self._settings.block_ms)
                streams = stream_items(await reading)
                await _settled(in_flight, self._settings.batches_in_flight - 1)
                if held is not None:
                    _start(in_flight, held)
                    held = None
                    await asyncio.sleep(0)  # the task starts sending its batch
                read_ahead = bool(streams) and not (chores.due() or stop.is_set())
                reading = self._read(None) if read_ahead else None
                held = await self._prepare(streams)
                if reading is None:  # nothing read ahead: store what is held now
                    _start(in_flight, held)
                    held = None
        except BaseException:  # lost Redis, cancelled: what was not acked is redelivered
            await _abandon(in_flight, held, reading)
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

    async def _prepare(self, streams: list[tuple[str, list[Any]]]) -> Work | None:
        """Validates new entries now; returns what is left to do: storing them and
        acknowledging them (or, for anything unusual, all of EntryHandler.handle)."""
        steps = [await self._prepare_stream(stream, items) for stream, items in streams]
        return _in_order(steps) if steps else None

    async def _prepare_stream(self, stream: str, items: list[Any]) -> Work:
        """The common batch, a stream mapped to a model whose entries each hold just
        `event` (or just `events`) with plainly valid records, is validated without
        an object per entry; anything else goes through EntryHandler.handle."""
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
        return self._handler.handle([entry_of(stream, item) for item in items], redelivered=False)

    async def _store_valid(self, stream: str, items: list[Any], valid: ValidBatch) -> None:
        try:
            await self._intake.store(valid, "stream")
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except Exception:  # a surprise: the entry path retries or dead-letters each entry
            log.exception("storing a batch of %s failed; retrying entry by entry", stream)
            await self._handler.handle([entry_of(stream, item) for item in items], redelivered=True)
            return
        await self._handler.ack_ids(stream, [entry_id for entry_id, _ in items])


class Chores:
    """The janitor and the status report, each due on its own interval."""

    def __init__(self, pending: PendingEntries, janitor_seconds: float) -> None:
        self._pending = pending
        self._janitor_seconds = janitor_seconds
        self._clock = asyncio.get_running_loop()
        self._next_janitor = self._next_status = self._clock.time()

    def due(self) -> bool:
        return self._clock.time() >= min(self._next_janitor, self._next_status)

    async def run_due(self, in_flight: set[asyncio.Task[None]]) -> None:
        if self._clock.time() >= self._next_janitor:
            await _settled(in_flight, 0)  # claims never race a batch in hand
            await self._pending.janitor()
            self._next_janitor = self._clock.time() + self._janitor_seconds
        if self._clock.time() >= self._next_status:
            await self._pending.report_status()
            self._next_status = self._clock.time() + STATUS_INTERVAL_SECONDS


def _start(tasks: set[asyncio.Task[None]], work: Work | None) -> None:
    """Runs `work` as one of `tasks`."""
    if work is not None:
        tasks.add(asyncio.create_task(work))


async def _in_order(steps: list[Work]) -> None:
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


async def _abandon(
    in_flight: set[asyncio.Task[None]], held: Work | None, reading: asyncio.Task[Any] | None
) -> None:
    """Drops the work in hand; its entries were not acknowledged, so they stay pending."""
    if held is not None:
        held.close()
    unfinished = [*in_flight, *([reading] if reading else [])]
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
