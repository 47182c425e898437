"""Detection runs: run now, history, the HTML report of a run and its drift-history plot."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from core.errors import ReportUnavailableError, UnknownModelError
from core.results import RunResult
from detectors.runner import RunQueueFullError
from service import openapi
from service.auth import require
from service.http_util import services_of, unknown_model
from service.plots import drift_history_png
from service.report_summary import summary_html, with_summary
from service.state import Services

router = APIRouter(tags=["runs"])
# the most runs one drift-history picture draws (DRIFTMON_RUN_HISTORY keeps 200 by default)
PLOT_MAX_RUNS = 200


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
        raise run_not_found(model, run_id)
    return result


@router.get(
    "/v1/models/{model}/runs/{run_id}/report",
    response_class=HTMLResponse,
    dependencies=[require("read")],
    responses=openapi.responses(404, 409, by_reference=True),
)
async def run_report(model: str, run_id: str, request: Request) -> HTMLResponse:
    """The run's summary (every part of its result, the drift history picture), then
    Evidently's HTML report of the run, built on first request and cached."""
    services = services_of(request)
    try:
        html = await services.runner.report_html(model, run_id)
    except UnknownModelError as exc:
        raise run_not_found(model, run_id) from exc
    except ReportUnavailableError as exc:
        raise HTTPException(409, detail={"error": str(exc)}) from exc
    result = await services.stores.runs.get(model, run_id)
    if result is None:  # trimmed from the history since the report was read
        raise run_not_found(model, run_id)
    return HTMLResponse(with_summary(html, summary_html(result)))


@router.get(
    "/v1/models/{model}/runs/{run_id}/plot.png",
    response_class=Response,
    dependencies=[require("read")],
    responses={
        200: {"content": {"image/png": {"schema": openapi.BINARY}}},
        **openapi.responses(404, by_reference=True),
    },
)
async def run_plot(
    model: str,
    run_id: str,
    request: Request,
    last: Annotated[int, Query(ge=1, le=PLOT_MAX_RUNS, description="runs drawn")] = 30,
) -> Response:
    """The drift scores of the model's runs up to this one (the `last` of them, oldest
    first) against their thresholds, as a PNG: the dataset-drift share, then a panel per
    column that drifted; runs with dataset drift shaded."""
    services = services_of(request)
    if await services.stores.registry.schema(model) is None:
        raise unknown_model(model)
    runs = await history_up_to(services, model, run_id, last)
    if not runs:
        raise run_not_found(model, run_id)
    # matplotlib is CPU work: off the event loop, as the service does with its other CPU work
    png = await asyncio.to_thread(drift_history_png, runs, title=plot_title(model, runs))
    return Response(png, media_type="image/png")


async def history_up_to(services: Services, model: str, run_id: str, last: int) -> list[RunResult]:
    """The `last` runs ending with `run_id`, oldest first. The newest run (the usual case:
    the latest report, a fresh alert) costs one read of `last` runs; an older one reads
    the whole history, capped at DRIFTMON_RUN_HISTORY runs."""
    newest = await services.stores.runs.recent(model, last)
    if newest and newest[0].run_id == run_id:
        return newest[::-1]
    history = await services.stores.runs.recent(model, services.settings.run_history)
    return runs_up_to(history, run_id, last)


def runs_up_to(newest_first: list[RunResult], run_id: str, last: int) -> list[RunResult]:
    """The `last` runs ending with `run_id`, oldest first; none when it is not there."""
    position = next((i for i, run in enumerate(newest_first) if run.run_id == run_id), None)
    if position is None:
        return []
    return newest_first[position : position + last][::-1]


def plot_title(model: str, runs: list[RunResult]) -> str:
    count = "1 run" if len(runs) == 1 else f"the last {len(runs)} runs"
    return f"{model}: drift over {count}, up to run {runs[-1].run_id}"


def run_not_found(model: str, run_id: str) -> HTTPException:
    return HTTPException(404, detail={"error": f"run {run_id!r} of {model!r} not found"})
