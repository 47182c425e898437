"""The one path every collector takes: validate records against the model's schema,
store the good ones idempotently, count and remember the rejects."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.batch import EncodedBatch, Layout
from collectors.body import UnparsableRecord
from collectors.columnar import encode_columnar
from collectors.events import Event, RecordError, normalize_record
from collectors.kpis import KpiPoint, KpiStore, parse_kpi
from collectors.store import EventStore, RetentionPolicy
from collectors.typed import TypedDecoder
from service.clock import Clock
from service.registry import ModelRegistry
from service.schema import ModelSchema


class IntakeCounter(Protocol):
    """Where intake outcomes are counted (the service's Prometheus metrics)."""

    def count_events(self, model: str, source: str, outcome: str, amount: int) -> None: ...

    def count_rejects(self, model: str, source: str, reason: str, amount: int) -> None: ...

    def count_labels(self, model: str, source: str, outcome: str, amount: int) -> None: ...

    def count_kpis(self, model: str, source: str, amount: int) -> None: ...


RECORDS_PER_SLICE = 100  # validated between turns of the event loop: under a millisecond
MAX_DECODERS = 256  # one per model schema in use; a reference upload adds one


class UnknownModelError(LookupError):
    def __init__(self, model: str) -> None:
        super().__init__(f"model {model!r} is unknown; upload its reference first")
        self.model = model


@dataclass
class IntakeResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def as_dict(self, max_errors: int = 100) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors[:max_errors],
        }


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


def validate(
    records: list[object], model: str, schema: ModelSchema, now: float
) -> tuple[EncodedBatch, list[dict[str, Any]]]:
    """The accepted records encoded for the store, and an error per rejected one."""
    layout = layout_for(schema)
    batch = encode_columnar(records, model, schema, layout, now)
    if batch is not None:
        return batch, []
    events, errors = normalize_all(records, model, schema, now)
    return EncodedBatch.from_events(events, layout), errors


def normalize_all(
    records: list[object], model: str, schema: ModelSchema, now: float
) -> tuple[list[Event], list[dict[str, Any]]]:
    events: list[Event] = []
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            if isinstance(record, UnparsableRecord):
                raise RecordError("record", record.error)
            events.append(normalize_record(record, model, schema, now))
        except RecordError as exc:
            errors.append(_error(index, exc))
    return events, errors


def _error(index: int, exc: RecordError) -> dict[str, Any]:
    return {"index": index, "field": exc.field, "reason": exc.reason, "error": str(exc)}


