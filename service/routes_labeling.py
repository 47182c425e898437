"""The labeling loop: annotators claim flagged samples and label them (scope `label`);
everyone with `read` sees the queue's stats, the labelers' audit and the exports.

- `GET /v1/labeling/{model}/tasks?annotator=&limit=&adjudicator=` claims the
  highest-priority tasks with a lease (the model's `lease_seconds`); a task whose lease
  ran out goes back to the queue. Claimed tasks never carry a gold label or the sample's
  ground truth; adjudicators (`adjudicator=true`) claim the tied tasks, with the
  annotations that tied.
- `POST /v1/labeling/tasks/{task_id}/annotations` answers a task (no claim needed); the
  K-th answer decides it, a tie sends it to adjudication, an adjudicator's answer settles
  it; a final label becomes the event's ground truth (the store `POST /labels` writes).
- `GET /v1/labeling/{model}/stats` and `/annotators`: agreement and the labelers' audit.
- `GET /v1/labeling/{model}/export?format=labelstudio|parquet|manifest&errors_only=`:
  Label Studio tasks with their labeling config (open tasks), or the dataset of done
  tasks as Parquet, with its manifest as JSON under `format=manifest`: the same content
  gives the same `content_hash`, which the Parquet answer carries in a header.
- `POST /v1/labeling/{model}/import`: Label Studio's JSON export back as annotations."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import UnknownModelError
from core.labeling import Annotation, FlagReason, Label, LabelTask, TaskState
from core.stores.label_queue import (
    AdjudicationPendingError,
    AlreadyAnnotatedError,
    TaskDoneError,
    UnknownTaskError,
)
from labeling.dataset import Manifest
from labeling.workflow import (
    ANNOTATOR_PATTERN,
    AnnotatorReport,
    ImportOutcome,
    InvalidAnnotationError,
    KappaMethod,
    LabelingWorkflow,
)
from service import openapi
from service.auth import require
from service.http_util import read_capped_body, services_of, unknown_model

router = APIRouter(tags=["labeling"])
ANNOTATION_BODY_MAX_BYTES = 64 * 1024
PARQUET = "application/vnd.apache.parquet"
CLAIM_MAX = 100
EXPORT_MAX = 100_000
SINCE = Query(
    None, ge=0, le=1e11, description="unix seconds: tasks annotated since then (default: all)"
)


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


# --- answers and bodies ----------------------------------------------------------------------


class ClaimedTask(BaseModel):
    """A task as an annotator sees it: the sample and why it was flagged, not its answer."""

    id: str
    model: str
    state: TaskState
    required: int = Field(description="annotations the task needs (K)")
    event_id: str
    priority: float = Field(description="higher first")
    reasons: list[FlagReason]
    details: list[str]
    timestamp: float
    model_version: str | None
    features: dict[str, float | str | None]
    prediction: Label | None
    scores: dict[str, float]
    annotations: list[Annotation] = Field(description="the tied answers, for adjudicators")
    created_at: float
    run_id: str


class ClaimAnswer(BaseModel):
    tasks: list[ClaimedTask] = Field(description="highest priority first")
    lease_seconds: float
    lease_until: float = Field(description="unix seconds: the tasks go back to the queue then")


class AnnotationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    annotator: str = Field(pattern=ANNOTATOR_PATTERN, description="1-128 printable characters")
    label: Label | None = Field(default=None, description="required unless `skip`")
    comment: str = Field(default="", max_length=2000)
    skip: bool = Field(default=False, description="pass on the task: it goes to someone else")
    adjudicator: bool = Field(default=False, description="settles a tied task")


class AnnotationAnswer(BaseModel):
    task_id: str
    model: str
    state: TaskState
    required: int
    answers: int = Field(description="non-skip annotations of annotators (not adjudicators)")
    final_label: Label | None = Field(description="once done")
    agreement: float | None = Field(description="once done: answers equal to the final label")


class LabelingStats(BaseModel):
    model: str
    open: int
    claimed: int = Field(description="unfinished tasks with a live claim")
    adjudication: int
    done: int
    by_reason: dict[str, int] = Field(description="unfinished tasks per flag reason")
    evicted_total: int
    annotated_tasks: int = Field(description="tasks with an annotation since `since`")
    disagreement_rate: float | None = Field(description="split tasks of those with 2+ answers")
    kappa: float | None
    kappa_method: KappaMethod | None = Field(
        description="cohen for two annotators in all, fleiss for more"
    )
    annotators: int
    mean_task_agreement: float | None = Field(description="mean agreement of the done tasks")


class AnnotatorWeekAnswer(BaseModel):
    week: str = Field(description='ISO week, "2027-W03"')
    week_start: date
    answers: int
    skips: int
    compared: int = Field(description="answers on tasks whose consensus rests on 2+ answers")
    agreed: int
    agreement: float | None
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None


class AnnotatorAnswer(BaseModel):
    annotator: str
    answers: int
    skips: int
    compared: int
    agreed: int
    agreement: float | None = Field(description="agreed / compared: with the consensus")
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None
    kappa: float | None = Field(description="Cohen's kappa against the final labels")
    weeks: list[AnnotatorWeekAnswer] = Field(description="oldest first")


class AnnotatorsAnswer(BaseModel):
    model: str
    disagreement_rate: float | None
    kappa: float | None
    kappa_method: KappaMethod | None
    annotators: list[AnnotatorAnswer] = Field(description="sorted by name")


class LabelStudioAnswer(BaseModel):
    label_config: str = Field(description="the labeling config (XML) of the project")
    tasks: list[dict[str, Any]] = Field(description="Label Studio's task import format")


class ImportedAnswer(BaseModel):
    index: int
    task_id: str
    annotator: str
    outcome: ImportOutcome
    state: TaskState | None = None
    error: str | None = None


class ImportAnswer(BaseModel):
    received: int = Field(description="annotations in the export")
    imported: int
    results: list[ImportedAnswer] = Field(description="one per annotation, in order")


ANNOTATION_BODY = openapi.request_body({"application/json": AnnotationRequest.model_json_schema()})
IMPORT_BODY = openapi.request_body(
    {
        "application/json": {
            "type": "array",
            "description": "Label Studio's JSON export of tasks exported here",
            "items": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {"type": "object"},
                    "annotations": {"type": "array", "items": {"type": "object"}},
                },
            },
        }
    }
)


def _export_responses() -> dict[int | str, dict[str, Any]]:
    answers = openapi.responses(404, 409)
    answers[200] = {
        "model": LabelStudioAnswer | Manifest,
        "description": "labelstudio or manifest: JSON; parquet: the dataset's file",
        "content": {PARQUET: {"schema": openapi.BINARY}},
    }
    return answers


# --- routes --------------------------------------------------------------------------------


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


@router.get(
    "/v1/labeling/{model}/export",
    dependencies=[require("read")],
    response_model=None,
    responses=_export_responses(),
)
async def export(
    model: str,
    request: Request,
    format: Literal["labelstudio", "parquet", "manifest"] = "labelstudio",
    errors_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=EXPORT_MAX)] = 10_000,
) -> Response:
    """`labelstudio`: the open tasks (highest priority first, at most `limit`) in Label
    Studio's import format, pre-annotated with the model's prediction, and the labeling
    config to create the project with; `errors_only`: the tasks flagged as production
    errors alone. `parquet`: the newest `limit` done tasks with their final labels as a
    Parquet file, its content hash in `X-Dataset-Content-Hash`; `manifest`: the same
    dataset's manifest (lineage, label counts, `content_hash`) as JSON. `errors_only`:
    the rows whose final label differs from the model's prediction."""
    flow = workflow(request)
    try:
        if format == "labelstudio":
            try:
                found = await flow.export_labelstudio(model, limit, errors_only=errors_only)
            except ValueError as exc:  # no label class known yet
                hint = "upload a reference with score columns or wait for predictions"
                raise HTTPException(409, detail={"error": str(exc), "hint": hint}) from exc
            answer = LabelStudioAnswer(label_config=found.label_config, tasks=found.tasks)
            return JSONResponse(answer.model_dump(mode="json"))
        try:
            dataset = await flow.export_dataset(model, limit, errors_only=errors_only)
        except ValueError as exc:  # a final label the model's schema cannot hold
            raise HTTPException(409, detail={"error": str(exc)}) from exc
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    manifest = dataset.manifest
    if format == "manifest":
        return JSONResponse(manifest.model_dump(mode="json"))
    digest = manifest.content_hash.removeprefix("sha256:")
    suffix = "-errors" if errors_only else ""
    headers = {
        "Content-Disposition": f'attachment; filename="labels-{digest[:12]}{suffix}.parquet"',
        "X-Dataset-Content-Hash": manifest.content_hash,
        "X-Dataset-Rows": str(manifest.rows),
        "X-Dataset-Reference-Version": manifest.reference_version,
    }
    return Response(dataset.parquet, media_type=PARQUET, headers=headers)


