"""The typed fast path agrees with the careful per-record path on the same JSON:
whatever it accepts, the careful path accepts too and encodes to the same bytes;
anything else it refuses, and the caller takes the careful path."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from collectors.validation import DocumentEncoder
from core.blocks import EncodedBatch
from core.schema import ModelSchema
from tests.collectors.test_columnar import (
    CLASSIFIER,
    NOW,
    PLAIN_VARIANTS,
    REGRESSOR,
    UNUSUAL,
    assert_same,
    careful,
    random_record,
    record,
)


async def typed(documents: list[bytes], many: bool, schema: ModelSchema) -> EncodedBatch | None:
    valid = await DocumentEncoder().encode("m", schema, documents, many, NOW)
    return None if valid is None else valid.batch


def as_parsed(documents: list[bytes], many: bool) -> list[Any]:
    """What the careful path gets from the same documents."""
    parsed = [orjson.loads(document) for document in documents]
    return [item for array in parsed for item in array] if many else parsed


async def agrees(documents: list[bytes], many: bool, schema: ModelSchema) -> bool:
    """True when the typed path took the documents (and matched the careful path)."""
    fast = await typed(documents, many, schema)
    if fast is None:
        return False
    slow, errors = careful(as_parsed(documents, many), schema)
    assert errors == []
    assert_same(fast, slow)
    return True


@pytest.mark.parametrize("variant", PLAIN_VARIANTS)
async def test_plain_records_take_the_typed_path_one_per_document(variant: dict[str, Any]) -> None:
    documents = [orjson.dumps(record(i, **variant)) for i in range(5)]
    assert await agrees(documents, False, CLASSIFIER)


@pytest.mark.parametrize("variant", PLAIN_VARIANTS)
async def test_plain_records_take_the_typed_path_as_arrays(variant: dict[str, Any]) -> None:
    documents = [orjson.dumps([record(i, **variant), record(i + 9, **variant)]) for i in range(3)]
    documents.append(b"[]")  # an empty array adds nothing
    assert await agrees(documents, True, CLASSIFIER)


async def test_a_regression_model_and_a_missing_feature() -> None:
    records = [{"event_id": "r1", "features": {"x": 2}, "prediction": 4}]  # city missing
    assert await agrees([orjson.dumps(item) for item in records], False, REGRESSOR)


@pytest.mark.parametrize("change", UNUSUAL)
async def test_unusual_records_are_refused_or_encoded_alike(change: dict[str, Any]) -> None:
    """A record the careful path rejects is refused here (so its error gets named); one it
    accepts is either refused too or encoded to the same bytes."""
    documents = [orjson.dumps(record(i, **(change if i == 1 else {}))) for i in range(3)]
    fast = await typed(documents, False, CLASSIFIER)
    slow, errors = careful(as_parsed(documents, False), CLASSIFIER)
    if errors:
        assert fast is None, f"the typed path took what the careful path rejects: {errors}"
    elif fast is not None and change != {"event_id": None}:  # each path makes its own id
        assert_same(fast, slow)


@pytest.mark.parametrize(
    "documents",
    [
        [b'{"event_id": "a", "features": {}'],  # cut short
        [b"[1, 2]"],  # an array where a record belongs
        [b"{}"],  # no event id: the careful path makes one up
        [b'{"event_id": "a", "features": {"age": 1, "colour": "red"}}'],  # unknown feature
        [b'{"event_id": "a", "features": {"region": 7}}'],  # a category code as a number
    ],
)
async def test_what_it_refuses(documents: list[bytes]) -> None:
    assert await typed(documents, False, CLASSIFIER) is None


async def test_random_batches_never_disagree() -> None:
    rng = random.Random(11)
    taken = 0
    for trial in range(1000):
        records = [random_record(rng, trial * 10 + i) for i in range(rng.randint(1, 6))]
        many = rng.random() < 0.5
        # json, not orjson: the records hold integers beyond 64 bits
        if many:
            documents = [json.dumps(records[:2]).encode(), json.dumps(records[2:]).encode()]
        else:
            documents = [json.dumps(item).encode() for item in records]
        taken += await agrees(documents, many, CLASSIFIER)
    assert taken > 100  # the generator also makes plenty of plain batches


async def test_intake_validates_a_big_batch_in_slices_with_the_same_bytes() -> None:
    """Slices are concatenated in order (more documents than one slice holds)."""
    encoder = DocumentEncoder()
    documents = [orjson.dumps(record(i, timestamp=1_700_000_000 + i)) for i in range(345)]
    valid = await encoder.encode("m", CLASSIFIER, documents, many=False, now=NOW)
    assert valid is not None
    assert valid.now == NOW
    assert_same(valid.batch, careful(as_parsed(documents, False), CLASSIFIER)[0])
    documents[300] = orjson.dumps(record(300, model="other"))  # one bad record: all refused
    assert await encoder.encode("m", CLASSIFIER, documents, many=False, now=NOW) is None
