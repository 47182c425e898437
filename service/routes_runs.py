"""Detection runs: run now, history, and the HTML report of a run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from core.errors import ReportUnavailableError, UnknownModelError
from core.results import RunResult
from detectors.runner import RunQueueFullError
from service import openapi
from service.auth import require
from service.http_util import services_of, unknown_model

router = APIRouter(tags=["runs"])


@router.post(
    "/v1/models/{model}/runs",
    dependencies=[require("admin")],
    responses=openapi.responses(404, 429, ok={200: openapi.RunAnswer}),
)
async def run_now(model: str, request: Request) -> RunResult:
    """Run detection now; joined to the model's run in flight, if any. 429 while
    DRIFTMON_MAX_QUEUED_RUNS runs are in flight, with Retry-After."""
    services = services_of(request)
    try:
        result = await services.runner.run_manual(model)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    except RunQueueFullError as exc:
        detail = {
            "error": str(exc),
            "hint": "retry after the Retry-After seconds, or raise the setting",
            "setting": "DRIFTMON_MAX_QUEUED_RUNS",
        }
        headers = {"Retry-After": str(exc.retry_after)}
        raise HTTPException(429, detail=detail, headers=headers) from exc
    return result


@router.get(
    "/v1/models/{model}/runs",
    dependencies=[require("read")],
    response_model=None,
    responses=openapi.responses(404, ok={200: openapi.RunList}),
)
async def list_runs(
    model: str, request: Request, limit: int = Query(20, ge=1, le=1000)
) -> dict[str, Any]:
    services = services_of(request)
    if await services.stores.registry.schema(model) is None:
        raise unknown_model(model)
    runs = await services.stores.runs.recent(model, limit)
    return {"runs": [run.model_dump() for run in runs]}


@router.get(
    "/v1/models/{model}/runs/latest",
    dependencies=[require("read")],
    responses=openapi.responses(404, ok={200: openapi.RunAnswer}),
)
async def latest_run(model: str, request: Request) -> RunResult:
    services = services_of(request)
    result = await services.stores.runs.latest(model)
    if result is None:
        raise HTTPException(404, detail={"error": f"model {model!r} has no runs yet"})
    return result


@router.get(
    "/v1/models/{model}/runs/latest/report",
    response_class=HTMLResponse,
    dependencies=[require("read")],
    responses=openapi.responses(404, 409, by_reference=True),
)
async def latest_report(model: str, request: Request) -> HTMLResponse:
    """The report of the newest successful run: a stable link for alerts and dashboards."""
    latest = await services_of(request).stores.runs.latest(model, ok_only=True)
    if latest is None:
        raise HTTPException(404, detail={"error": f"model {model!r} has no successful run yet"})
    return await run_report(model, latest.run_id, request)


@router.get(
    "/v1/models/{model}/runs/{run_id}",
    dependencies=[require("read")],
    responses=openapi.responses(404, ok={200: openapi.RunAnswer}),
)
async def get_run(model: str, run_id: str, request: Request) -> RunResult:
    result = await services_of(request).stores.runs.get(model, run_id)
    if result is None:
        raise HTTPException(404, detail={"error": f"run {run_id!r} of {model!r} not found"})
    return result


@router.get(
    "/v1/models/{model}/runs/{run_id}/report",
    response_class=HTMLResponse,
    dependencies=[require("read")],
    responses=openapi.responses(404, 409, by_reference=True),
)
async def run_report(model: str, run_id: str, request: Request) -> HTMLResponse:
    """Evidently's HTML report of the run, built on first request and cached."""
    try:
        html = await services_of(request).runner.report_html(model, run_id)
    except UnknownModelError as exc:
        raise HTTPException(
            404, detail={"error": f"run {run_id!r} of {model!r} not found"}
        ) from exc
    except ReportUnavailableError as exc:
        raise HTTPException(409, detail={"error": str(exc)}) from exc
    return HTMLResponse(html)
