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


def _declares_ndjson(content_type: str) -> bool:
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
    if _declares_ndjson(content_type):
        return _parse_ndjson(body)
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
