"""The labeling loop: annotators claim flagged samples and label them (scope `label`);
everyone with `read` sees the queue's stats and the labelers' audit.

- `GET /v1/labeling/{model}/tasks?annotator=&limit=&adjudicator=` claims the
  highest-priority tasks with a lease (the model's `lease_seconds`); a task whose lease
  ran out goes back to the queue. Claimed tasks never carry a gold label or the sample's
  ground truth; adjudicators (`adjudicator=true`) claim the tied tasks, with the
  annotations that tied.
- `POST /v1/labeling/tasks/{task_id}/annotations` answers a task (no claim needed); the
  K-th answer decides it, a tie sends it to adjudication, an adjudicator's answer settles
  it; a final label becomes the event's ground truth (the store `POST /labels` writes).
- `GET /v1/labeling/{model}/stats` and `/annotators`: agreement and the labelers' audit.

The exports and Label Studio's import are in service/routes_labeling_export.py, the
bodies in service/labeling_schemas.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError

from core.errors import UnknownModelError
from core.labeling import LabelTask
from core.stores.label_queue_errors import (
    AdjudicationPendingError,
    AlreadyAnnotatedError,
    TaskDoneError,
    UnknownTaskError,
)
from labeling.agreement import AnnotatorReport
from labeling.normalize import ANNOTATOR_PATTERN, InvalidAnnotationError
from labeling.workflow import LabelingWorkflow
from service import openapi
from service.auth import require
from service.http_util import read_capped_body, services_of, unknown_model
from service.labeling_schemas import (
    AnnotationAnswer,
    AnnotationRequest,
    AnnotatorAnswer,
    AnnotatorsAnswer,
    ClaimAnswer,
    ClaimedTask,
    LabelingStats,
)

router = APIRouter(tags=["labeling"])
ANNOTATION_BODY_MAX_BYTES = 64 * 1024
CLAIM_MAX = 100
SINCE = Query(
    None, ge=0, le=1e11, description="unix seconds: tasks annotated since then (default: all)"
)
ANNOTATION_BODY = openapi.request_body({"application/json": AnnotationRequest.model_json_schema()})


def workflow(request: Request) -> LabelingWorkflow:
    services = services_of(request)
    return LabelingWorkflow(
        services.stores.label_queue,
        services.stores.labels,
        services.stores.registry,
        services.clock,
        services.labeling_for,
        services.settings.label_ttl_seconds,
        services.metrics,
    )


@router.get(
    "/v1/labeling/{model}/tasks",
    dependencies=[require("label")],
    responses=openapi.responses(404, ok={200: ClaimAnswer}),
)
async def claim_tasks(
    model: str,
    request: Request,
    annotator: Annotated[str, Query(pattern=ANNOTATOR_PATTERN)],
    limit: Annotated[int, Query(ge=1, le=CLAIM_MAX)] = 10,
    adjudicator: bool = False,
) -> ClaimAnswer:
    """Claim up to `limit` tasks, highest priority first, each held for the model's
    `lease_seconds`: nobody else gets a task beyond its K holders meanwhile. Tasks the
    annotator answered or skipped never come back to them. Adjudicators get the tied
    tasks, with the annotations that tied."""
    try:
        claim = await workflow(request).claim(model, annotator, limit, adjudicator=adjudicator)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    return ClaimAnswer(
        tasks=[_claimed(task) for task in claim.tasks],
        lease_seconds=claim.lease_seconds,
        lease_until=claim.lease_until,
    )


def _claimed(task: LabelTask) -> ClaimedTask:
    sample = task.sample
    return ClaimedTask(
        id=task.id,
        model=task.model,
        state=task.state,
        required=task.required,
        event_id=sample.event_id,
        priority=sample.priority,
        reasons=sample.reasons,
        details=sample.details,
        timestamp=sample.timestamp,
        model_version=sample.model_version,
        features=sample.features,
        prediction=sample.prediction,
        scores=sample.scores,
        annotations=task.annotations,
        created_at=task.created_at,
        run_id=task.run_id,
    )


@router.post(
    "/v1/labeling/tasks/{task_id}/annotations",
    status_code=201,
    dependencies=[require("label")],
    responses=openapi.responses(400, 404, 409, 413, 422, ok={201: AnnotationAnswer}),
    openapi_extra=ANNOTATION_BODY,
)
async def annotate(task_id: str, request: Request) -> AnnotationAnswer:
    """Answer a task: a `label`, or `skip`. 409 when the annotator answered it already,
    when it is done, or when it awaits an adjudicator and this is no adjudicator's."""
    body = await read_capped_body(request, ANNOTATION_BODY_MAX_BYTES, "body")
    wanted = _annotation_request(body)
    try:
        task = await workflow(request).annotate(
            task_id,
            wanted.annotator,
            wanted.label,
            comment=wanted.comment,
            skip=wanted.skip,
            adjudicator=wanted.adjudicator,
        )
    except InvalidAnnotationError as exc:
        raise HTTPException(422, detail={"field": exc.field, "error": str(exc)}) from exc
    except UnknownTaskError as exc:
        raise HTTPException(404, detail={"error": str(exc)}) from exc
    except AlreadyAnnotatedError as exc:
        hint = "an annotator answers a task once"
        raise HTTPException(409, detail={"error": str(exc), "hint": hint}) from exc
    except TaskDoneError as exc:
        hint = "claim other tasks: GET /v1/labeling/{model}/tasks"
        raise HTTPException(409, detail={"error": str(exc), "hint": hint}) from exc
    except AdjudicationPendingError as exc:
        hint = 'its answers tied: only an annotation with "adjudicator": true settles it'
        raise HTTPException(409, detail={"error": str(exc), "hint": hint}) from exc
    done = task.state == "done"
    return AnnotationAnswer(
        task_id=task.id,
        model=task.model,
        state=task.state,
        required=task.required,
        answers=sum(not a.skip and not a.adjudicator for a in task.annotations),
        final_label=task.final_label if done else None,
        agreement=task.agreement if done else None,
    )


