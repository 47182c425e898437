"""The fast path of validation: a whole request checked column by column.

Most requests are all valid and plainly typed (floats and ints for numbers, strings for
categories, every feature present). For those, checking each column's set of value
types at once and converting the numbers with one numpy call costs a fraction of
checking every value of every record in Python. Anything else, an invalid record or
an unusual but valid type, returns None, and the caller takes the careful
per-record path, which names the field of each error. Both paths produce the same
bytes for the same valid input (tested), and hold values to the same RecordLimits."""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from collectors.events import DEFAULT_LIMITS, RecordError, RecordLimits, parse_timestamp
from core.blocks import EncodedBatch, Layout, encode_rows, tuple_getter
from core.schema import ModelSchema

NONE = type(None)
NUMBERS = frozenset({float, int, NONE})
TEXTS = frozenset({str, NONE})
CLASS_IDS = frozenset({str, int, NONE})


class CarefulPathError(Exception):
    """Some record is invalid or unusually typed."""


def encode_columnar(
    records: list[object],
    model: str,
    schema: ModelSchema,
    layout: Layout,
    now: float,
    limits: RecordLimits = DEFAULT_LIMITS,
) -> EncodedBatch | None:
    """The whole request validated and encoded, or None to take the per-record path."""
    if not records or types_of(records) != {dict}:
        return None
    try:
        return _encode(records, model, schema, layout, now, limits)  # type: ignore[arg-type]
    except (CarefulPathError, RecordError, KeyError, TypeError, ValueError, OverflowError):
        return None


def _encode(
    records: list[dict[str, Any]],
    model: str,
    schema: ModelSchema,
    layout: Layout,
    now: float,
    limits: RecordLimits,
) -> EncodedBatch:
    check_claimed_model([record.get("model") for record in records], model)
    longest = limits.max_value_length
    event_ids = event_id_column([record.get("event_id") for record in records], longest)
    features = [record.get("features") for record in records]
    numbers, categories = _features(features, schema, layout, longest)
    target_kind = schema.prediction_kind
    rows = encode_rows(
        event_ids,
        timestamp_column([record.get("timestamp") for record in records], now, limits),
        text_column([record.get("model_version") for record in records], longest),
        target_column([record.get("prediction") for record in records], target_kind, longest),
        score_column(
            [r.get("scores") for r in records], [r.get("score") for r in records], schema, longest
        ),
        target_column([record.get("label") for record in records], target_kind, longest),
        categories,
    )
    return EncodedBatch(layout, event_ids, rows, numbers)


def types_of(values: Any) -> set[type]:
    return set(map(type, values))


def require(condition: bool) -> None:
    if not condition:
        raise CarefulPathError


def check_claimed_model(claimed: list[Any], model: str) -> None:
    require(types_of(claimed) <= TEXTS and set(claimed) <= {None, model})


def require_short(texts: Any, longest: int) -> None:
    """No text (None aside) is longer than `longest` characters."""
    require(max(map(len, filter(None, texts)), default=0) <= longest)


def event_id_column(raw: list[Any], longest: int) -> list[str]:
    require(types_of(raw) == {str})  # absent ids get a generated one on the careful path
    lengths = list(map(len, raw))
    require(min(lengths) >= 1 and max(lengths) <= longest)
    require("".join(raw).isprintable())
    return raw


def _features(
    raw: list[Any], schema: ModelSchema, layout: Layout, longest: int
) -> tuple[np.ndarray[Any, Any], list[tuple[Any, ...]]]:
    """Every record has exactly the schema's features: each has as many as the schema
    and the getters find all of them (a missing one raises KeyError)."""
    require(types_of(raw) == {dict} and set(map(len, raw)) == {len(schema.features)})
    number_rows = list(map(tuple_getter(layout.numerical), raw))
    category_rows = list(map(tuple_getter(layout.categorical), raw))
    require(types_of(chain.from_iterable(number_rows)) <= NUMBERS)
    require(types_of(chain.from_iterable(category_rows)) <= TEXTS)
    require_short(chain.from_iterable(category_rows), longest)
    numbers = np.array(number_rows, dtype="float64").reshape(len(raw), len(layout.numerical))
    require(not np.isinf(numbers).any())
    return numbers, category_rows


def timestamp_column(raw: list[Any], now: float, limits: RecordLimits) -> list[float]:
    if types_of(raw) == {NONE}:
        return [now] * len(raw)
    return [parse_timestamp(value, now, limits) for value in raw]


def text_column(raw: list[Any], longest: int) -> list[Any]:
    require(types_of(raw) <= TEXTS)
    require_short(raw, longest)
    return raw


def finite_floats(raw: list[Any]) -> list[float | None]:
    require(types_of(raw) <= NUMBERS)
    floats = [None if value is None else float(value) for value in raw]
    require(bool(np.isfinite([value for value in floats if value is not None]).all()))
    return floats


def target_column(raw: list[Any], kind: str | None, longest: int) -> list[Any]:
    """Predictions or labels, of the kind of the reference's prediction column."""
    if kind == "numerical":
        return finite_floats(raw)
    kinds = types_of(raw)
    require(kinds <= CLASS_IDS)
    texts = raw if int not in kinds else [str(v) if type(v) is int else v for v in raw]
    require_short(texts, longest)
    return texts


def score_column(
    maps: list[Any], singles: list[Any], schema: ModelSchema, longest: int
) -> list[dict[str, float] | None]:
    """Class probabilities per record, from `scores` maps or single `score` values."""
    map_types, single_types = types_of(maps), types_of(singles)
    if map_types == {NONE}:
        positive = schema.positive_class or "1"
        return [None if value is None else {positive: value} for value in finite_floats(singles)]
    # a record with both takes "scores" on the careful path; keep it simple here
    require(map_types <= {dict, NONE} and single_types == {NONE})
    return [_class_scores(scores, longest) for scores in maps]


def _class_scores(scores: dict[str, Any] | None, longest: int) -> dict[str, float] | None:
    if not scores:
        return None
    require_short(scores, longest)  # the class names
    values = finite_floats(list(scores.values()))
    kept = {cls: value for cls, value in zip(scores, values, strict=True) if value is not None}
    return kept or None
