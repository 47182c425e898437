"""What the labeling loop takes from people, checked and normalised: annotator names, and
labels as the model's labels compare.

Labels are normalised by the model's schema before anything compares them: a class as its
category text (`1`, `1.0` and `"1"` are one class, as Label Studio's choices are text), a
regression target as a float. Gold labels are compared the same way in the audit."""

from __future__ import annotations

import math
import re
from typing import Any

from core.labeling import Label, LabelTask
from core.schema import ModelSchema, category_text

# an annotator's name: 1 to 128 characters, none of them a control character (C0, C1)
# or a line or paragraph separator; the same pattern checks the API's query and body
ANNOTATOR_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,128}$"
ANNOTATOR = re.compile(ANNOTATOR_PATTERN)
LABEL_MAX_CHARS = 256


class InvalidAnnotationError(ValueError):
    """An annotation the workflow refuses before the queue sees it; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_annotator(annotator: str, field: str) -> None:
    if not ANNOTATOR.fullmatch(annotator):  # not match: "$" passes a final line break
        raise InvalidAnnotationError(
            field, "1 to 128 printable characters (no control characters or line breaks)"
        )


def normalize_label(label: Label | None, schema: ModelSchema, field: str) -> Label:
    """A label as the model's labels compare: a class's category text, or a regression
    target as a finite float. InvalidAnnotationError when there is none or it is unusable."""
    if label is None:
        raise InvalidAnnotationError(field, "an annotation that is no skip needs a label")
    if (schema.prediction_kind or "categorical") == "numerical":
        if isinstance(label, bool):
            raise InvalidAnnotationError(field, "expected a number (a regression target)")
        try:
            number = float(label)
        except ValueError:
            raise InvalidAnnotationError(field, f"{label!r} is not a number") from None
        if not math.isfinite(number):
            raise InvalidAnnotationError(field, "expected a finite number")
        return number
    if isinstance(label, float) and not math.isfinite(label):
        raise InvalidAnnotationError(field, "expected a class, not a non-finite number")
    text = category_text(label)
    if not text or len(text) > LABEL_MAX_CHARS:
        raise InvalidAnnotationError(field, f"a class is 1 to {LABEL_MAX_CHARS} characters")
    return text


def _normal(label: Label | None, schema: ModelSchema) -> Label | None:
    if label is None:
        return None
    try:
        return normalize_label(label, schema, "label")
    except InvalidAnnotationError:
        return label


def normalized(task: LabelTask, schema: ModelSchema) -> LabelTask:
    """The task with its labels as they compare (gold label and ground truth included)."""
    return task.model_copy(
        update={
            "annotations": [
                a.model_copy(update={"label": _normal(a.label, schema)}) for a in task.annotations
            ],
            "final_label": _normal(task.final_label, schema),
            "gold_label": _normal(task.gold_label, schema),
        }
    )


def hidden(task: LabelTask, adjudicator: bool) -> LabelTask:
    """The task as an annotator sees it: no answer, nor others' annotations unless for an
    adjudicator (the queue strips them already; this keeps it so whatever the store)."""
    update: dict[str, Any] = {
        "gold_label": None,
        "final_label": None,
        "agreement": None,
        "sample": task.sample.model_copy(update={"label": None}),
    }
    if not adjudicator:
        update["annotations"] = []
    return task.model_copy(update=update)
