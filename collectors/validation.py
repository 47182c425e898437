"""Validation without I/O: records checked against a model's schema and encoded in the
store's block format, by the fastest path that accepts them. Whatever a fast path
refuses, the per-record path names the field of each error."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from collectors.body import UnparsableRecord
from collectors.columnar import encode_columnar
from collectors.events import (
    DEFAULT_LIMITS,
    RecordError,
    RecordLimits,
    event_id_text,
    normalize_record,
)
from collectors.typed import TypedDecoder
from core.blocks import EncodedBatch, Layout
from core.events import Event
from core.schema import ModelSchema, PiiAction, pii_token

RECORDS_PER_SLICE = 100  # validated between turns of the event loop: under a millisecond
MAX_DECODERS = 256  # one per model schema in use; a reference upload adds one


@dataclass(frozen=True)
class ValidBatch:
    """Records validated and encoded at `now`, ready to store."""

    model: str
    batch: EncodedBatch
    now: float


def layout_for(schema: ModelSchema) -> Layout:
    return Layout(numerical=tuple(schema.numerical), categorical=tuple(schema.categorical))


def schema_key(schema: ModelSchema) -> tuple[object, ...]:
    """What the typed decoder depends on: a new reference may change it."""
    return (tuple(schema.features.items()), schema.prediction_kind, schema.positive_class)


def record_error(index: int, exc: RecordError) -> dict[str, Any]:
    return {"index": index, "field": exc.field, "reason": exc.reason, "error": str(exc)}


def validate(
    records: list[object],
    model: str,
    schema: ModelSchema,
    now: float,
    pii_key: bytes | None = None,
    limits: RecordLimits = DEFAULT_LIMITS,
) -> tuple[EncodedBatch, list[dict[str, Any]]]:
    """The accepted records encoded for the store, and an error per rejected one."""
    records = pseudonymise(records, schema.pii, pii_key)
    layout = layout_for(schema)
    batch = encode_columnar(records, model, schema, layout, now, limits)
    if batch is not None:
        return batch, []
    events, errors = normalize_all(records, model, schema, now, limits)
    return EncodedBatch.from_events(events, layout), errors


def normalize_all(
    records: list[object],
    model: str,
    schema: ModelSchema,
    now: float,
    limits: RecordLimits = DEFAULT_LIMITS,
) -> tuple[list[Event], list[dict[str, Any]]]:
    events: list[Event] = []
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            if isinstance(record, UnparsableRecord):
                raise RecordError("record", record.error)
            events.append(normalize_record(record, model, schema, now, limits))
        except RecordError as exc:
            errors.append(record_error(index, exc))
    return events, errors


def pseudonymise(
    records: list[object], pii: dict[str, PiiAction], key: bytes | None
) -> list[object]:
    """The records with their PII features hashed or dropped, first of all: no path
    after this one stores, rejects or counts a raw PII value, and a dropped column is
    neither an unknown field nor a new column. Records that are not objects with a
    features object pass as they are, to be rejected as a whole."""
    if not pii:
        return records
    return [_pseudonymised(record, pii, key) for record in records]


def _pseudonymised(record: object, pii: dict[str, PiiAction], key: bytes | None) -> object:
    if not isinstance(record, dict):
        return record
    features = record.get("features")
    if not isinstance(features, dict) or pii.keys().isdisjoint(features):
        return record
    kept: dict[str, object] = {}
    for name, value in features.items():
        action = pii.get(name)
        if action is None:
            kept[name] = value
        elif action == "hash" and _hashable(value):
            if key is None:  # refused, not stored raw: this replica lacks the key
                return UnparsableRecord(f"features.{name} is `pii: hash`; no pii_hmac_key here")
            kept[name] = pii_token(value, key)
        elif action == "hash":
            kept[name] = value  # null or not a category: validation rejects it by its type
    return {**record, "features": kept}


def _hashable(value: object) -> bool:
    """A value the careful path would take as a category, or a finite number (a numeric
    reference column marked `pii: hash` is hashed from its numbers)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)


def validate_labels(
    records: list[object], schema: ModelSchema, limits: RecordLimits = DEFAULT_LIMITS
) -> tuple[dict[str, object], list[dict[str, Any]]]:
    """Ground truth by event id, and an error per rejected record."""
    labels: dict[str, object] = {}
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            event_id, value = label_pair(record, schema, limits)
            labels[event_id] = value
        except RecordError as exc:
            errors.append(record_error(index, exc))
    return labels, errors


def label_pair(
    raw: object, schema: ModelSchema, limits: RecordLimits = DEFAULT_LIMITS
) -> tuple[str, object]:
    """(event id, label) from {"event_id", "label"}, the label checked like a prediction."""
    if isinstance(raw, UnparsableRecord):
        raise RecordError("record", raw.error)
    if not isinstance(raw, dict):
        raise RecordError("record", "must be an object with event_id and label")
    event_id = event_id_text(raw.get("event_id"), limits)
    if "label" not in raw:
        raise RecordError("label", "is required")
    probe = normalize_record({"features": {}, "label": raw["label"]}, "", schema, 0.0, limits)
    return event_id, probe.label


class DocumentEncoder:
    """The typed path for records still in JSON, with one decoder kept per schema."""

    def __init__(self, limits: RecordLimits = DEFAULT_LIMITS) -> None:
        self._decoders: dict[tuple[object, ...], TypedDecoder] = {}
        self._limits = limits

    async def encode(
        self, model: str, schema: ModelSchema, documents: list[bytes], many: bool, now: float
    ) -> ValidBatch | None:
        """Each document one record, or (many) an array of records, encoded when every
        record is plainly valid; else None, and the caller takes the careful path. It
        lets the event loop run after every slice of records, so that validating a big
        batch holds up neither requests nor the sending of the batch before it (a
        stored batch goes out in socket-sized pieces, one per turn of the loop). A
        schema with PII columns takes the careful path, which pseudonymises dicts."""
        if schema.pii:
            return None
        decoder = self._decoder(schema)
        parts: list[EncodedBatch] = []
        pending: list[Any] = []
        for end, document in enumerate(documents, start=1):
            parsed = decoder.records(document, many)
            if parsed is None:
                return None
            pending += parsed
            if pending and (len(pending) >= RECORDS_PER_SLICE or end == len(documents)):
                part = decoder.encode_records(pending, model, now)
                if part is None:
                    return None
                parts.append(part)
                pending = []
                await asyncio.sleep(0)
        return ValidBatch(model, EncodedBatch.concat(parts), now) if parts else None

    def _decoder(self, schema: ModelSchema) -> TypedDecoder:
        key = schema_key(schema)
        decoder = self._decoders.get(key)
        if decoder is None:
            if len(self._decoders) >= MAX_DECODERS:
                self._decoders.pop(next(iter(self._decoders)))  # the oldest
            decoder = self._decoders[key] = TypedDecoder(schema, layout_for(schema), self._limits)
        return decoder
