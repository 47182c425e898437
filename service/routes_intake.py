"""Prediction logs and ground truth over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from collectors.body import BodyError, parse_records
from collectors.intake import UnknownModelError
from service.http_util import check_model_name, read_capped_body, services_of, unknown_model
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


@router.post("/v1/models/{model}/labels", status_code=202)
async def post_labels(model: str, request: Request) -> JSONResponse:
    """Ground truth by event id, arriving after the predictions."""
    check_model_name(model)
    services = services_of(request)
    if await services.registry.schema(model) is None:
        raise unknown_model(model)
    records = await _records(request, services)
    result = await services.intake.submit_labels(model, records, source="http")
    body = result.as_dict()
    rejected_all = result.errors and len(result.errors) == len(records)
    return JSONResponse(body, status_code=422 if rejected_all else 202)


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
