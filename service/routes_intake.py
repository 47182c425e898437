"""Prediction logs and ground truth over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from collectors.body import BodyError, UnparsableRecord, parse_records
from collectors.events import Event, RecordError, normalize_record
from service.http_util import check_model_name, read_capped_body, services_of, unknown_model
from service.schema import ModelSchema
from service.state import Services, layout_for

router = APIRouter(tags=["intake"])
MAX_ERRORS_SHOWN = 100


def _normalize_all(
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
            errors.append(
                {"index": index, "field": exc.field, "reason": exc.reason, "error": str(exc)}
            )
    return events, errors


async def _records(request: Request, services: Services) -> list[object]:
    body = await read_capped_body(
        request, services.settings.events_max_bytes, "DRIFTMON_EVENTS_MAX_BYTES"
    )
    try:
        return parse_records(body, request.headers.get("content-type", ""))
    except BodyError as exc:
        raise HTTPException(400, detail={"field": "body", "error": str(exc)}) from exc


@router.post("/v1/models/{model}/events", status_code=202)
async def post_events(model: str, request: Request) -> JSONResponse:
    """Prediction logs: one JSON object, a JSON array, or NDJSON. Bad records are
    rejected one by one; the rest are stored before the 202."""
    check_model_name(model)
    services = services_of(request)
    schema = await services.registry.schema(model)
    if schema is None:
        raise unknown_model(model)
    records = await _records(request, services)
    now = services.clock.now()
    events, errors = _normalize_all(records, model, schema, now)
    stored = await services.events.append(
        model, events, layout_for(schema), services.retention(), now
    )
    await services.events.count_rejects(
        model,
        [(error["reason"], error["field"]) for error in errors],
        now,
        services.settings.retention_seconds,
    )
    counter = services.metrics.events
    counter.labels(model, "http", "accepted").inc(stored.accepted)
    counter.labels(model, "http", "duplicate").inc(stored.duplicates)
    counter.labels(model, "http", "rejected").inc(len(errors))
    body = {
        "accepted": stored.accepted,
        "duplicates": stored.duplicates,
        "rejected": len(errors),
        "errors": errors[:MAX_ERRORS_SHOWN],
    }
    # nothing usable at all is a client error; anything kept is a 202
    status = 422 if errors and not events else 202
    return JSONResponse(body, status_code=status)


def _label_value(raw: object, schema: ModelSchema) -> tuple[str, object]:
    if not isinstance(raw, dict):
        raise RecordError("record", "must be an object with event_id and label")
    event_id = raw.get("event_id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or event_id == "":
        raise RecordError("event_id", "must be a non-empty string")
    if "label" not in raw:
        raise RecordError("label", "is required")
    probe = normalize_record({"features": {}, "label": raw["label"]}, "", schema, 0.0)
    return str(event_id), probe.label


@router.post("/v1/models/{model}/labels", status_code=202)
async def post_labels(model: str, request: Request) -> JSONResponse:
    """Ground truth by event id, arriving after the predictions."""
    check_model_name(model)
    services = services_of(request)
    schema = await services.registry.schema(model)
    if schema is None:
        raise unknown_model(model)
    records = await _records(request, services)
    labels: dict[str, object] = {}
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            if isinstance(record, UnparsableRecord):
                raise RecordError("record", record.error)
            event_id, value = _label_value(record, schema)
            labels[event_id] = value
        except RecordError as exc:
            errors.append(
                {"index": index, "field": exc.field, "reason": exc.reason, "error": str(exc)}
            )
    accepted, unknown = await services.events.put_labels(
        model, labels, services.settings.label_ttl_seconds
    )
    services.metrics.labels.labels(model, "accepted").inc(accepted)
    services.metrics.labels.labels(model, "unknown").inc(unknown)
    body = {"accepted": accepted, "unknown": unknown, "rejected": len(errors), "errors": errors}
    return JSONResponse(body, status_code=422 if errors and not labels else 202)
