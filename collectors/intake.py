"""The one path every collector takes: validate records against the model's schema,
store the good ones idempotently, count and remember the rejects."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from collectors.body import UnparsableRecord
from collectors.events import DEFAULT_LIMITS, RecordError, RecordLimits
from collectors.kpis import parse_kpi
from collectors.validation import (
    DocumentEncoder,
    ValidBatch,
    record_error,
    validate,
    validate_labels,
)
from core.clock import Clock
from core.errors import UnknownModelError
from core.schema import ModelSchema
from core.stores import Stores
from core.stores.events import RetentionPolicy
from core.stores.kpis import KpiPoint

# an answer names the first errors only: a body of 100k bad records must not echo 100k
MAX_ERRORS_ANSWERED = 100
# more records than this are validated in a thread, so that requests keep being served
RECORDS_ON_THE_LOOP = 2000


class IntakeCounter(Protocol):
    """Where intake outcomes are counted (the service's Prometheus metrics)."""

    def count_events(self, model: str, source: str, outcome: str, amount: int) -> None: ...

    def count_rejects(self, model: str, source: str, reason: str, amount: int) -> None: ...

    def count_labels(self, model: str, source: str, outcome: str, amount: int) -> None: ...

    def count_kpis(self, model: str, source: str, amount: int) -> None: ...


@dataclass(frozen=True)
class IntakePolicy:
    retention: RetentionPolicy
    label_ttl_seconds: float
    # hashes the `pii: hash` columns of a schema's PII policy; kept out of reprs and logs
    pii_key: bytes | None = field(default=None, repr=False)
    # bounds on one record's text and time (Settings.record_limits)
    limits: RecordLimits = DEFAULT_LIMITS


@dataclass
class IntakeResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def as_dict(self, max_errors: int = MAX_ERRORS_ANSWERED) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors[:max_errors],
        }


@dataclass
class LabelResult:
    accepted: int
    unknown: int
    errors: list[dict[str, Any]]

    def as_dict(self, max_errors: int = MAX_ERRORS_ANSWERED) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "unknown": self.unknown,
            "rejected": len(self.errors),
            "errors": self.errors[:max_errors],
        }


class Intake:
    @property
    def pii_key(self) -> bytes | None:
        """The key that pseudonymises `pii: hash` columns (collectors that keep records
        before intake, like the CloudEvents join, apply it too)."""
        return self._policy.pii_key

    def __init__(
        self, stores: Stores, clock: Clock, counter: IntakeCounter, policy: IntakePolicy
    ) -> None:
        self._stores = stores
        self._clock = clock
        self._counter = counter
        self._policy = policy
        self._documents = DocumentEncoder(policy.limits)

    async def schema(self, model: str) -> ModelSchema:
        schema = await self._stores.registry.schema(model)
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
        check = partial(validate, pii_key=self._policy.pii_key, limits=self._policy.limits)
        if len(records) > RECORDS_ON_THE_LOOP:  # a big body: validated beside the loop
            batch, errors = await asyncio.to_thread(check, records, model, schema, now)
        else:
            batch, errors = check(records, model, schema, now)
        retention = self._policy.retention
        stored = await self._stores.events.append(model, batch, retention, now)
        await self._stores.rejects.count_rejects(
            model,
            [(error["reason"], error["field"]) for error in errors],
            now,
            retention.max_age_seconds,
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
        """The CPU half of `submit_documents`, for callers that overlap it with I/O."""
        return await self._documents.encode(model, schema, documents, many, self._clock.now())

    async def store(self, valid: ValidBatch, source: str) -> IntakeResult:
        events = self._stores.events
        stored = await events.append(valid.model, valid.batch, self._policy.retention, valid.now)
        self._count(valid.model, source, stored.accepted, stored.duplicates, [])
        return IntakeResult(stored.accepted, stored.duplicates)

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
                indexed.append((index, parse_kpi(record, now, self._policy.limits)))
            except RecordError as exc:
                errors.append(record_error(index, exc))
        points = [point for _, point in indexed]
        refused = set(await self._stores.kpis.add(model, points, now))
        for index, point in indexed:
            if point.name in refused:
                cap = RecordError(
                    "name", f"{point.name!r} is over the cap of distinct KPIs per model"
                )
                errors.append(record_error(index, cap))
        errors.sort(key=lambda error: int(error["index"]))
        accepted = sum(1 for point in points if point.name not in refused)
        self._counter.count_kpis(model, source, accepted)
        return IntakeResult(accepted=accepted, errors=errors)

    async def submit_labels(
        self, model: str, records: list[object], source: str, schema: ModelSchema | None = None
    ) -> LabelResult:
        """Ground truth [{"event_id", "label"}], each label checked like a prediction."""
        schema = schema or await self.schema(model)
        if len(records) > RECORDS_ON_THE_LOOP:  # a big body: validated beside the loop
            labels, errors = await asyncio.to_thread(
                validate_labels, records, schema, self._policy.limits
            )
        else:
            labels, errors = validate_labels(records, schema, self._policy.limits)
        ttl = self._policy.label_ttl_seconds
        accepted, unknown = await self._stores.labels.put_labels(model, labels, ttl)
        self._counter.count_labels(model, source, "accepted", accepted)
        self._counter.count_labels(model, source, "unknown", unknown)
        return LabelResult(accepted, unknown, errors)
