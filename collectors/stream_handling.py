"""Entries handled one by one: routed to their model, their records stored, the ones that
can never succeed (or are out of retries) dead-lettered, then acknowledged.

The path of redelivered entries and of any batch the consume loop's fast path does not
take. Acknowledging only after storing (and after dead-lettering) makes delivery
at-least-once."""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collectors.intake import Intake
from collectors.stream_config import StreamCounter, StreamSettings
from collectors.stream_entries import (
    FIELD_NAMES,
    Entry,
    PoisonEntryError,
    errors_by_entry,
    records_of,
    route,
)
from core.errors import UnknownModelError
from core.keys import Keys
from core.redis_types import text

log = logging.getLogger(__name__)


class EntryHandler:
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
        self.handled = 0  # entries acknowledged, stored or dead-lettered

    async def handle(self, entries: list[Entry], redelivered: bool) -> None:
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
                done.append(await self._dead_letter(entry, str(exc), model=self._named(entry)))
        for (model, name), members in groups.items():
            done += await self._submit_group(model, name, members)
        await self._ack(done)

    async def ack_ids(self, stream: str, ids: list[bytes] | list[str]) -> None:
        await self._redis.xack(stream, self._settings.group, *ids)
        self._counter.count_stream(stream, "acked", len(ids))
        self.handled += len(ids)

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
                done.append(await self._dead_letter(entry, str(exc), model=model))
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
            await self._dead_letter_rejected(model, entry, errors)
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
            reason = type(exc).__name__
            where = "".join(traceback.format_tb(exc.__traceback__))
            # not the exception's text, nor exc_info: the text may quote a record's values
            log.error("stream entries of model %s failed: %s\n%s", model, reason, where)
        return [
            await self._dead_letter(
                e, f"gave up after {e.deliveries} deliveries: {reason}", model=model
            )
            for e in members
            if self._out_of_retries(e, reason)
        ]

    async def _dead_letter_rejected(
        self, model: str, entry: Entry, errors: list[dict[str, Any]]
    ) -> Entry:
        """The entry, dead-lettered first if any of its records was rejected."""
        if errors:
            noun = "record" if len(errors) == 1 else "records"
            await self._dead_letter(entry, f"{len(errors)} {noun} rejected", errors, model)
        return entry

    def _out_of_retries(self, entry: Entry, reason: str) -> bool:
        if entry.deliveries >= self._settings.max_deliveries:
            return True
        log.info("entry %s of %s will be retried: %s", entry.entry_id, entry.stream, reason)
        return False

    async def _dead_letter(
        self,
        entry: Entry,
        reason: str,
        errors: list[dict[str, Any]] | None = None,
        model: str | None = None,
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
        fields = entry.fields or {}
        if await self._has_pii(model):
            # a PII model's values are never stored raw, here neither: the letter names
            # the fields it withholds; the entry stays in its stream under its id
            letter["withheld"] = ",".join(text(name) for name in fields if name != b"model")
            fields = {name: value for name, value in fields.items() if name == b"model"}
        for name, value in fields.items():
            letter[f"field:{text(name)}"] = value.decode(errors="replace")
        await self._redis.xadd(self._keys.dead_letters(entry.stream), letter)  # type: ignore[arg-type]
        self._counter.count_stream(entry.stream, "dead_lettered", 1)
        return entry

    def _named(self, entry: Entry) -> str | None:
        """The model an entry that could not be routed seems to be for, if any."""
        named = (entry.fields or {}).get(b"model")
        return self._settings.streams.get(entry.stream) or (text(named) if named else None)

    async def _has_pii(self, model: str | None) -> bool:
        if not model:
            return False
        try:
            return bool((await self._intake.schema(model)).pii)
        except UnknownModelError:
            return False

    async def _ack(self, entries: list[Entry]) -> None:
        """Acknowledge after storing (and after dead-lettering): at-least-once."""
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            await self.ack_ids(stream, ids)
