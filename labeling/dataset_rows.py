"""A done task as a row of the dataset's fixed columns, pure: the features under their
own names, the prediction and final label under the reference's names, and driftmon's
own columns under internal names no feature can collide with (labeling/dataset.py
writes the rows as Parquet with a manifest)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from core.labeling import Label, LabelTask
from core.schema import ColumnKind, ModelSchema, category_text

TIMESTAMP = "__timestamp"
REASONS = "__reasons"
AGREEMENT = "__agreement"
ANNOTATIONS = "__annotations"
MODEL_VERSION = "__model_version"
TASK_ID = "__task_id"


def column_names(schema: ModelSchema) -> tuple[str, str, str]:
    """The prediction, label and event id column names."""
    return schema.prediction_column, schema.label_column, schema.event_id or "__event_id"


def arrow_schema(schema: ModelSchema) -> pa.Schema:
    """The dataset's fixed columns, in a fixed order."""
    prediction, label, event_id = column_names(schema)
    target = pa.float64() if target_kind(schema) == "numerical" else pa.string()
    features = [
        pa.field(name, pa.float64() if kind == "numerical" else pa.string())
        for name, kind in sorted(schema.features.items())
    ]
    fields = pa.schema(
        [
            pa.field(event_id, pa.string(), nullable=False),
            pa.field(TIMESTAMP, pa.float64(), nullable=False),
            *features,
            pa.field(prediction, target),
            pa.field(label, target, nullable=False),
            pa.field(AGREEMENT, pa.float64()),
            pa.field(ANNOTATIONS, pa.int64(), nullable=False),
            # "element": the child's name in a Parquet list, so the type reads back the same
            pa.field(REASONS, pa.list_(pa.field("element", pa.string())), nullable=False),
            pa.field(MODEL_VERSION, pa.string()),
            pa.field(TASK_ID, pa.string(), nullable=False),
        ]
    )
    seen: set[str] = set()
    for name in fields.names:
        if name in seen:
            raise ValueError(f"schema: the dataset would hold two columns named {name!r}")
        seen.add(name)
    return fields


def target_kind(schema: ModelSchema) -> ColumnKind:
    """What the label is: a class unless the reference's prediction is numerical."""
    return schema.prediction_kind or "categorical"


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return _finite(float(value))
    if isinstance(value, str):
        try:
            return _finite(float(value))
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not a number") from None
    raise ValueError(f"{where}: {value!r} is not a number")


def _target(value: Label | None, kind: ColumnKind, where: str) -> float | str | None:
    if value is None:
        return None
    if kind == "numerical":
        return _number(value, where)
    return category_text(value)


def is_error(task: LabelTask, schema: ModelSchema) -> bool:
    """The model got it wrong: the final label differs from a prediction it made (the
    rows `errors_only` keeps)."""
    kind = target_kind(schema)
    prediction = _target(task.sample.prediction, kind, "prediction")
    label = _target(task.final_label, kind, "final_label")
    return prediction is not None and label is not None and prediction != label


def _row(task: LabelTask, schema: ModelSchema, where: str) -> dict[str, Any]:
    sample = task.sample
    prediction, label, event_id = column_names(schema)
    kind = target_kind(schema)
    row: dict[str, Any] = {event_id: sample.event_id, TIMESTAMP: float(sample.timestamp)}
    for name, feature_kind in schema.features.items():
        value = sample.features.get(name)
        field = f"{where}.sample.features.{name}"
        if feature_kind == "numerical":
            row[name] = _number(value, field)
        elif value is None or (isinstance(value, float) and not math.isfinite(value)):
            row[name] = None
        else:
            row[name] = category_text(value)
    row[prediction] = _target(sample.prediction, kind, f"{where}.sample.prediction")
    final = _target(task.final_label, kind, f"{where}.final_label")
    if final is None:
        raise ValueError(f"{where}.final_label: not a usable label")
    row[label] = final
    row[AGREEMENT] = _finite(task.agreement)
    row[ANNOTATIONS] = sum(not annotation.skip for annotation in task.annotations)
    row[REASONS] = list(sample.reasons)
    row[MODEL_VERSION] = sample.model_version
    row[TASK_ID] = task.id
    return row


def labeled(tasks: Sequence[LabelTask], model: str) -> list[tuple[int, LabelTask]]:
    """The done tasks with a final label, with their index in `tasks`."""
    out: list[tuple[int, LabelTask]] = []
    for index, task in enumerate(tasks):
        if task.model != model:
            raise ValueError(f"tasks[{index}].model: {task.model!r}, not {model!r}")
        if task.state == "done" and task.final_label is not None:
            out.append((index, task))
    return out


def dataset_rows(
    tasks: Sequence[LabelTask], schema: ModelSchema, model: str, errors_only: bool
) -> tuple[list[dict[str, Any]], int]:
    """The rows of the done tasks with a final label (the errors alone with
    `errors_only`), sorted by event id, and how many are errors."""
    prediction, label, event_id = column_names(schema)
    rows: list[dict[str, Any]] = []
    errors = 0
    for index, task in labeled(tasks, model):
        row = _row(task, schema, f"tasks[{index}]")
        wrong = row[prediction] is not None and row[prediction] != row[label]
        errors += wrong
        if wrong or not errors_only:
            rows.append(row)
    rows.sort(key=lambda row: (row[event_id], row[TASK_ID]))
    return rows, errors
