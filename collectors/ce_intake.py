"""CloudEvents to events: resolve the model, join request and response halves in Redis
within a TTL, and submit the joined rows through the common intake path. An unmatched
half expires and is counted; an unknown model is counted and reported, never a 500.

Each half is parsed when it arrives, so a malformed one is refused then (the route
answers 4xx naming the field) instead of waiting in Redis for a join that must fail.
A request half waits as the feature rows parsed from it, its PII columns already
hashed or dropped: nothing raw of a PII column is kept, even for the join's TTL."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from collectors.body import UnparsableRecord
from collectors.cloudevents import CloudEvent, CloudEventError
from collectors.intake import Intake
from collectors.payloads import feedback_truth, request_rows, response_predictions
from collectors.validation import pseudonymise
from core.errors import UnknownModelError
from core.schema import ModelSchema
from core.stores.joins import HalfJoins, HalfKey
from core.stores.registry import ModelRegistry

log = logging.getLogger(__name__)

# a waiting request half as parsed and pseudonymised here; a half without this key was
# stored raw by an older replica and is parsed at the join
ROWS_KEY = "driftmon_rows"
PREDICTIONS_KEY = "driftmon_predictions"  # a waiting response half, likewise
LOGGED_ID_CHARS = 100  # ids come from clients: logged cut short, repr-escaped


class CloudEventCounter(Protocol):
    def count_cloudevent(self, half: str, outcome: str, amount: int = 1) -> None: ...

    def count_unmatched(self, model: str, amount: int) -> None: ...


@dataclass(frozen=True)
class CloudEventSettings:
    models: dict[str, str]  # inferenceservicename / modelid / endpoint / source -> model
    input_names: dict[str, list[str]]  # model -> positional feature names
    join_ttl_seconds: float = 60.0


class CloudEventsIntake:
    def __init__(
        self,
        joins: HalfJoins,
        intake: Intake,
        registry: ModelRegistry,
        settings: CloudEventSettings,
        counter: CloudEventCounter,
    ) -> None:
        self._intake = intake
        self._registry = registry
        self._settings = settings
        self._counter = counter
        self._joins = joins
        # the key intake hashes `pii: hash` columns with: a waiting half holds the very
        # token intake would store. (Intake has no public accessor for it yet.)
        self._pii_key = intake.pii_key

    async def resolve_model(self, event: CloudEvent) -> str | None:
        candidates = [
            event.extensions.get("inferenceservicename"),
            event.extensions.get("modelid"),
            event.extensions.get("endpoint"),
            event.source,
        ]
        for candidate in candidates:
            if candidate and candidate in self._settings.models:
                return self._settings.models[candidate]
        known = set(await self._registry.names())
        return next((c for c in candidates if c and c in known), None)

    async def handle(self, event: CloudEvent, now: float) -> dict[str, Any]:
        """The outcome of one event. Raises CloudEventError (counted and logged) when
        the event itself is malformed; a pair that fails only once joined is answered
        with status "invalid" instead, since this event alone was fine."""
        half = event.half
        if half is None:
            self._counter.count_cloudevent("other", "ignored_type")
            reason = f"type {event.type!r} is not an inference log"
            return {"id": event.id, "status": "ignored", "reason": reason}
        model = await self.resolve_model(event)
        schema = None if model is None else await self._schema(model)
        if model is None or schema is None:
            self._counter.count_cloudevent(half, "unknown_model")
            return {"id": event.id, "status": "ignored", "reason": _no_model(model)}
        try:
            if half == "feedback":
                return await self._feedback(model, event)
            return await self._half(model, schema, half, event, now)
        except CloudEventError as exc:
            self._invalid(model, half, event, exc)
            raise

    async def _schema(self, model: str) -> ModelSchema | None:
        try:
            return await self._intake.schema(model)
        except UnknownModelError:  # mapped by DRIFTMON_CLOUDEVENTS_MODELS, no reference yet
            return None

    def _invalid(self, model: str, half: str, event: CloudEvent, exc: CloudEventError) -> None:
        self._counter.count_cloudevent(half, "invalid")
        # the field and what is wrong with it, never the payload: it may hold PII
        event_id = event.id[:LOGGED_ID_CHARS]
        log.warning("CloudEvent %r (%s of %s) rejected: %s", event_id, half, model, exc)

    async def _half(
        self, model: str, schema: ModelSchema, half: str, event: CloudEvent, now: float
    ) -> dict[str, Any]:
        if half == "request":
            stored = _dumps(
                {ROWS_KEY: self._private_rows(self._rows(model, schema, event.data), schema)}
            )
        else:  # only what the join needs: a response may carry anything besides
            stored = _dumps(_parsed_response(event.data))
        key = HalfKey(event.source, event.correlation_id, half)
        ttl = self._settings.join_ttl_seconds
        other = await self._joins.offer(model, key, stored, ttl, now)
        if not other:
            self._counter.count_cloudevent(half, "waiting")
            return {"id": event.id, "model": model, "status": "waiting"}
        request, response = (stored, other) if half == "request" else (other, stored)
        try:
            result = await self._submit(model, schema, event, request, response)
        except CloudEventError as exc:  # each half was fine alone; the pair is not
            self._invalid(model, half, event, exc)
            fields = {"field": exc.field, "error": str(exc)}
            return {"id": event.id, "model": model, "status": "invalid", **fields}
        self._counter.count_cloudevent(half, "joined")
        return {"id": event.id, "model": model, "status": "joined", **result}

    def _rows(self, model: str, schema: ModelSchema, payload: Any) -> list[dict[str, Any]]:
        order = self._settings.input_names.get(model) or list(schema.features)
        return request_rows(payload, order)

    def _private_rows(
        self, rows: list[dict[str, Any]], schema: ModelSchema
    ) -> list[dict[str, Any]]:
        """The rows with their PII features hashed or dropped, as intake would."""
        if not schema.pii:
            return rows
        records = pseudonymise([{"features": row} for row in rows], schema.pii, self._pii_key)
        private: list[dict[str, Any]] = []
        for record in records:
            if isinstance(record, UnparsableRecord):
                raise CloudEventError("data", record.error)
            assert isinstance(record, dict)  # pseudonymise keeps dicts as dicts
            features: dict[str, Any] = record["features"]
            for name in (n for n, action in schema.pii.items() if action == "hash"):
                # left as it was only when not a category (an array, an object): refused
                # here, since waiting in Redis it would be kept raw until the join
                if isinstance(features.get(name), list | dict):
                    raise CloudEventError("data", f"features.{name} is `pii: hash`: not a value")
            private.append(features)
        return private

    async def _submit(
        self, model: str, schema: ModelSchema, event: CloudEvent, request: bytes, response: bytes
    ) -> dict[str, Any]:
        rows = self._waiting_rows(model, schema, orjson.loads(request))
        waiting = orjson.loads(response)
        if not (isinstance(waiting, dict) and PREDICTIONS_KEY in waiting):
            waiting = _parsed_response(waiting)  # stored raw by an older replica
        predictions = waiting[PREDICTIONS_KEY]
        if len(predictions) != len(rows):
            raise CloudEventError(
                "data", f"{len(rows)} instances but {len(predictions)} predictions"
            )
        base = event.correlation_id
        version = waiting["model_version"] or event.extensions.get("modelversion")
        records: list[object] = [
            {
                "event_id": base if len(rows) == 1 else f"{base}:{i}",
                "features": row,
                "prediction": value,
                "scores": scores or None,
                "model_version": version,
                "timestamp": event.time,
            }
            for i, (row, (value, scores)) in enumerate(zip(rows, predictions, strict=True))
        ]
        # the rows are pseudonymised already: intake must not hash the tokens again
        plain = dataclasses.replace(schema, pii={})
        outcome = await self._intake.submit(model, records, source="cloudevents", schema=plain)
        return outcome.as_dict(max_errors=10)

    def _waiting_rows(self, model: str, schema: ModelSchema, stored: Any) -> list[dict[str, Any]]:
        if isinstance(stored, dict) and ROWS_KEY in stored:
            rows: list[dict[str, Any]] = stored[ROWS_KEY]
            return rows
        return self._private_rows(self._rows(model, schema, stored), schema)

    async def _feedback(self, model: str, event: CloudEvent) -> dict[str, Any]:
        puid, truth = feedback_truth(event.data)
        base = puid or event.correlation_id
        records: list[object] = [
            {"event_id": base if len(truth) == 1 else f"{base}:{i}", "label": value}
            for i, value in enumerate(truth)
        ]
        result = await self._intake.submit_labels(model, records, source="cloudevents")
        self._counter.count_cloudevent("feedback", "joined")
        return {"id": event.id, "model": model, "status": "labels", **result.as_dict()}

    async def sweep(self, now: float) -> int:
        """Count halves whose partner never came within the TTL."""
        by_model = await self._joins.sweep(now)
        for model, amount in by_model.items():
            self._counter.count_unmatched(model, amount)
        return sum(by_model.values())


def _parsed_response(payload: Any) -> dict[str, Any]:
    """A response half as it waits: its predictions (value, scores) and model version."""
    predictions = [[p.value, p.scores] for p in response_predictions(payload)]
    version = payload.get("model_version") if isinstance(payload, dict) else None
    return {PREDICTIONS_KEY: predictions, "model_version": version}


def _dumps(half: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(half)
    except orjson.JSONEncodeError as exc:  # values nested deeper than orjson writes
        raise CloudEventError("data", f"cannot be kept for the join ({exc})") from exc


def _no_model(model: str | None) -> str:
    if model is not None:
        return f"model {model!r} has no reference yet: upload it (PUT /v1/models/{model}/reference)"
    return (
        "no model matches this event; "
        "set DRIFTMON_CLOUDEVENTS_MODELS or name the model as the inference service"
    )