def _annotation_request(body: bytes) -> AnnotationRequest:
    try:
        return AnnotationRequest.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            400, detail={"field": "body", "error": f"invalid JSON ({exc})"}
        ) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        # the body is flat: a field's name, without the member of a union that failed
        field = str(first["loc"][0]) if first["loc"] else "body"
        message = first["msg"]
        if field == "label" and len(first["loc"]) > 1:
            message = "expected a class (text, number or boolean) or a number"
        raise HTTPException(422, detail={"field": field, "error": message}) from exc


@router.get(
    "/v1/labeling/{model}/stats",
    dependencies=[require("read")],
    responses=openapi.responses(404, ok={200: LabelingStats}),
)
async def labeling_stats(
    model: str, request: Request, since: float | None = SINCE
) -> LabelingStats:
    """The queue's counts, the label disagreement rate and the inter-annotator
    agreement coefficient (Cohen's kappa for two annotators, Fleiss' for more)."""
    try:
        stats = await workflow(request).stats(model, since)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    queue, agreement = stats.queue, stats.agreement
    return LabelingStats(
        model=model,
        open=queue.open,
        claimed=queue.claimed,
        adjudication=queue.adjudication,
        done=queue.done,
        by_reason=queue.by_reason,
        evicted_total=queue.evicted_total,
        annotated_tasks=agreement.tasks,
        disagreement_rate=agreement.disagreement_rate,
        kappa=agreement.kappa,
        kappa_method=agreement.kappa_method,
        annotators=agreement.annotators,
        mean_task_agreement=stats.mean_task_agreement,
    )


@router.get(
    "/v1/labeling/{model}/annotators",
    dependencies=[require("read")],
    responses=openapi.responses(404, ok={200: AnnotatorsAnswer}),
)
async def labeling_annotators(
    model: str, request: Request, since: float | None = SINCE
) -> AnnotatorsAnswer:
    """Per annotator: agreement with the consensus overall and per ISO week, accuracy on
    gold tasks, and Cohen's kappa against the final labels."""
    try:
        report = await workflow(request).annotators(model, since)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    return AnnotatorsAnswer(
        model=model,
        disagreement_rate=report.agreement.disagreement_rate,
        kappa=report.agreement.kappa,
        kappa_method=report.agreement.kappa_method,
        annotators=[_annotator(found) for found in report.annotators],
    )


def _annotator(found: AnnotatorReport) -> AnnotatorAnswer:
    return AnnotatorAnswer.model_validate({**asdict(found.audit), "kappa": found.kappa})
