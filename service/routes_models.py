"""Models and their training references."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from core.config import pii_policy
from core.dataset_audit import AuditSummary
from core.stores.registry import ModelLimitError, ModelRecord, ReferenceInfo
from detectors.dataset_audit import audit_reference
from detectors.reference import (
    PreparedReference,
    ReferenceError,
    ReferencePolicy,
    ReferenceRoles,
    ReferenceTooWideError,
    prepare_reference,
    to_parquet,
)
from service import openapi
from service.auth import require
from service.http_util import check_model_name, read_capped_body, services_of, unknown_model
from service.state import Services
from service.wiring import pii_key

log = logging.getLogger(__name__)
router = APIRouter(tags=["models"])


def _names(raw: str | None) -> list[str]:
    return [name.strip() for name in (raw or "").split(",") if name.strip()]


class ReferenceQuery(BaseModel):
    """The columns' roles in an uploaded reference, as query parameters."""

    prediction: str | None = Field(None, description="prediction column")
    scores: str | None = Field(None, description="score column, or column:class pairs")
    label: str | None = Field(None, description="ground-truth column")
    categorical: str | None = Field(None, description="comma-separated categorical columns")
    numerical: str | None = Field(None, description="comma-separated numerical columns")
    event_id: str | None = Field(None, description="event id column")
    positive_class: str | None = Field(None, description="class whose probability is scored")

    def roles(self) -> ReferenceRoles:
        return ReferenceRoles(
            prediction=self.prediction,
            scores=self.scores,
            label=self.label,
            event_id=self.event_id,
            positive_class=self.positive_class,
            categorical=_names(self.categorical),
            numerical=_names(self.numerical),
        )


def _too_many_models(exc: ModelLimitError) -> HTTPException:
    detail = {
        "error": str(exc),
        "hint": "delete a model (DELETE /v1/models/{model}) or raise the setting",
        "setting": "DRIFTMON_MAX_MODELS",
        "max_models": exc.max_models,
    }
    return HTTPException(409, detail=detail)


@router.put(
    "/v1/models/{model}/reference",
    status_code=201,
    dependencies=[require("admin")],
    responses=openapi.responses(400, 409, 413, 422, ok={201: openapi.ReferenceUploaded}),
    openapi_extra=openapi.REFERENCE_BODY,
)
async def put_reference(
    model: str, request: Request, query: Annotated[ReferenceQuery, Query()]
) -> JSONResponse:
    """Upload a training reference (CSV or Parquet). Creates the model if new; the
    upload becomes the active reference."""
    check_model_name(model)
    services = services_of(request)
    body = await read_capped_body(
        request, services.settings.reference_max_bytes, "DRIFTMON_REFERENCE_MAX_BYTES"
    )
    prepared = await _prepare(services, model, body, query.roles())
    parquet, audit = await asyncio.gather(
        asyncio.to_thread(to_parquet, prepared.frame), asyncio.to_thread(_audit, model, prepared)
    )
    info = ReferenceInfo(
        version=prepared.version,
        rows=prepared.rows,
        columns=prepared.schema.columns(),
        uploaded_at=services.clock.now(),
        ignored=prepared.ignored,
    )
    registry = services.stores.registry
    try:  # a new model beyond DRIFTMON_MAX_MODELS is refused; a new reference never is
        created = await registry.put_reference(
            model,
            prepared.schema,
            info,
            parquet,
            max_models=services.settings.max_models,
            audit=audit,
        )
    except ModelLimitError as exc:
        raise _too_many_models(exc) from exc
    services.metrics.reference_uploads.labels(model).inc()
    services.scheduler.ensure(model, services.config_for(model).schedule_seconds)
    body_out = {"model": model, "created": created, **asdict(info), "audit": _dumped(audit)}
    return JSONResponse(body_out, status_code=201)


def _audit(model: str, prepared: PreparedReference) -> AuditSummary | None:
    """The reference's audit summary (CPU work: called in a thread). The audit is advice:
    data it cannot judge never refuses an upload that is otherwise good."""
    try:
        return audit_reference(prepared.frame, prepared.schema).summary()
    except Exception:  # pandas and numpy raise many types on odd data
        log.exception("reference of %s: the audit failed; stored without one", model)
        return None


