"""Request bodies of prediction logs: one JSON object, a JSON array, or NDJSON."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import msgspec
import orjson

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
# parsing a body this big can take tens of milliseconds (100k bad NDJSON lines in 400 kB:
# 0.2 s; 16 MiB: most of a second), too long to hold up every other request on the loop;
# a thread gives the loop the GIL back every few milliseconds
PARSE_IN_THREAD_BYTES = 64 * 1024
# one orjson call over a body this big holds the GIL too long even in a thread
PARSE_IN_PIECES_BYTES = 1024 * 1024
# finds a JSON array's elements without building them (16 MiB: about 20 ms)
ARRAY_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])


class BodyError(ValueError):
    """The body as a whole is unusable (nothing in it can be kept)."""


@dataclass
class UnparsableRecord:
    error: str


ParsedRecord = object


def declares_ndjson(content_type: str) -> bool:
    return any(kind in content_type for kind in NDJSON_TYPES)


def _could_be_ndjson(body: bytes) -> bool:
    """Several lines, each an object: NDJSON sent without its content type."""
    lines = [line.strip() for line in body.strip().split(b"\n") if line.strip()]
    return len(lines) > 1 and all(line[:1] == b"{" and line[-1:] == b"}" for line in lines)


def _parse_ndjson(body: bytes) -> list[ParsedRecord]:
    records: list[ParsedRecord] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            records.append(UnparsableRecord(f"invalid JSON line ({exc})"))
    return records


def parse_records(body: bytes, content_type: str) -> list[ParsedRecord]:
    """The records in a body, in order. A line of NDJSON that is not JSON stays in the
    list as an UnparsableRecord so that it is rejected alone, by its index."""
    if not body.strip():
        raise BodyError("body: empty; send a JSON object, a JSON array, or NDJSON")
    if declares_ndjson(content_type):
        return _parse_ndjson(body)
    if len(body) >= PARSE_IN_PIECES_BYTES:
        elements = _array_in_pieces(body)
        if elements is not None:
            return elements
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # a whole body that is not JSON may still be NDJSON, one object a line
        if _could_be_ndjson(body):
            return _parse_ndjson(body)
        raise BodyError(f"body: invalid JSON ({exc})") from exc
    if isinstance(parsed, list):
        return list(parsed)
    if isinstance(parsed, dict):
        return [parsed]
    raise BodyError("body: must be a JSON object, a JSON array of objects, or NDJSON")


def _array_in_pieces(body: bytes) -> list[ParsedRecord] | None:
    """A big JSON array parsed one element at a time: one orjson call over the whole
    body would hold the GIL, and so the event loop, until it returns, even in a worker
    thread; between small calls the loop gets it back. None when the body is not a
    well-formed array: the whole-body parse then says what it is."""
    try:
        return [orjson.loads(memoryview(raw)) for raw in ARRAY_ELEMENTS.decode(body)]
    except (msgspec.DecodeError, orjson.JSONDecodeError):
        return None


async def parse_records_off_loop(body: bytes, content_type: str) -> list[ParsedRecord]:
    """parse_records, in a worker thread for a big body, which parses it in small pieces
    (a big array element by element, NDJSON line by line) so that the event loop gets
    the GIL back every few milliseconds instead of after the whole parse."""
    if len(body) < PARSE_IN_THREAD_BYTES:
        return parse_records(body, content_type)
    return await asyncio.to_thread(parse_records, body, content_type)
