"""A row of a CSV or Parquet file as the event the intake takes (README "Events"), by
the model's schema: the reference's role columns (its prediction, score, label and event
id columns, as uploaded), then `event_id`, `timestamp`, `model_version`, `prediction`,
`score`, `scores.<class>` and `label` by name; every other column is a feature.

Values are converted only where the schema says what they are (a numerical feature's
text to a number); what cannot be converted is sent as it is, for the server to reject
that one row naming the field, as it would for any client."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, NotRequired, TypedDict

from core.schema import ModelSchema

# a feature, prediction or label value as the intake takes it (text it will reject too)
Value = str | int | float | None
ScoreValue = float | str
Role = Literal["event_id", "timestamp", "model_version", "prediction", "score", "label"]
ROLES: tuple[Role, ...] = ("event_id", "timestamp", "model_version", "prediction", "score", "label")
SCORES_PREFIX = "scores."


class EventDocument(TypedDict):
    """One event of `POST /v1/models/{model}/events`."""

    features: dict[str, Value]
    event_id: NotRequired[str]
    timestamp: NotRequired[str | float]
    model_version: NotRequired[str]
    prediction: NotRequired[Value]
    score: NotRequired[ScoreValue]
    scores: NotRequired[dict[str, ScoreValue]]
    label: NotRequired[Value]


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def as_number(value: object) -> Value:
    """A number from a number or its text; other text as it is (the server rejects it)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    if isinstance(value, bool):
        return str(value)
    return value if isinstance(value, int | float) else str(value)


def as_category(value: object) -> Value:
    """Text, or an integer code; an integral float (a Parquet column of codes with gaps)
    is its integer, as the reference stored it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, str | int) else str(value)


def as_timestamp(value: object) -> str | float:
    """Epoch seconds (or milliseconds) as a number, a date-time as ISO 8601."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    number = as_number(value)
    return number if isinstance(number, float | int) else str(value)


@dataclass(frozen=True)
class EventMapper:
    """Rows to events for one model's schema."""

    schema: ModelSchema
    roles: dict[str, Role] = field(init=False)
    score_columns: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        schema = self.schema
        named: dict[str, Role] = {role: role for role in ROLES}
        uploaded: tuple[tuple[Role, str | None], ...] = (
            ("event_id", schema.event_id),
            ("prediction", schema.prediction),
            ("label", schema.label),
        )
        for role, column in uploaded:
            if column is not None:
                named[column] = role
        object.__setattr__(self, "roles", named)
        by_column = {column: cls for cls, column in schema.scores.items()}
        object.__setattr__(self, "score_columns", by_column)

    def event(self, row: Mapping[str, object]) -> EventDocument:
        event = EventDocument(features={})
        scores: dict[str, ScoreValue] = {}
        for column, value in row.items():
            if _missing(value):
                continue
            if column in self.score_columns or column.startswith(SCORES_PREFIX):
                cls = self.score_columns.get(column) or column.removeprefix(SCORES_PREFIX)
                scores[cls] = _score(value)
            elif column in self.roles:
                self._set_role(event, self.roles[column], value)
            else:
                event["features"][column] = self._feature(column, value)
        if scores:
            event["scores"] = scores
        return event

    def _feature(self, column: str, value: object) -> Value:
        kind = self.schema.features.get(column)
        return as_number(value) if kind == "numerical" else as_category(value)

    def _target(self, value: object) -> Value:
        if self.schema.prediction_kind == "numerical":
            return as_number(value)
        return as_category(value)

    def _set_role(self, event: EventDocument, role: Role, value: object) -> None:
        match role:
            case "event_id":
                event["event_id"] = str(as_category(value))
            case "timestamp":
                event["timestamp"] = as_timestamp(value)
            case "model_version":
                event["model_version"] = str(as_category(value))
            case "prediction":
                event["prediction"] = self._target(value)
            case "label":
                event["label"] = self._target(value)
            case "score":
                event["score"] = _score(value)


def _score(value: object) -> ScoreValue:
    number = as_number(value)
    return number if isinstance(number, float | int) else str(value)