def _dumped(audit: AuditSummary | None) -> dict[str, Any] | None:
    return None if audit is None else audit.model_dump(mode="json")


async def _prepare(
    services: Services, model: str, body: bytes, roles: ReferenceRoles
) -> PreparedReference:
    """The upload parsed under the models file's PII policy and the column cap. The
    policy is recorded in the schema, so intake on every replica applies it."""
    settings = services.settings
    policy = ReferencePolicy(
        pii=pii_policy(services.config_for(model).columns),
        pii_key=pii_key(settings),
        max_columns=settings.reference_max_columns,
    )
    try:
        return await asyncio.to_thread(prepare_reference, body, roles, policy)
    except ReferenceTooWideError as exc:
        setting = "DRIFTMON_REFERENCE_MAX_COLUMNS"
        detail = {"field": exc.field, "error": str(exc), "cap_columns": exc.cap, "setting": setting}
        raise HTTPException(413, detail=detail) from exc
    except ReferenceError as exc:
        raise HTTPException(400, detail={"field": exc.field, "error": str(exc)}) from exc


async def _describe(services: Services, record: ModelRecord) -> dict[str, Any]:
    config = services.config_for(record.name)
    latest = await services.stores.runs.latest(record.name)
    window_events = await services.stores.events.count_since(
        record.name, services.clock.now() - config.window_seconds, config.window_max_events
    )
    return {
        "name": record.name,
        "schema": record.schema.to_dict(),
        "columns": record.schema.columns(),
        "active_reference": record.active_version,
        "references": [asdict(info) for info in record.references],
        "created_at": record.created_at,
        "schedule_seconds": config.schedule_seconds,
        "window": {
            "seconds": config.window_seconds,
            "max_events": config.window_max_events,
            "min_events": config.min_window_events,
            "events": window_events,
        },
        "stored_events": await services.stores.events.total_events(record.name),
        "latest_run": None
        if latest is None
        else {"run_id": latest.run_id, "status": latest.status, "started_at": latest.started_at},
        "audit": _dumped(record.audit),
        "firing_alerts": [
            alert.model_dump(mode="json")
            for alert in await services.stores.alerts.list(record.name, ["firing"])
        ],
    }


@router.get(
    "/v1/models",
    dependencies=[require("read")],
    response_model=None,
    responses=openapi.responses(ok={200: openapi.ModelList}),
)
async def list_models(request: Request) -> dict[str, Any]:
    services = services_of(request)
    models = []
    for name in await services.stores.registry.names():
        record = await services.stores.registry.get(name)
        if record is not None:
            models.append(
                {
                    "name": name,
                    "active_reference": record.active_version,
                    "features": len(record.schema.features),
                }
            )
    return {"models": models}


@router.get(
    "/v1/models/{model}",
    dependencies=[require("read")],
    response_model=None,
    responses=openapi.responses(404, ok={200: openapi.ModelDescription}),
)
async def get_model(model: str, request: Request) -> dict[str, Any]:
    services = services_of(request)
    record = await services.stores.registry.get(model)
    if record is None:
        raise unknown_model(model)
    return await _describe(services, record)


@router.delete(
    "/v1/models/{model}",
    status_code=204,
    dependencies=[require("admin")],
    responses=openapi.responses(404, 422),
)
async def delete_model(model: str, request: Request) -> Response:
    """Remove the model and everything kept for it (references, events, labels, runs,
    reports, KPIs, alert states and silences), its scheduled detection and its series in
    this process's metrics. Notifications already written are still delivered."""
    check_model_name(model)
    services = services_of(request)
    if not await services.stores.registry.delete(model):
        raise unknown_model(model)
    await services.stores.alerts.forget_model(model)
    await services.stores.label_queue.forget_model(model)
    services.scheduler.unschedule(model)
    services.metrics.forget_model(model)
    return Response(status_code=204)
