"""Prometheus exposition, liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service import openapi
from service.auth import require_metrics
from service.http_util import services_of

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    dependencies=[require_metrics()],
    response_class=PlainTextResponse,
    responses=openapi.responses(by_reference=True),
)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    models = await services.stores.registry.names()
    now = services.clock.now()
    await services.metrics.refresh_latest(
        services.stores.runs,
        services.stores.registry,
        models,
        lambda model: services.config_for(model).schedule_seconds,
        now,
    )
    await services.metrics.refresh_alerts(now)
    await services.metrics.refresh_labeling(now, models)
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=openapi.Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=openapi.READINESS)
async def readyz(request: Request) -> JSONResponse:
    """Redis answers, the detection pool has warmed up since start, and the stream
    consumer runs (when streams are configured): a replica whose consumer is down
    between restarts is taken out of rotation."""
    services = services_of(request)
    try:
        await services.redis.ping()
    except Exception as exc:  # any Redis failure means not ready
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    body: dict[str, str] = {"status": "ok", "redis": "ok"}
    warmup = services.pool_warmup
    if warmup is not None and not warmup.finished:
        warming = {**body, "status": "unavailable", "detection_pool": "warming"}
        return JSONResponse(warming, status_code=503)
    supervisor = services.stream_supervisor
    if supervisor is None:  # no streams configured
        return JSONResponse(body)
    if supervisor.up:
        return JSONResponse({**body, "stream_consumer": "ok"})
    down = {**body, "status": "unavailable", "stream_consumer": "down"}
    if supervisor.last_error is not None:
        down["stream_consumer_error"] = supervisor.last_error
    return JSONResponse(down, status_code=503)
