"""Label Studio interoperability, pure: the labeling config that matches a model's label
classes, the queue's tasks in Label Studio's import format (pre-annotated with the model's
prediction) and the annotations of Label Studio's JSON export read back.

Task import format (https://labelstud.io/guide/tasks#Basic-Label-Studio-JSON-format):
`data` holds what the labeling config shows (`$features` in a Table, `$flag` in a Text),
`predictions` the pre-annotation (`model_version`, `score` in [0, 1], `result` regions),
`meta` what a team may filter on without showing it to annotators. The ids that bring an
annotation back to its driftmon task are in `data`, which Label Studio exports unchanged.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from core.labeling import Annotation, Label, LabelTask
from core.schema import ColumnKind, ModelSchema, category_text

# names in the labeling config: the control whose result is the label, the objects shown
CONTROL = "label"
FEATURES = "features"
FLAG = "flag"
# keys of a task's data (exported back by Label Studio as they were imported)
TASK_ID_KEY = "driftmon_task_id"
MODEL_KEY = "driftmon_model"
EVENT_ID_KEY = "event_id"


def label_kind(schema: ModelSchema) -> ColumnKind:
    """What people label: a class (Choices) or a number (Number); classes unless the
    reference's prediction is numerical."""
    return schema.prediction_kind or "categorical"


def label_classes(schema: ModelSchema, tasks: Iterable[LabelTask] = ()) -> list[str]:
    """The classes a classification config offers, as category texts: the schema's score
    classes and positive class, and every class the tasks' predictions, scores and labels
    name (a model without score columns says its classes only through its predictions)."""
    classes = set(schema.scores)
    if schema.positive_class is not None:
        classes.add(schema.positive_class)
    for task in tasks:
        sample = task.sample
        classes.update(sample.scores)
        labels = [sample.prediction, sample.label, task.final_label, task.gold_label]
        labels += [annotation.label for annotation in task.annotations]
        classes.update(category_text(label) for label in labels if label is not None)
    return sorted(classes)


def label_config_xml(schema: ModelSchema, classes: Sequence[str] | None = None) -> str:
    """The labeling config (XML) for a model's tasks: the features in a Table, why the
    sample was flagged in a Text, and a Choices control with the label classes (`classes`,
    else the schema's) or, for a regression model, a Number control."""
    view = ET.Element("View")
    ET.SubElement(
        view, "Header", value="Flagged production sample: give the label the model should predict"
    )
    ET.SubElement(view, "Table", name=FEATURES, value=f"${FEATURES}")
    ET.SubElement(view, "Text", name=FLAG, value=f"${FLAG}")
    if label_kind(schema) == "numerical":
        # Label Studio documents Number for text-like objects, not Table
        ET.SubElement(view, "Number", name=CONTROL, toName=FLAG, required="true")
    else:
        options = list(dict.fromkeys(classes if classes is not None else label_classes(schema)))
        if not options:
            raise ValueError("classes: a classification config needs at least one label class")
        choices = ET.SubElement(
            view,
            "Choices",
            name=CONTROL,
            toName=FEATURES,
            choice="single-radio",
            showInline="true",
            required="true",
        )
        for option in options:
            if not option:
                raise ValueError("classes: a label class is empty")
            ET.SubElement(choices, "Choice", value=option)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def _json_value(value: float | str | None) -> float | str | None:
    """A feature as JSON can carry it: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _prediction_score(task: LabelTask, schema: ModelSchema) -> float | None:
    """The model's probability of its predicted class, in [0, 1]; None when unknown."""
    sample = task.sample
    if sample.prediction is None or label_kind(schema) == "numerical":
        return None
    predicted = category_text(sample.prediction)
    score = sample.scores.get(predicted)
    positive = schema.positive_class
    if score is None and positive is not None and set(sample.scores) == {positive}:
        score = 1.0 - sample.scores[positive]  # binary: one score, the positive class's
    if score is None or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        return None
    return score


def _region_id(task_id: str) -> str:
    return hashlib.sha256(task_id.encode()).hexdigest()[:10]


def prediction_result(label: Label, schema: ModelSchema, region_id: str) -> dict[str, Any]:
    """One result region of the config's control holding `label`."""
    if label_kind(schema) == "numerical":
        if isinstance(label, str):
            try:
                number = float(label)
            except ValueError:
                raise ValueError(f"prediction: {label!r} is not a number") from None
        else:
            number = float(label)
        if not math.isfinite(number):
            raise ValueError(f"prediction: {number} is not a finite number")
        return {
            "id": region_id,
            "from_name": CONTROL,
            "to_name": FLAG,
            "type": "number",
            "value": {"number": number},
        }
    return {
        "id": region_id,
        "from_name": CONTROL,
        "to_name": FEATURES,
        "type": "choices",
        "value": {"choices": [category_text(label)]},
    }


def _flag_text(task: LabelTask) -> str:
    sample = task.sample
    lines = [f"Flagged for: {', '.join(sample.reasons)}"]
    lines += sample.details
    if sample.prediction is not None:
        lines.append(f"Model prediction: {category_text(sample.prediction)}")
    return "\n".join(lines)


def export_task(task: LabelTask, schema: ModelSchema) -> dict[str, Any]:
    sample = task.sample
    predictions: list[dict[str, Any]] = []
    if sample.prediction is not None:
        result = prediction_result(sample.prediction, schema, _region_id(task.id))
        predictions.append(
            {
                "model_version": sample.model_version or "unknown",
                "score": _prediction_score(task, schema),
                "result": [result],
            }
        )
    return {
        "data": {
            FEATURES: {name: _json_value(value) for name, value in sample.features.items()},
            FLAG: _flag_text(task),
            EVENT_ID_KEY: sample.event_id,
            TASK_ID_KEY: task.id,
            MODEL_KEY: task.model,
        },
        "predictions": predictions,
        "meta": {
            "driftmon_task_id": task.id,
            "model": task.model,
            "run_id": task.run_id,
            "reasons": list(sample.reasons),
            "details": list(sample.details),
            "priority": sample.priority,
            "timestamp": sample.timestamp,
            "annotations_required": task.required,
        },
    }


def export_tasks(tasks: Sequence[LabelTask], schema: ModelSchema) -> list[dict[str, Any]]:
    """The tasks in Label Studio's import format (a JSON array to import as it is), each
    pre-annotated with the model's prediction when it made one. Gold answers stay out."""
    return [export_task(task, schema) for task in tasks]


# ---------------------------------------------------------------------------------------------
# Label Studio's JSON export, read back
# ---------------------------------------------------------------------------------------------


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
