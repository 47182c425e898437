"""Narrow redis-py's loose reply types to what a client without decode_responses gets."""

from __future__ import annotations

from typing import Any, cast

StreamEntry = tuple[bytes, dict[bytes, bytes]]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def entries(reply: Any) -> list[StreamEntry]:
    return cast(list[StreamEntry], reply or [])


def optional_bytes(reply: Any) -> bytes | None:
    return None if reply is None else cast(bytes, reply)
