"""Prometheus exposition, liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.http_util import services_of
from service.metrics import ModelSnapshot

router = APIRouter(tags=["operations"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    services = services_of(request)
    snapshots = {
        model: ModelSnapshot(
            latest=await services.stores.runs.latest(model),
            latest_ok=await services.stores.runs.latest(model, ok_only=True),
            schedule_seconds=services.config_for(model).schedule_seconds,
        )
        for model in await services.stores.registry.names()
    }
    services.metrics.latest.update(snapshots)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    try:
        await services_of(request).redis.ping()
    except Exception as exc:  # any Redis failure means not ready
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "redis": "ok"})
