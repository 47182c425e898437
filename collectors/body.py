"""Request bodies of prediction logs: one JSON object, a JSON array, or NDJSON."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


class BodyError(ValueError):
    """The body as a whole is unusable (nothing in it can be kept)."""


@dataclass
class UnparsableRecord:
    error: str


ParsedRecord = object


def _looks_like_ndjson(content_type: str, body: bytes) -> bool:
    if any(kind in content_type for kind in NDJSON_TYPES):
        return True
    stripped = body.strip()
    return b"\n" in stripped and stripped[:1] == b"{" and stripped[-1:] == b"}"


def _parse_ndjson(body: bytes) -> list[ParsedRecord]:
    records: list[ParsedRecord] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            records.append(UnparsableRecord(f"record: invalid JSON line ({exc})"))
    return records


def parse_records(body: bytes, content_type: str) -> list[ParsedRecord]:
    """The records in a body, in order. A line of NDJSON that is not JSON stays in the
    list as an UnparsableRecord so that it is rejected alone, by its index."""
    if not body.strip():
        raise BodyError("body: empty; send a JSON object, a JSON array, or NDJSON")
    if _looks_like_ndjson(content_type, body):
        return _parse_ndjson(body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"body: invalid JSON ({exc})") from exc
    if isinstance(parsed, list):
        return list(parsed)
    if isinstance(parsed, dict):
        return [parsed]
    raise BodyError("body: must be a JSON object, a JSON array of objects, or NDJSON")
