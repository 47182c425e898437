"""KServe and Seldon inference-logger CloudEvents. The loggers never retry: answer fast,
with 200 for anything that is a CloudEvent. With API keys configured they need an
`ingest` key like any intake (a logger that cannot send one needs a proxy that adds it).

What is not a CloudEvent is a 400; a CloudEvent whose inference payload is malformed
is a 422 naming the field (in a batch, that event's result says "invalid" and the
others go on; a batch of nothing but such events is a 422)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from collectors.cloudevents import CloudEvent, CloudEventError, from_http
from service import openapi
from service.auth import require
from service.http_util import read_capped_body, services_of
from service.state import Services

router = APIRouter(tags=["intake"])


@router.post(
    "/v1/cloudevents",
    dependencies=[require("ingest")],
    response_model=None,
    responses=openapi.responses(
        400, 413, 422, ok={200: openapi.CloudEventOutcome | openapi.CloudEventBatch}
    ),
    openapi_extra=openapi.CLOUDEVENTS_BODY,
)
async def post_cloudevents(request: Request) -> dict[str, Any]:
    """Binary mode (ce-* headers), structured (application/cloudevents+json) or batch."""
    services = services_of(request)
    body = await read_capped_body(
        request, services.settings.events_max_bytes, "DRIFTMON_EVENTS_MAX_BYTES"
    )
    try:
        received = from_http(request.headers, body)
    except CloudEventError as exc:
        services.metrics.count_cloudevent("other", "invalid")
        raise HTTPException(400, detail={"field": exc.field, "error": str(exc)}) from exc
    now = services.clock.now()
    if not received.batch:
        return await _handle(services, received.events[0], now)
    outcomes = [
        await _outcome(services, index, event, now) for index, event in enumerate(received.events)
    ]
    results = [result for result, _ in outcomes]
    if outcomes and all(refused for _, refused in outcomes):  # nothing in it was usable
        raise HTTPException(422, detail={**_error_of(results[0]), "results": results})
    return {"results": results}


async def _handle(services: Services, event: CloudEvent, now: float) -> dict[str, Any]:
    """One event: its outcome, or a 422 when the event itself is malformed."""
    try:
        return await services.cloudevents.handle(event, now)
    except CloudEventError as exc:
        detail = {"field": exc.field, "error": str(exc), "id": event.id}
        raise HTTPException(422, detail=detail) from exc


async def _outcome(
    services: Services, index: int, event: CloudEvent, now: float
) -> tuple[dict[str, Any], bool]:
    """One event of a batch and whether it was refused: a malformed event is reported
    in its result, by index, and the others go on."""
    try:
        return await services.cloudevents.handle(event, now), False
    except CloudEventError as exc:
        field = f"[{index}].{exc.field}"
        result = {"id": event.id, "status": "invalid", "field": field, "error": str(exc)}
        return result, True


def _error_of(result: dict[str, Any]) -> dict[str, Any]:
    return {"field": result["field"], "error": result["error"]}
