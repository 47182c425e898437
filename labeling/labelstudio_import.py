"""Label Studio's JSON export read back, pure: the annotations of tasks that
labelstudio.py exported, each with the driftmon task it belongs to. A malformed export
raises ValueError naming the field (e.g. `tasks[3].annotations[0].completed_by`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from core.labeling import Annotation, Label
from labeling.labelstudio import CONTROL, TASK_ID_KEY


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _task_id(task: Mapping[str, Any], where: str) -> str:
    data = _mapping(task.get("data"), f"{where}.data")
    task_id = data.get(TASK_ID_KEY)
    if task_id is None and isinstance(task.get("meta"), Mapping):
        task_id = task["meta"].get("driftmon_task_id")
    if not isinstance(task_id, str) or not task_id:
        raise ValueError(
            f"{where}.data.{TASK_ID_KEY}: missing; only tasks exported by driftmon come back"
        )
    return task_id


def _annotator(annotation: Mapping[str, Any], where: str) -> str:
    """The annotator as Label Studio's own converter names them: the email of an
    expanded user (the JSON export's), else the user id."""
    completed_by = annotation.get("completed_by")
    if isinstance(completed_by, Mapping):
        email = completed_by.get("email")
        completed_by = email if isinstance(email, str) and email else completed_by.get("id")
    if isinstance(completed_by, bool) or not isinstance(completed_by, (str, int)):
        raise ValueError(f"{where}.completed_by: expected a user id or email")
    annotator = str(completed_by)
    if not annotator or len(annotator) > 128:
        raise ValueError(f"{where}.completed_by: empty or longer than 128 characters")
    return annotator


def _timestamp(annotation: Mapping[str, Any], where: str) -> float:
    for key in ("updated_at", "created_at"):
        value = annotation.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{where}.{key}: {value!r} is not an ISO 8601 time") from None
            if moment.tzinfo is None:  # Label Studio writes UTC
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        raise ValueError(f"{where}.{key}: expected an ISO 8601 time")
    raise ValueError(f"{where}.created_at: missing")


def _label(annotation: Mapping[str, Any], where: str) -> Label:
    result = annotation.get("result")
    if not isinstance(result, list):
        raise ValueError(f"{where}.result: expected a list of regions")
    regions = [
        (index, _mapping(region, f"{where}.result[{index}]")) for index, region in enumerate(result)
    ]
    ours = [(index, region) for index, region in regions if region.get("from_name") == CONTROL]
    if not ours:
        raise ValueError(f"{where}.result: no region of the {CONTROL!r} control")
    if len(ours) > 1:
        raise ValueError(f"{where}.result: {len(ours)} regions of the {CONTROL!r} control")
    index, region = ours[0]
    value = _mapping(region.get("value"), f"{where}.result[{index}].value")
    field = f"{where}.result[{index}].value"
    if "choices" in value:
        choices = value["choices"]
        if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], str):
            raise ValueError(f"{field}.choices: expected exactly one class")
        return choices[0]
    if "number" in value:
        number = value["number"]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"{field}.number: expected a number")
        if not math.isfinite(number):
            raise ValueError(f"{field}.number: expected a finite number")
        return float(number)
    raise ValueError(f"{field}: neither choices nor number")


def import_annotation(annotation: Mapping[str, Any], where: str) -> Annotation:
    annotator = _annotator(annotation, where)
    at = _timestamp(annotation, where)
    if annotation.get("was_cancelled"):  # skipped in Label Studio
        return Annotation(annotator=annotator, label=None, skip=True, at=at)
    return Annotation(annotator=annotator, label=_label(annotation, where), at=at)


def import_annotations(exported: Sequence[Any]) -> list[tuple[str, Annotation]]:
    """(driftmon task id, annotation) for every annotation of Label Studio's JSON export
    of tasks that `export_tasks` made: the annotator from `completed_by` (email, else
    user id), the label from the choices or number result, a skip from `was_cancelled`.
    A malformed export raises ValueError naming the field (e.g.
    `tasks[3].annotations[0].completed_by`)."""
    if not isinstance(exported, list):
        raise ValueError("tasks: expected Label Studio's JSON export, a list of tasks")
    out: list[tuple[str, Annotation]] = []
    for t, item in enumerate(exported):
        where = f"tasks[{t}]"
        task = _mapping(item, where)
        task_id = _task_id(task, where)
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise ValueError(f"{where}.annotations: expected a list")
        for a, annotation in enumerate(annotations):
            at = f"{where}.annotations[{a}]"
            out.append((task_id, import_annotation(_mapping(annotation, at), at)))
    return out
