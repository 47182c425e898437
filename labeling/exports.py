"""What the workflow's exports and import hand back: Label Studio's tasks with the
labeling config to create the project with, and one outcome per imported annotation.
The formats themselves are pure modules: labelstudio.py, labelstudio_import.py and
dataset.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.labeling import LabelTask
from core.schema import ModelSchema
from labeling.labelstudio import export_tasks, label_classes, label_config_xml

ImportOutcome = Literal[
    "imported", "duplicate", "done", "adjudication_pending", "unknown_task", "invalid"
]


@dataclass(frozen=True)
class ImportedAnnotation:
    index: int  # of the annotation in the export, in order
    task_id: str
    annotator: str
    outcome: ImportOutcome
    state: str | None = None  # the task's state after it, when imported
    error: str | None = None


@dataclass(frozen=True)
class LabelStudioExport:
    label_config: str  # the labeling config (XML) to create the project with
    tasks: list[dict[str, Any]]  # Label Studio's import format


def labelstudio_export(
    tasks: Sequence[LabelTask], schema: ModelSchema, errors_only: bool
) -> LabelStudioExport:
    """The tasks in Label Studio's import format with the labeling config to create the
    project with; with `errors_only`, the tasks flagged as production errors alone.
    ValueError when no label class is known."""
    if errors_only:
        tasks = [task for task in tasks if "production_error" in task.sample.reasons]
    config = label_config_xml(schema, label_classes(schema, tasks))
    return LabelStudioExport(config, export_tasks(tasks, schema))
