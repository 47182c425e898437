"""Prometheus exposition, liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detectors.result import RunResult
from service.http_util import services_of

router = APIRouter(tags=["operations"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    services = services_of(request)
    latest: dict[str, RunResult] = {}
    latest_ok: dict[str, RunResult] = {}
    for model in await services.registry.names():
        result = await services.runs.latest(model)
        if result is not None:
            latest[model] = result
        ok = await services.runs.latest(model, ok_only=True)
        if ok is not None:
            latest_ok[model] = ok
    services.metrics.latest.update(latest, latest_ok)
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
