from __future__ import annotations

import pytest

from collectors.body import BodyError, UnparsableRecord, parse_records
from collectors.events import RecordError, normalize_record, parse_timestamp
from core.schema import ModelSchema

SCHEMA = ModelSchema(
    features={"age": "numerical", "region": "categorical"},
    prediction="prediction",
    prediction_kind="categorical",
    scores={"1": "score"},
    positive_class="1",
)


def test_valid_record_is_normalized() -> None:
    event = normalize_record(
        {
            "event_id": "a1",
            "timestamp": "2026-11-28T10:00:00Z",
            "features": {"age": 42, "region": "EU"},
            "prediction": 1,
            "score": 0.8,
        },
        "credit",
        SCHEMA,
        now=0.0,
    )
    assert event.event_id == "a1"
    assert event.timestamp == pytest.approx(1795860000.0)
    assert event.features == {"age": 42.0, "region": "EU"}
    assert event.prediction == "1"
    assert event.scores == {"1": 0.8}


def test_missing_event_id_gets_a_generated_one() -> None:
    first = normalize_record({"features": {}}, "credit", SCHEMA, now=5.0)
    second = normalize_record({"features": {}}, "credit", SCHEMA, now=5.0)
    assert first.event_id != second.event_id
    assert first.timestamp == 5.0


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"features": {"age": "old"}}, "features.age"),
        ({"features": {"age": True}}, "features.age"),
        ({"features": {"region": 1.5}}, "features.region"),
        ({"features": {"height": 1}}, "features.height"),
        ({"features": []}, "features"),
        ({"features": {}, "timestamp": "yesterday"}, "timestamp"),
        ({"features": {}, "timestamp": "2026-11-28T10:00:00"}, "timestamp"),
        ({"features": {}, "scores": {"1": "high"}}, "scores.1"),
        ({"features": {}, "model": "other"}, "model"),
        ({"features": {}, "event_id": ""}, "event_id"),
        ("not an object", "record"),
    ],
)
def test_bad_records_name_the_field(record: object, field: str) -> None:
    with pytest.raises(RecordError) as caught:
        normalize_record(record, "credit", SCHEMA, now=0.0)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_integer_categories_become_text() -> None:
    event = normalize_record({"features": {"region": 7}}, "credit", SCHEMA, now=0.0)
    assert event.features["region"] == "7"


def test_epoch_milliseconds_are_read_as_milliseconds() -> None:
    assert parse_timestamp(1_795_860_000_000, now=0.0) == pytest.approx(1_795_860_000.0)
    assert parse_timestamp(1_795_860_000, now=0.0) == pytest.approx(1_795_860_000.0)


def test_body_forms() -> None:
    assert parse_records(b'{"a": 1}', "application/json") == [{"a": 1}]
    assert parse_records(b'[{"a": 1}, {"a": 2}]', "application/json") == [{"a": 1}, {"a": 2}]
    ndjson = parse_records(b'{"a": 1}\n\n{"a": 2}\n', "application/x-ndjson")
    assert ndjson == [{"a": 1}, {"a": 2}]


def test_pretty_printed_json_is_one_object_and_bare_ndjson_is_lines() -> None:
    pretty = b'{\n  "features": {\n    "age": 42\n  }\n}\n'
    assert parse_records(pretty, "application/json") == [{"features": {"age": 42}}]
    bare = b'{"a": 1}\n{"a": 2}\n'
    assert parse_records(bare, "application/json") == [{"a": 1}, {"a": 2}]


def test_a_broken_ndjson_line_is_rejected_alone() -> None:
    records = parse_records(b'{"a": 1}\n{broken\n{"a": 3}', "application/x-ndjson")
    assert records[0] == {"a": 1}
    assert isinstance(records[1], UnparsableRecord)
    assert records[2] == {"a": 3}


@pytest.mark.parametrize("body", [b"", b"  ", b"{nope", b"42"])
def test_unusable_bodies_raise(body: bytes) -> None:
    with pytest.raises(BodyError):
        parse_records(body, "application/json")
