"""Prediction logs and ground truth over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from collectors.body import BodyError, UnparsableRecord, parse_records
from collectors.events import RecordError, normalize_record
from collectors.intake import UnknownModelError
from service.http_util import check_model_name, read_capped_body, services_of, unknown_model
from service.schema import ModelSchema
from service.state import Services

router = APIRouter(tags=["intake"])


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
    if await services.registry.schema(model) is None:
        raise unknown_model(model)
    records = await _records(request, services)
    try:
        result = await services.intake.submit(model, records, source="http")
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    # nothing usable at all is a client error; anything kept is a 202
    status = 422 if result.errors and result.rejected == len(records) else 202
    return JSONResponse(result.as_dict(), status_code=status)


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
            event_id, value = label_pair(record, schema)
            labels[event_id] = value
        except RecordError as exc:
            errors.append(
                {"index": index, "field": exc.field, "reason": exc.reason, "error": str(exc)}
            )
    accepted, unknown = await services.intake.submit_labels(model, labels, source="http")
    body = {"accepted": accepted, "unknown": unknown, "rejected": len(errors), "errors": errors}
    return JSONResponse(body, status_code=422 if errors and not labels else 202)


@router.post("/v1/models/{model}/kpis", status_code=202)
async def post_kpis(model: str, request: Request) -> JSONResponse:
    """Business KPIs as [{"name", "value", "timestamp"}]: kept per model as time series
    and compared per run against the period before the window."""
    check_model_name(model)
    services = services_of(request)
    if await services.registry.schema(model) is None:
        raise unknown_model(model)
    records = await _records(request, services)
    try:
        result = await services.intake.submit_kpis(model, records, source="http")
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    body = {"accepted": result.accepted, "rejected": result.rejected, "errors": result.errors}
    return JSONResponse(body, status_code=422 if result.errors and not result.accepted else 202)
