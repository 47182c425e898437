"""Prediction logs and ground truth over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from collectors.body import (
    PARSE_IN_PIECES_BYTES,
    BodyError,
    declares_ndjson,
    parse_records_off_loop,
)
from collectors.intake import MAX_ERRORS_ANSWERED
from core.errors import UnknownModelError
from core.schema import ModelSchema
from service import openapi
from service.auth import require
from service.http_util import check_model_name, read_capped_body, services_of, unknown_model
from service.state import Services

router = APIRouter(tags=["intake"])


async def _body(request: Request, services: Services) -> bytes:
    return await read_capped_body(
        request, services.settings.events_max_bytes, "DRIFTMON_EVENTS_MAX_BYTES"
    )


async def _parsed(body: bytes, content_type: str) -> list[object]:
    try:
        return await parse_records_off_loop(body, content_type)
    except BodyError as exc:
        raise HTTPException(400, detail={"field": "body", "error": str(exc)}) from exc


async def _schema(model: str, services: Services) -> ModelSchema:
    try:
        return await services.intake.schema(model)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc


async def _typed_events(
    model: str, schema: ModelSchema, body: bytes, content_type: str, services: Services
) -> dict[str, Any] | None:
    """The answer of a JSON body of plainly valid events, stored by the typed path that
    msgspec parses straight into records (what the stream consumer uses); None sends
    the body the careful way, which names each error. A body of a megabyte or more
    takes the careful way too: that one parses it in pieces beside the event loop."""
    if len(body) >= PARSE_IN_PIECES_BYTES or declares_ndjson(content_type):
        return None
    first = body.lstrip()[:1]
    if first not in (b"[", b"{"):
        return None
    intake = services.intake
    valid = await intake.encode_documents(model, schema, [body], many=first == b"[")
    if valid is None:
        return None
    return (await intake.store(valid, source="http")).as_dict()


async def _known_model_records(
    model: str, request: Request
) -> tuple[Services, ModelSchema, list[object]]:
    """The schema and the records of a request to a model that exists (404 first,
    before the body is read)."""
    check_model_name(model)
    services = services_of(request)
    schema = await _schema(model, services)
    body = await _body(request, services)
    return services, schema, await _parsed(body, request.headers.get("content-type", ""))


def _answer(body: dict[str, Any], rejected: int, records: int) -> JSONResponse:
    # nothing usable at all is a client error; anything kept is a 202
    return JSONResponse(body, status_code=422 if rejected and rejected == records else 202)


@router.post(
    "/v1/models/{model}/events",
    status_code=202,
    dependencies=[require("ingest")],
    responses=openapi.intake_responses(openapi.EventsAccepted),
    openapi_extra=openapi.EVENTS_BODY,
)
async def post_events(model: str, request: Request) -> JSONResponse:
    """Prediction logs: one JSON object, a JSON array, or NDJSON. Bad records are
    rejected one by one; the rest are stored before the 202."""
    check_model_name(model)
    services = services_of(request)
    schema = await _schema(model, services)
    body = await _body(request, services)
    content_type = request.headers.get("content-type", "")
    stored = await _typed_events(model, schema, body, content_type, services)
    if stored is not None:
        return _answer(stored, 0, 1)
    records = await _parsed(body, content_type)
    result = await services.intake.submit(model, records, source="http", schema=schema)
    return _answer(result.as_dict(), result.rejected, len(records))


@router.post(
    "/v1/models/{model}/labels",
    status_code=202,
    dependencies=[require("ingest")],
    responses=openapi.intake_responses(openapi.LabelsAccepted),
    openapi_extra=openapi.LABELS_BODY,
)
async def post_labels(model: str, request: Request) -> JSONResponse:
    """Ground truth by event id, arriving after the predictions."""
    services, schema, records = await _known_model_records(model, request)
    result = await services.intake.submit_labels(model, records, source="http", schema=schema)
    return _answer(result.as_dict(), len(result.errors), len(records))


@router.post(
    "/v1/models/{model}/kpis",
    status_code=202,
    dependencies=[require("ingest")],
    responses=openapi.intake_responses(openapi.KpisAccepted),
    openapi_extra=openapi.KPIS_BODY,
)
async def post_kpis(model: str, request: Request) -> JSONResponse:
    """Business KPIs as [{"name", "value", "timestamp"}]: kept per model as time series
    and compared per run against the period before the window."""
    services, schema, records = await _known_model_records(model, request)
    result = await services.intake.submit_kpis(model, records, source="http", schema=schema)
    body = {
        "accepted": result.accepted,
        "rejected": result.rejected,
        "errors": result.errors[:MAX_ERRORS_ANSWERED],
    }
    return _answer(body, result.rejected, len(records))
