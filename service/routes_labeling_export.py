"""The labeling loop's way out and back in: exports (scope `read`) and Label Studio's
import (scope `label`).

- `GET /v1/labeling/{model}/export?format=labelstudio|parquet|manifest&errors_only=`:
  Label Studio tasks with their labeling config (open tasks), or the dataset of done
  tasks as Parquet, with its manifest as JSON under `format=manifest`: the same content
  gives the same `content_hash`, which the Parquet answer carries in a header.
- `POST /v1/labeling/{model}/import`: Label Studio's JSON export back as annotations."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from core.errors import UnknownModelError
from labeling.dataset import Dataset, Manifest
from labeling.workflow import LabelingWorkflow
from service import openapi
from service.auth import require
from service.http_util import read_capped_body, services_of, unknown_model
from service.labeling_schemas import ImportAnswer, ImportedAnswer, LabelStudioAnswer
from service.routes_labeling import workflow

router = APIRouter(tags=["labeling"])
PARQUET = "application/vnd.apache.parquet"
EXPORT_MAX = 100_000
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
            return await _labelstudio_export(flow, model, limit, errors_only)
        dataset = await _dataset_export(flow, model, limit, errors_only)
    except UnknownModelError as exc:
        raise unknown_model(model) from exc
    if format == "manifest":
        return JSONResponse(dataset.manifest.model_dump(mode="json"))
    return _parquet_answer(dataset, errors_only)


async def _labelstudio_export(
    flow: LabelingWorkflow, model: str, limit: int, errors_only: bool
) -> Response:
    try:
        found = await flow.export_labelstudio(model, limit, errors_only=errors_only)
    except ValueError as exc:  # no label class known yet
        hint = "upload a reference with score columns or wait for predictions"
        raise HTTPException(409, detail={"error": str(exc), "hint": hint}) from exc
    answer = LabelStudioAnswer(label_config=found.label_config, tasks=found.tasks)
    return JSONResponse(answer.model_dump(mode="json"))


async def _dataset_export(
    flow: LabelingWorkflow, model: str, limit: int, errors_only: bool
) -> Dataset:
    try:
        return await flow.export_dataset(model, limit, errors_only=errors_only)
    except ValueError as exc:  # a final label the model's schema cannot hold
        raise HTTPException(409, detail={"error": str(exc)}) from exc


def _parquet_answer(dataset: Dataset, errors_only: bool) -> Response:
    manifest = dataset.manifest
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
