"""KServe and Seldon inference-logger CloudEvents. The loggers never retry: answer fast,
with 200 for anything that is a CloudEvent. With API keys configured they need an
`ingest` key like any intake (a logger that cannot send one needs a proxy that adds it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from collectors.cloudevents import CloudEventError, from_http
from service.auth import require
from service.http_util import read_capped_body, services_of

router = APIRouter(tags=["intake"])


@router.post("/v1/cloudevents", dependencies=[require("ingest")])
async def post_cloudevents(request: Request) -> dict[str, Any]:
    """Binary mode (ce-* headers), structured (application/cloudevents+json) or batch."""
    services = services_of(request)
    body = await read_capped_body(
        request, services.settings.events_max_bytes, "DRIFTMON_EVENTS_MAX_BYTES"
    )
    try:
        events = from_http(request.headers, body)
    except CloudEventError as exc:
        services.metrics.count_cloudevent("other", "invalid")
        raise HTTPException(400, detail={"field": exc.field, "error": str(exc)}) from exc
    now = services.clock.now()
    results = [await services.cloudevents.handle(event, now) for event in events]
    return results[0] if len(results) == 1 else {"results": results}
