"""CloudEvents to events: resolve the model, join request and response halves in Redis
within a TTL, and submit the joined rows through the common intake path. An unmatched
half expires and is counted; an unknown model is counted and reported, never a 500."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from collectors.cloudevents import CloudEvent, CloudEventError
from collectors.intake import Intake
from collectors.payloads import feedback_truth, request_rows, response_predictions
from core.stores.joins import HalfJoins, HalfKey
from core.stores.registry import ModelRegistry


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
        half = event.half
        if half is None:
            self._counter.count_cloudevent("other", "ignored_type")
            return {
                "id": event.id,
                "status": "ignored",
                "reason": f"type {event.type!r} is not an inference log",
            }
        model = await self.resolve_model(event)
        if model is None:
            self._counter.count_cloudevent(half, "unknown_model")
            return {
                "id": event.id,
                "status": "ignored",
                "reason": "no model matches this event; "
                "set DRIFTMON_CLOUDEVENTS_MODELS or name the model as the inference service",
            }
        try:
            if half == "feedback":
                return await self._feedback(model, event)
            return await self._half(model, half, event, now)
        except CloudEventError as exc:
            self._counter.count_cloudevent(half, "invalid")
            return {
                "id": event.id,
                "model": model,
                "status": "invalid",
                "field": exc.field,
                "error": str(exc),
            }

    async def _half(self, model: str, half: str, event: CloudEvent, now: float) -> dict[str, Any]:
        other = await self._joins.offer(
            model,
            HalfKey(event.source, event.correlation_id, half),
            orjson.dumps(event.data),
            self._settings.join_ttl_seconds,
            now,
        )
        if not other:
            self._counter.count_cloudevent(half, "waiting")
            return {"id": event.id, "model": model, "status": "waiting"}
        request, response = (
            (event.data, orjson.loads(other))
            if half == "request"
            else (orjson.loads(other), event.data)
        )
        result = await self._submit(model, event, request, response)
        self._counter.count_cloudevent(half, "joined")
        return {"id": event.id, "model": model, "status": "joined", **result}

    async def _submit(
        self, model: str, event: CloudEvent, request: Any, response: Any
    ) -> dict[str, Any]:
        schema = await self._intake.schema(model)
        order = self._settings.input_names.get(model) or list(schema.features)
        rows = request_rows(request, order)
        predictions = response_predictions(response)
        if len(predictions) != len(rows):
            raise CloudEventError(
                "data", f"{len(rows)} instances but {len(predictions)} predictions"
            )
        base = event.correlation_id
        version = (
            response.get("model_version") if isinstance(response, dict) else None
        ) or event.extensions.get("modelversion")
        records: list[object] = [
            {
                "event_id": base if len(rows) == 1 else f"{base}:{i}",
                "features": row,
                "prediction": prediction.value,
                "scores": prediction.scores or None,
                "model_version": version,
                "timestamp": event.time,
            }
            for i, (row, prediction) in enumerate(zip(rows, predictions, strict=True))
        ]
        outcome = await self._intake.submit(model, records, source="cloudevents", schema=schema)
        return outcome.as_dict(max_errors=10)

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
