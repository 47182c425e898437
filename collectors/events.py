"""The event every collector produces, and its validation against a model's schema.

Validation is plain Python rather than pydantic: intake checks every record of every
request, and per-record errors must name the field."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any, Literal

from core.events import Event, Value
from core.schema import ModelSchema

MAX_EVENT_ID_LENGTH = 256


RejectReason = Literal["invalid", "type_mismatch", "unknown_field"]


class RecordError(ValueError):
    """One record is unusable; `field` names where, `reason` says what kind of wrong."""

    def __init__(self, field_name: str, message: str, reason: RejectReason = "invalid") -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.reason = reason


def parse_timestamp(raw: object, now: float) -> float:
    if raw is None:
        return now
    if isinstance(raw, bool):
        raise RecordError("timestamp", "must be an ISO 8601 string or epoch seconds")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise RecordError("timestamp", "must be finite")
        # epoch milliseconds are common in logs; no real event is from year 5138
        return float(raw) / 1000.0 if raw > 1e11 else float(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            # the value is not echoed: errors reach responses, dead letters and logs
            raise RecordError("timestamp", "not ISO 8601") from None
        if parsed.tzinfo is None:
            raise RecordError("timestamp", "needs a UTC offset, e.g. 2026-11-28T10:00:00Z")
        return parsed.timestamp()
    raise RecordError("timestamp", "must be an ISO 8601 string or epoch seconds")


def _number(raw: object, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        kind = type(raw).__name__
        raise RecordError(where, f"must be a number or null, got {kind}", "type_mismatch")
    if not math.isfinite(raw):
        raise RecordError(where, "must be finite")
    return float(raw)


def _category(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    # integer codes (zip codes, class ids) are categories too; floats are not
    if isinstance(raw, bool):
        return "True" if raw else "False"
    if isinstance(raw, int):
        return str(raw)
    kind = type(raw).__name__
    raise RecordError(where, f"must be a string (categorical), got {kind}", "type_mismatch")


def _event_id(raw: object) -> str:
    if raw is None:
        return uuid.uuid4().hex
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise RecordError("event_id", "must be a string")
    text = str(raw)
    if not text or len(text) > MAX_EVENT_ID_LENGTH or not text.isprintable():
        raise RecordError("event_id", f"must be 1-{MAX_EVENT_ID_LENGTH} printable characters")
    return text


def _features(raw: object, schema: ModelSchema) -> dict[str, Value]:
    if not isinstance(raw, dict):
        raise RecordError("features", "must be an object of feature name to value")
    kinds = schema.features
    out: dict[str, Value] = {}
    for name, value in raw.items():
        kind = kinds.get(name)
        # intake checks every feature of every event: the common well-typed cases are
        # tested by exact type first, everything else takes the careful path
        kind_of_value = type(value)
        if (kind == "numerical" and kind_of_value is float and -math.inf < value < math.inf) or (
            kind == "categorical" and kind_of_value is str
        ):
            out[name] = value
        elif kind is None:
            where = f"features.{name}"
            raise RecordError(where, "not in the model's reference schema", "unknown_field")
        elif kind == "numerical":
            out[name] = _number(value, f"features.{name}")
        else:
            out[name] = _category(value, f"features.{name}")
    return out


def _target(raw: object, schema: ModelSchema, where: str) -> Value:
    """A prediction or a label: the kind of the reference's prediction column."""
    if schema.prediction_kind == "numerical":
        return _number(raw, where)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return _category(raw, where)


def _scores(record: dict[str, Any], schema: ModelSchema) -> dict[str, float]:
    raw = record.get("scores")
    single = record.get("score")
    if raw is None and single is None:
        return {}
    if raw is None:
        value = _number(single, "score")
        positive = schema.positive_class or "1"
        return {} if value is None else {positive: value}
    if not isinstance(raw, dict):
        raise RecordError("scores", "must be an object of class to probability")
    out: dict[str, float] = {}
    for cls, value in raw.items():
        number = _number(value, f"scores.{cls}")
        if number is not None:
            out[str(cls)] = number
    return out


def normalize_record(record: object, model: str, schema: ModelSchema, now: float) -> Event:
    """Turn one submitted record into an Event, or raise RecordError naming the field."""
    if not isinstance(record, dict):
        raise RecordError("record", "must be a JSON object")
    claimed = record.get("model")
    if claimed is not None and claimed != model:
        raise RecordError("model", f"does not match the URL's model {model!r}")
    version = record.get("model_version")
    if version is not None and not isinstance(version, str | int):
        raise RecordError("model_version", "must be a string")
    return Event(
        event_id=_event_id(record.get("event_id")),
        timestamp=parse_timestamp(record.get("timestamp"), now),
        model_version=None if version is None else str(version),
        features=_features(record.get("features"), schema),
        prediction=_target(record.get("prediction"), schema, "prediction"),
        scores=_scores(record, schema),
        label=_target(record.get("label"), schema, "label"),
    )