@router.post(
    "/v1/labeling/{model}/import",
    dependencies=[require("label")],
    responses=openapi.responses(400, 404, 413, 422, ok={200: ImportAnswer}),
    openapi_extra=IMPORT_BODY,
)
async def import_labelstudio(model: str, request: Request) -> ImportAnswer:
    """Label Studio's JSON export of tasks exported here: each annotation is answered as
    through `POST /v1/labeling/tasks/{task_id}/annotations` (annotator: the user's email,
    else id; a cancelled annotation is a skip), with one outcome each. A malformed export
    imports nothing (422 naming the field). Capped like event bodies."""
    services = services_of(request)
    body = await read_capped_body(
        request, services.settings.events_max_bytes, "DRIFTMON_EVENTS_MAX_BYTES"
    )
    try:
        exported = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            400, detail={"field": "body", "error": f"invalid JSON ({exc})"}
        ) from exc
    try:
        results = await workflow(request).import_labelstudio(model, exported)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    except ValueError as exc:
        field, _, error = str(exc).partition(": ")
        raise HTTPException(422, detail={"field": field, "error": error or str(exc)}) from exc
    return ImportAnswer(
        received=len(results),
        imported=sum(result.outcome == "imported" for result in results),
        results=[ImportedAnswer.model_validate(asdict(result)) for result in results],
    )
