"""The columnar fast path agrees with the careful per-record path: whatever it accepts,
the careful path accepts too and encodes to the same bytes; anything else it hands
over to the careful path."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from collectors.columnar import encode_columnar
from collectors.validation import layout_for, normalize_all, validate
from core.blocks import EncodedBatch
from core.schema import ModelSchema

NOW = 1_800_000_000.0
CLASSIFIER = ModelSchema(
    {"age": "numerical", "income": "numerical", "region": "categorical", "plan": "categorical"},
    prediction="approved",
    prediction_kind="categorical",
    scores={"1": "p1", "0": "p0"},
    positive_class="1",
)
REGRESSOR = ModelSchema({"x": "numerical", "city": "categorical"}, "y", "numerical")


def careful(records: list[Any], schema: ModelSchema) -> tuple[EncodedBatch, list[Any]]:
    events, errors = normalize_all(records, "m", schema, NOW)
    return EncodedBatch.from_events(events, layout_for(schema)), errors


def assert_same(fast: EncodedBatch, slow: EncodedBatch) -> None:
    assert fast.event_ids == slow.event_ids
    assert fast.rows == slow.rows
    assert fast.packed_numbers() == slow.packed_numbers()


def record(i: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"e{i}",
        "features": {"age": 30.5 + i, "income": 1000, "region": "EU", "plan": None},
        "prediction": "1",
        "scores": {"1": 0.8, "0": 0.2},
    }
    base.update(changes)
    return base


PLAIN_VARIANTS: list[dict[str, Any]] = [
    {},
    {"timestamp": 1_700_000_000},
    {"timestamp": 1_700_000_000_123},  # epoch milliseconds
    {"timestamp": "2026-11-28T10:00:00Z"},
    {"model": "m", "model_version": "v7"},
    {"prediction": 1, "scores": None, "score": 0.9},  # an integer class id, one score
    {"label": "0"},
    {"features": {"age": None, "income": -3, "region": "", "plan": "gold"}},
    {"scores": {"1": 0.5, "0": None}},
]


@pytest.mark.parametrize("variant", PLAIN_VARIANTS)
def test_plain_batches_take_the_fast_path_with_the_same_bytes(variant: dict[str, Any]) -> None:
    records: list[Any] = [record(i, **variant) for i in range(5)]
    fast = encode_columnar(records, "m", CLASSIFIER, layout_for(CLASSIFIER), NOW)
    assert fast is not None
    slow, errors = careful(records, CLASSIFIER)
    assert errors == []
    assert_same(fast, slow)


def test_a_regression_model_with_numeric_predictions() -> None:
    records: list[Any] = [
        {"event_id": f"r{i}", "features": {"x": i, "city": "Oslo"}, "prediction": i * 2}
        for i in range(4)
    ]
    fast = encode_columnar(records, "m", REGRESSOR, layout_for(REGRESSOR), NOW)
    assert fast is not None
    assert_same(fast, careful(records, REGRESSOR)[0])
    assert fast.numbers.dtype == np.float64


UNUSUAL: list[dict[str, Any]] = [
    {"features": {"age": True, "income": 1, "region": "EU", "plan": None}},  # bool
    {"features": {"age": "30", "income": 1, "region": "EU", "plan": None}},  # text number
    {"features": {"age": 1.0, "income": 1, "region": 7, "plan": None}},  # int category
    {"features": {"age": 1.0, "income": 1, "region": "EU"}},  # a feature missing
    {"features": {"age": 1.0, "income": 1, "region": "EU", "plan": None, "new": 1}},
    {"features": {"age": 1.0, "income": 1, "region": "EU", "colour": None}},  # swapped
    {"features": [1, 2]},
    {"event_id": ""},
    {"event_id": 17},
    {"event_id": None},
    {"event_id": "tab\there"},
    {"model": "other"},
    {"model_version": 3},
    {"timestamp": "yesterday"},
    {"timestamp": "2026-11-28T10:00:00"},  # no UTC offset
    {"prediction": 1.0},
    {"prediction": True},
    {"scores": {"1": "high"}},
    {"scores": {"1": 0.3}, "score": 0.3},
    {"score": float("inf"), "scores": None},
]


@pytest.mark.parametrize("change", UNUSUAL)
def test_anything_unusual_goes_to_the_careful_path(change: dict[str, Any]) -> None:
    records: list[Any] = [record(0), record(1, **change), record(2)]
    assert encode_columnar(records, "m", CLASSIFIER, layout_for(CLASSIFIER), NOW) is None
    slow, errors = careful(records, CLASSIFIER)
    batch, validate_errors = validate(records, "m", CLASSIFIER, NOW)
    assert validate_errors == errors
    if change == {"event_id": None}:  # each path generates its own id
        batch.event_ids[1] = slow.event_ids[1]
        batch.rows[1] = slow.rows[1]
    assert_same(batch, slow)


def random_value(rng: random.Random) -> Any:
    return rng.choice(
        [None, 0, 1, -2, 1.5, 0.0, 1e300, True, False, "", "a", "1", "2026-11-28T10:00:00Z",
         [], {}, {"1": 0.5}, {"1": None}, {"1": "x"}, 2**70, 1_700_000_000_000]
    )  # fmt: skip


def random_record(rng: random.Random, i: int) -> Any:
    if rng.random() < 0.02:
        return rng.choice([None, 3, "text", []])
    out = record(i)
    for _ in range(rng.choice([0, 0, 0, 0, 1, 2])):
        name = rng.choice(["event_id", "timestamp", "model", "model_version", "prediction",
                           "label", "score", "scores", "features"])  # fmt: skip
        out[name] = random_value(rng)
    if rng.random() < 0.15:
        out["features"] = dict(out["features"]) if isinstance(out["features"], dict) else {}
        out["features"][rng.choice(["age", "income", "region", "plan"])] = random_value(rng)
    return out


def test_random_batches_never_disagree() -> None:
    rng = random.Random(7)
    fast_taken = 0
    for trial in range(1000):
        records = [random_record(rng, trial * 10 + i) for i in range(rng.randint(1, 6))]
        fast = encode_columnar(records, "m", CLASSIFIER, layout_for(CLASSIFIER), NOW)
        if fast is None:
            continue
        fast_taken += 1
        slow, errors = careful(records, CLASSIFIER)
        assert errors == [], records
        assert_same(fast, slow)
    assert fast_taken > 100  # the generator also makes plenty of plain batches