class Intake:
    def __init__(
        self,
        registry: ModelRegistry,
        store: EventStore,
        clock: Clock,
        counter: IntakeCounter,
        retention: RetentionPolicy,
        label_ttl_seconds: float,
        kpis: KpiStore,
    ) -> None:
        self._registry = registry
        self._store = store
        self._clock = clock
        self._counter = counter
        self._retention = retention
        self._label_ttl_seconds = label_ttl_seconds
        self._kpis = kpis
        self._decoders: dict[tuple[object, ...], TypedDecoder] = {}

    async def schema(self, model: str) -> ModelSchema:
        schema = await self._registry.schema(model)
        if schema is None:
            raise UnknownModelError(model)
        return schema

    async def submit(
        self, model: str, records: list[object], source: str, schema: ModelSchema | None = None
    ) -> IntakeResult:
        """Validate and store. Returns once the accepted events are in Redis. A caller
        that has just looked the schema up passes it in."""
        schema = schema or await self.schema(model)
        now = self._clock.now()
        batch, errors = validate(records, model, schema, now)
        stored = await self._store.append(model, batch, self._retention, now)
        await self._store.count_rejects(
            model,
            [(error["reason"], error["field"]) for error in errors],
            now,
            self._retention.max_age_seconds,
        )
        self._count(model, source, stored.accepted, stored.duplicates, errors)
        return IntakeResult(stored.accepted, stored.duplicates, errors)

    async def submit_documents(
        self, model: str, documents: list[bytes], many: bool, source: str
    ) -> IntakeResult | None:
        """The fast path for records still in JSON: each document one record, or (many)
        an array of records. Stores them and returns the result when every record is
        plainly valid; otherwise stores nothing and returns None, and the caller parses
        the documents and calls `submit`, which names each error."""
        valid = await self.encode_documents(model, await self.schema(model), documents, many)
        return None if valid is None else await self.store(valid, source)

    async def encode_documents(
        self, model: str, schema: ModelSchema, documents: list[bytes], many: bool
    ) -> ValidBatch | None:
        """The CPU half of `submit_documents`, for callers that overlap it with I/O. It
        lets the event loop run after every slice of records, so that validating a big
        batch holds up neither requests nor the sending of the batch before it (a
        stored batch goes out in socket-sized pieces, one per turn of the loop)."""
        now = self._clock.now()
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

    async def store(self, valid: ValidBatch, source: str) -> IntakeResult:
        stored = await self._store.append(valid.model, valid.batch, self._retention, valid.now)
        self._count(valid.model, source, stored.accepted, stored.duplicates, [])
        return IntakeResult(stored.accepted, stored.duplicates)

    def _decoder(self, schema: ModelSchema) -> TypedDecoder:
        key = schema_key(schema)
        decoder = self._decoders.get(key)
        if decoder is None:
            if len(self._decoders) >= MAX_DECODERS:
                self._decoders.pop(next(iter(self._decoders)))  # the oldest
            decoder = self._decoders[key] = TypedDecoder(schema, layout_for(schema))
        return decoder

    def _count(
        self, model: str, source: str, accepted: int, duplicates: int, errors: list[dict[str, Any]]
    ) -> None:
        self._counter.count_events(model, source, "accepted", accepted)
        self._counter.count_events(model, source, "duplicate", duplicates)
        self._counter.count_events(model, source, "rejected", len(errors))
        by_reason: dict[str, int] = {}
        for error in errors:
            by_reason[error["reason"]] = by_reason.get(error["reason"], 0) + 1
        for reason, amount in by_reason.items():
            self._counter.count_rejects(model, source, reason, amount)

    async def submit_kpis(
        self, model: str, records: list[object], source: str, schema: ModelSchema | None = None
    ) -> IntakeResult:
        """Business KPI points: [{"name", "value", "timestamp"}]."""
        if schema is None:
            await self.schema(model)  # the model must exist
        now = self._clock.now()
        indexed: list[tuple[int, KpiPoint]] = []
        errors: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            try:
                if isinstance(record, UnparsableRecord):
                    raise RecordError("record", record.error)
                indexed.append((index, parse_kpi(record, now)))
            except RecordError as exc:
                errors.append(_error(index, exc))
        points = [point for _, point in indexed]
        refused = set(await self._kpis.add(model, points, now))
        for index, point in indexed:
            if point.name in refused:
                cap = RecordError(
                    "name", f"{point.name!r} is over the cap of distinct KPIs per model"
                )
                errors.append(_error(index, cap))
        errors.sort(key=lambda error: int(error["index"]))
        accepted = sum(1 for point in points if point.name not in refused)
        self._counter.count_kpis(model, source, accepted)
        return IntakeResult(accepted=accepted, errors=errors)

    async def submit_labels(
        self, model: str, records: list[object], source: str, schema: ModelSchema | None = None
    ) -> LabelResult:
        """Ground truth [{"event_id", "label"}], each label checked like a prediction."""
        schema = schema or await self.schema(model)
        labels: dict[str, object] = {}
        errors: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            try:
                event_id, value = label_pair(record, schema)
                labels[event_id] = value
            except RecordError as exc:
                errors.append(_error(index, exc))
        accepted, unknown = await self._store.put_labels(model, labels, self._label_ttl_seconds)
        self._counter.count_labels(model, source, "accepted", accepted)
        self._counter.count_labels(model, source, "unknown", unknown)
        return LabelResult(accepted, unknown, errors)


@dataclass
class LabelResult:
    accepted: int
    unknown: int
    errors: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "unknown": self.unknown,
            "rejected": len(self.errors),
            "errors": self.errors,
        }


def label_pair(raw: object, schema: ModelSchema) -> tuple[str, object]:
    """(event id, label) from {"event_id", "label"}, the label checked like a prediction."""
    if isinstance(raw, UnparsableRecord):
        raise RecordError("record", raw.error)
    if not isinstance(raw, dict):
        raise RecordError("record", "must be an object with event_id and label")
    event_id = raw.get("event_id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or event_id == "":
        raise RecordError("event_id", "must be a non-empty string")
    if "label" not in raw:
        raise RecordError("label", "is required")
    probe = normalize_record({"features": {}, "label": raw["label"]}, "", schema, 0.0)
    return str(event_id), probe.label
