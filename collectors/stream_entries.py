"""Stream entries as the consumer meets them: read raw from Redis, routed to a model,
their records parsed. Functions over replies; the consumer does the I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from core.redis_types import text

RECORD_FIELDS = ("event", "events", "kpis")  # the first one present holds the records
FIELD_NAMES = {name: name.encode() for name in RECORD_FIELDS}


class PoisonEntryError(ValueError):
    """The entry can never succeed: dead-letter it now."""


@dataclass
class Entry:
    stream: str
    entry_id: str
    # as Redis sent them, names too (decoding them costs more than the lookups);
    # None: deleted from the stream while pending
    fields: dict[bytes, bytes] | None
    deliveries: int = 1


def route(entry: Entry, streams: dict[str, str | None]) -> tuple[str, str]:
    """(model, name of the field holding its records) of an entry, or PoisonEntryError
    saying why not."""
    fields = entry.fields or {}
    named = fields.get(b"model")
    model = streams.get(entry.stream) or (named.decode(errors="replace") if named else None)
    if not model:
        raise PoisonEntryError("no model: map the stream to one or add a `model` field")
    for name, raw_name in FIELD_NAMES.items():
        if raw_name in fields:
            return model, name
    raise PoisonEntryError("no `event`, `events` or `kpis` field")


def records_of(entry: Entry, name: str) -> list[object]:
    """The records in the entry's field `name`, or PoisonEntryError saying why not."""
    try:
        parsed = orjson.loads((entry.fields or {})[FIELD_NAMES[name]])
    except orjson.JSONDecodeError as exc:
        raise PoisonEntryError(f"invalid JSON in `{name}`: {exc}") from exc
    if name == "event":
        return [parsed]
    if not isinstance(parsed, list):
        raise PoisonEntryError(f"`{name}` must hold a JSON array")
    return parsed


def errors_by_entry(
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


def raw_reads(redis: Redis) -> Redis:
    """A client on the same connections whose XREADGROUP replies stay as Redis sent
    them: entries as [id, [name, value, ...]]. redis-py would build a dict per entry,
    which costs the consumer more than handling the entry does."""
    reader = Redis(connection_pool=redis.connection_pool)
    reader.set_response_callback("XREADGROUP", lambda response, **_: response)
    return reader


def sole_field(items: list[Any]) -> bytes | None:
    """The name of the one field every entry holds, if they all hold just that one."""
    first = items[0][1] if items else None
    if not first or len(first) != 2:
        return None
    name: bytes = first[0]
    plain = all(fields and len(fields) == 2 and fields[0] == name for _, fields in items)
    return name if plain else None


def entry_of(stream: str, item: Any) -> Entry:
    """An entry from XAUTOCLAIM's parsed reply ({name: value}) or a raw XREADGROUP one
    ([name, value, ...]); None for an entry deleted while pending."""
    entry_id, raw = item
    fields = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
    return Entry(stream, text(entry_id), fields)


def stream_items(reply: Any) -> list[tuple[str, list[Any]]]:
    """A raw XREADGROUP reply ([stream, entries] pairs, or a map in RESP3), by stream."""
    pairs = reply.items() if isinstance(reply, dict) else (reply or [])
    return [(text(stream), items) for stream, items in pairs if items]


def entries_of(reply: Any) -> list[Entry]:
    return [entry_of(stream, item) for stream, items in stream_items(reply) for item in items]
