"""Label Studio interoperability, pure: the labeling config that matches a model's label
classes and the queue's tasks in Label Studio's import format (pre-annotated with the
model's prediction). Label Studio's JSON export is read back in labelstudio_import.py.

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
from collections.abc import Iterable, Sequence
from typing import Any

from core.labeling import Label, LabelTask
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
