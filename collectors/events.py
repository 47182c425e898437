"""The event every collector produces, and its validation against a model's schema.

Validation is plain Python rather than pydantic: intake checks every record of every
request, and per-record errors must name the field."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.events import Event, Value
from core.schema import ModelSchema

MAX_VALUE_LENGTH = 256
EPOCH_2000 = 946_684_800.0  # 2000-01-01T00:00:00Z


@dataclass(frozen=True)
class RecordLimits:
    """Bounds on what one record may hold, so that one record cannot make Redis, the
    window or the metrics carry megabytes of text or a time no window will ever reach.
    The service fills them from its settings (their names are in the errors)."""

    # event ids, model versions, categorical values and class names, in characters
    max_value_length: int = MAX_VALUE_LENGTH
    not_before: float = EPOCH_2000
    # None: no bound after `now`, which only the caller knows to be the real clock
    max_future_seconds: float | None = None


DEFAULT_LIMITS = RecordLimits()


RejectReason = Literal["invalid", "type_mismatch", "unknown_field"]


class RecordError(ValueError):
    """One record is unusable; `field` names where, `reason` says what kind of wrong."""

    def __init__(self, field_name: str, message: str, reason: RejectReason = "invalid") -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.reason = reason


def parse_timestamp(raw: object, now: float, limits: RecordLimits = DEFAULT_LIMITS) -> float:
    """Epoch seconds of a record's time (absent: `now`), within the limits."""
    if raw is None:
        return now
    seconds = _epoch_seconds(raw)
    if seconds < limits.not_before:
        earliest = datetime.fromtimestamp(limits.not_before, UTC).isoformat()
        raise RecordError("timestamp", f"before {earliest} (DRIFTMON_TIMESTAMP_NOT_BEFORE)")
    ahead = limits.max_future_seconds
    if ahead is not None and seconds > now + ahead:
        message = f"more than {ahead:g} s in the future (DRIFTMON_TIMESTAMP_MAX_FUTURE_SECONDS)"
        raise RecordError("timestamp", message)
    return seconds


def _epoch_seconds(raw: object) -> float:
    if isinstance(raw, bool):
        raise RecordError("timestamp", "must be an ISO 8601 string or epoch seconds")
    if isinstance(raw, int | float):
        try:
            finite = math.isfinite(raw)
        except OverflowError:  # an integer beyond any float
            finite = False
        if not finite:
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


def capped(text: str, where: str, limits: RecordLimits) -> str:
    """The text, unless it is longer than the limit (the text itself is not echoed)."""
    if len(text) > limits.max_value_length:
        message = f"longer than {limits.max_value_length} characters (DRIFTMON_MAX_VALUE_LENGTH)"
        raise RecordError(where, message)
    return text


def _category(raw: object, where: str, limits: RecordLimits) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return capped(raw, where, limits)
    # integer codes (zip codes, class ids) are categories too; floats are not
    if isinstance(raw, bool):
        return "True" if raw else "False"
    if isinstance(raw, int):
        return capped(str(raw), where, limits)
    kind = type(raw).__name__
    raise RecordError(where, f"must be a string (categorical), got {kind}", "type_mismatch")


def event_id_text(raw: object, limits: RecordLimits) -> str:
    """A given event id (a string, or an integer taken as its digits) as stored."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise RecordError("event_id", "must be a string")
    text = str(raw)
    if not text or not text.isprintable():
        raise RecordError("event_id", "must be a non-empty string of printable characters")
    return capped(text, "event_id", limits)


def _features(raw: object, schema: ModelSchema, limits: RecordLimits) -> dict[str, Value]:
    if not isinstance(raw, dict):
        raise RecordError("features", "must be an object of feature name to value")
    kinds = schema.features
    longest = limits.max_value_length
    out: dict[str, Value] = {}
    for name, value in raw.items():
        kind = kinds.get(name)
        # intake checks every feature of every event: the common well-typed cases are
        # tested by exact type first, everything else takes the careful path
        kind_of_value = type(value)
        if (kind == "numerical" and kind_of_value is float and -math.inf < value < math.inf) or (
            kind == "categorical" and kind_of_value is str and len(value) <= longest
        ):
            out[name] = value
        elif kind is None:
            where = f"features.{name}"
            raise RecordError(where, "not in the model's reference schema", "unknown_field")
        elif kind == "numerical":
            out[name] = _number(value, f"features.{name}")
        else:
            out[name] = _category(value, f"features.{name}", limits)
    return out


def _target(raw: object, schema: ModelSchema, where: str, limits: RecordLimits) -> Value:
    """A prediction or a label: the kind of the reference's prediction column."""
    if schema.prediction_kind == "numerical":
        return _number(raw, where)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return _category(raw, where, limits)


def _scores(record: dict[str, Any], schema: ModelSchema, limits: RecordLimits) -> dict[str, float]:
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
        # a class name over the limit is not echoed in the field name either
        cls_name = capped(str(cls), "scores", limits)
        number = _number(value, f"scores.{cls_name}")
        if number is not None:
            out[cls_name] = number
    return out


def normalize_record(
    record: object,
    model: str,
    schema: ModelSchema,
    now: float,
    limits: RecordLimits = DEFAULT_LIMITS,
) -> Event:
    """Turn one submitted record into an Event, or raise RecordError naming the field."""
    if not isinstance(record, dict):
        raise RecordError("record", "must be a JSON object")
    claimed = record.get("model")
    if claimed is not None and claimed != model:
        raise RecordError("model", f"does not match the URL's model {model!r}")
    version = record.get("model_version")
    if version is not None and not isinstance(version, str | int):
        raise RecordError("model_version", "must be a string")
    raw_id = record.get("event_id")
    return Event(
        event_id=uuid.uuid4().hex if raw_id is None else event_id_text(raw_id, limits),
        timestamp=parse_timestamp(record.get("timestamp"), now, limits),
        model_version=None if version is None else capped(str(version), "model_version", limits),
        features=_features(record.get("features"), schema, limits),
        prediction=_target(record.get("prediction"), schema, "prediction", limits),
        scores=_scores(record, schema, limits),
        label=_target(record.get("label"), schema, "label", limits),
    )
