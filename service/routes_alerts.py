"""Alerts and silences: what is firing, and who should not hear about it for a while."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from core.alert_config import RULE_NAME
from core.alerts import AlertState, Silence
from core.config import MODEL_NAME_PATTERN
from core.stores.alerts import SilenceLimitError
from service import openapi
from service.auth import require
from service.http_util import read_capped_body, services_of, unknown_model

router = APIRouter(tags=["alerts"])
SILENCE_BODY_MAX_BYTES = 16 * 1024
AlertStateName = Literal["pending", "firing", "resolved"]


class AlertList(BaseModel):
    alerts: list[AlertState]


class SilenceRequest(BaseModel):
    """A silence: the alert still changes state, nobody is notified until `until`."""

    model: str = Field(pattern=MODEL_NAME_PATTERN.pattern)
    rule: str = Field(pattern=RULE_NAME)
    column: str | None = Field(default=None, max_length=256, description="default: every column")
    until: AwareDatetime = Field(description="ISO 8601 with an offset, in the future")
    comment: str = Field(default="", max_length=1000)


class SilenceList(BaseModel):
    silences: list[Silence]


SILENCE_BODY = openapi.request_body(
    {"application/json": {"schema": SilenceRequest.model_json_schema()}}
)


@router.get(
    "/v1/alerts",
    dependencies=[require("read")],
    responses=openapi.responses(ok={200: AlertList}),
)
async def list_alerts(
    request: Request,
    model: Annotated[str | None, Query(pattern=MODEL_NAME_PATTERN.pattern)] = None,
    state: Annotated[AlertStateName | None, Query()] = None,
) -> AlertList:
    """Every alert that is pending, firing or resolved, with since when, its last run
    and the value and threshold that drove it."""
    store = services_of(request).stores.alerts
    states = None if state is None else [state]
    found = await store.list(model, states)
    return AlertList(alerts=[alert for alert in found if alert.state != "inactive"])


@router.post(
    "/v1/silences",
    status_code=201,
    dependencies=[require("admin")],
    responses=openapi.responses(400, 404, 409, 422, ok={201: Silence}),
    openapi_extra=SILENCE_BODY,
)
async def create_silence(request: Request) -> Silence:
    services = services_of(request)
    wanted = _silence_request(await read_capped_body(request, SILENCE_BODY_MAX_BYTES, "body"))
    now = datetime.fromtimestamp(services.clock.now(), UTC)
    if wanted.until <= now:
        raise HTTPException(422, detail={"field": "until", "error": "must be in the future"})
    if await services.stores.registry.schema(wanted.model) is None:
        raise unknown_model(wanted.model)
    rules = {rule.name for rule in services.alerting_for(wanted.model).rules}
    if wanted.rule not in rules:
        detail = {"field": "rule", "error": f"model {wanted.model!r} has no rule {wanted.rule!r}"}
        raise HTTPException(422, detail={**detail, "hint": f"its rules: {sorted(rules)}"})
    silence = Silence(
        id=uuid.uuid4().hex,
        created_at=now,
        **wanted.model_dump(exclude={"until"}),
        until=wanted.until.astimezone(UTC),
    )
    try:
        await services.stores.alerts.add_silence(silence)
    except SilenceLimitError as exc:
        raise HTTPException(409, detail={"error": str(exc), "hint": "delete old silences"}) from exc
    return silence


def _silence_request(body: bytes) -> SilenceRequest:
    try:
        return SilenceRequest.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            400, detail={"field": "body", "error": f"invalid JSON ({exc})"}
        ) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise HTTPException(422, detail={"field": field, "error": first["msg"]}) from exc


@router.get(
    "/v1/silences",
    dependencies=[require("read")],
    responses=openapi.responses(ok={200: SilenceList}),
)
async def list_silences(request: Request) -> SilenceList:
    """The silences still in force."""
    services = services_of(request)
    now = datetime.fromtimestamp(services.clock.now(), UTC)
    return SilenceList(silences=await services.stores.alerts.silences(now))


@router.delete(
    "/v1/silences/{silence_id}",
    status_code=204,
    dependencies=[require("admin")],
    responses=openapi.responses(404),
)
async def delete_silence(silence_id: str, request: Request) -> Response:
    if not await services_of(request).stores.alerts.delete_silence(silence_id):
        raise HTTPException(404, detail={"error": f"no silence {silence_id!r}"})
    return Response(status_code=204)
