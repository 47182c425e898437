"""The consensus-labeled set as a versioned dataset: Parquet plus manifest."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from core.labeling import Annotation, FlaggedSample, FlagReason, Label, LabelTask, TaskState
from core.schema import ModelSchema
from labeling.dataset import build_dataset, canonical_json, content_hash
from labeling.dataset_rows import AGREEMENT, REASONS, TIMESTAMP, is_error

SCHEMA = ModelSchema(
    features={"income": "numerical", "city": "categorical"},
    prediction="approved",
    prediction_kind="categorical",
    scores={"1": "p1"},
    positive_class="1",
    label="approved_true",
    event_id="request_id",
)
REGRESSION = ModelSchema(
    features={"income": "numerical"}, prediction="price", prediction_kind="numerical"
)


def task(
    index: int,
    final: Label | None,
    prediction: Label | None = "1",
    state: TaskState = "done",
    reasons: list[FlagReason] | None = None,
    model: str = "loans",
) -> LabelTask:
    annotations = [
        Annotation(annotator=f"user-{n}", label=final, at=1_800_000_500.0 + n) for n in range(2)
    ]
    return LabelTask(
        id=f"task-{index:03d}",
        model=model,
        sample=FlaggedSample(
            event_id=f"ev-{index:03d}",
            priority=0.5,
            reasons=reasons or (["uncertainty"] if index % 3 else ["random", "drift_region"]),
            timestamp=1_800_000_000.0 + 10 * index,
            model_version="v2" if index % 2 else "v1",
            features={"income": 1000.0 + index, "city": "Lyon" if index % 2 else 75},
            prediction=prediction,
            scores={"1": 0.55},
        ),
        required=2,
        state=state,
        annotations=[*annotations, Annotation(annotator="skipper", skip=True, at=1.0)],
        final_label=final,
        agreement=1.0 if final is not None else None,
        created_at=1_800_000_100.0,
        run_id="run-1",
    )


def tasks() -> list[LabelTask]:
    return [
        task(0, "1"),
        task(1, "0"),  # the model said 1: an error
        task(2, 1),  # an integer label: the category text "1"
        task(3, "0", prediction=0),  # right, across types
        task(4, "1", prediction=None),  # no prediction: never an error
        task(5, None, state="adjudication"),  # not settled: left out
        task(6, "0", state="open"),
        task(7, "0", prediction="1", reasons=["production_error"]),
    ]


def build(items: list[LabelTask], errors_only: bool = False) -> bytes:
    return build_dataset(items, SCHEMA, "loans", "ref-abc", errors_only=errors_only).parquet


def test_rows_are_the_done_tasks_with_their_final_label() -> None:
    dataset = build_dataset(tasks(), SCHEMA, "loans", "ref-abc", created_at=1_900_000_000.0)
    table = pq.read_table(io.BytesIO(dataset.parquet))
    rows = table.to_pylist()
    assert [row["request_id"] for row in rows] == [
        "ev-000",
        "ev-001",
        "ev-002",
        "ev-003",
        "ev-004",
        "ev-007",
    ]
    assert [row["approved_true"] for row in rows] == ["1", "0", "1", "0", "1", "0"]
    assert [row["approved"] for row in rows] == ["1", "1", "1", "0", None, "1"]
    assert rows[0]["income"] == 1000.0
    assert rows[0]["city"] == "75"  # a categorical value as its category text
    assert rows[0][REASONS] == ["random", "drift_region"]
    assert rows[0][AGREEMENT] == 1.0
    assert rows[0]["__annotations"] == 2  # skips do not count
    assert rows[0]["__task_id"] == "task-000"
    assert rows[0][TIMESTAMP] == 1_800_000_000.0

    manifest = dataset.manifest
    assert manifest.rows == 6
    assert manifest.model == "loans"
    assert manifest.reference_version == "ref-abc"
    assert manifest.model_versions == ["v1", "v2"]
    assert manifest.time_range is not None
    assert (manifest.time_range.start, manifest.time_range.end) == (
        1_800_000_000.0,
        1_800_000_070.0,
    )
    assert manifest.reasons == {
        "drift_region": 2,
        "production_error": 1,
        "random": 2,
        "uncertainty": 3,
    }
    assert manifest.labels == {"0": 3, "1": 3}
    assert manifest.errors == 2
    assert manifest.errors_only is False
    assert manifest.content_hash.startswith("sha256:")
    assert len(manifest.content_hash) == len("sha256:") + 64
    assert manifest.columns["approved_true"] == "string"
    assert manifest.columns[REASONS] == "list<string>"
    assert manifest.created_at == 1_900_000_000.0
    assert list(manifest.columns) == table.schema.names


def test_same_content_same_hash_and_bytes_whatever_the_order_and_time() -> None:
    items = tasks()
    first = build_dataset(items, SCHEMA, "loans", "ref-abc", created_at=1.0)
    again = build_dataset(list(reversed(items)), SCHEMA, "loans", "ref-abc", created_at=2.0)
    assert again.manifest.content_hash == first.manifest.content_hash
    # the Parquet bytes are deterministic too: no creation time in the file
    assert again.parquet == first.parquet
    assert again.manifest.parquet_sha256 == first.manifest.parquet_sha256
    assert again.manifest.model_dump(exclude={"created_at"}) == first.manifest.model_dump(
        exclude={"created_at"}
    )
    metadata = pq.ParquetFile(io.BytesIO(first.parquet)).metadata
    assert metadata.created_by.startswith("parquet-cpp-arrow")
    file_keys = set(pq.read_schema(io.BytesIO(first.parquet)).metadata)
    assert file_keys == {
        b"driftmon.content_hash",
        b"driftmon.model",
        b"driftmon.reference_version",
    }


def test_the_hash_is_of_the_content_computed_from_the_file_too() -> None:
    dataset = build_dataset(tasks(), SCHEMA, "loans", "ref-abc")
    assert content_hash(dataset.parquet) == dataset.manifest.content_hash
    # another reference version is lineage, not content: the file differs, the hash not
    other = build_dataset(tasks(), SCHEMA, "loans", "ref-def")
    assert other.manifest.content_hash == dataset.manifest.content_hash
    assert other.parquet != dataset.parquet
    table = pq.read_table(io.BytesIO(dataset.parquet)).replace_schema_metadata(None)
    assert canonical_json(table).startswith(b'{"columns":[["request_id","string"]')


def test_one_changed_label_changes_the_hash() -> None:
    items = tasks()
    base = build_dataset(items, SCHEMA, "loans", "ref-abc").manifest.content_hash
    changed = [*items[:1], items[1].model_copy(update={"final_label": "1"}), *items[2:]]
    assert build_dataset(changed, SCHEMA, "loans", "ref-abc").manifest.content_hash != base
    fewer = items[1:]
    assert build_dataset(fewer, SCHEMA, "loans", "ref-abc").manifest.content_hash != base
    feature = items[0].sample.model_copy(update={"features": {"income": 1.5, "city": "75"}})
    moved = [items[0].model_copy(update={"sample": feature}), *items[1:]]
    assert build_dataset(moved, SCHEMA, "loans", "ref-abc").manifest.content_hash != base


def test_errors_only_keeps_the_hard_cases() -> None:
    dataset = build_dataset(tasks(), SCHEMA, "loans", "ref-abc", errors_only=True)
    rows = pq.read_table(io.BytesIO(dataset.parquet)).to_pylist()
    assert [row["__task_id"] for row in rows] == ["task-001", "task-007"]
    done = [item for item in tasks() if item.state == "done"]
    assert [item.id for item in done if is_error(item, SCHEMA)] == ["task-001", "task-007"]
    assert all(row["approved"] != row["approved_true"] for row in rows)
    assert dataset.manifest.errors_only is True
    assert dataset.manifest.rows == dataset.manifest.errors == 2
    assert dataset.manifest.labels == {"0": 2}
    assert dataset.manifest.reasons == {"production_error": 1, "uncertainty": 1}
    full = build_dataset(tasks(), SCHEMA, "loans", "ref-abc")
    assert dataset.manifest.content_hash != full.manifest.content_hash


def test_an_empty_dataset_has_its_columns_and_no_time_range() -> None:
    dataset = build_dataset([task(0, None, state="open")], SCHEMA, "loans", "ref-abc")
    table = pq.read_table(io.BytesIO(dataset.parquet))
    assert table.num_rows == 0
    assert table.schema.names == list(dataset.manifest.columns)
    assert dataset.manifest.rows == 0
    assert dataset.manifest.time_range is None
    assert content_hash(dataset.parquet) == dataset.manifest.content_hash


def test_regression_labels_are_numbers() -> None:
    items = [task(0, 10.5, prediction=10.5), task(1, "12", prediction=9.0), task(2, 3, None)]
    dataset = build_dataset(items, REGRESSION, "loans", "ref-abc", created_at=1.0)
    rows = pq.read_table(io.BytesIO(dataset.parquet)).to_pylist()
    assert [row["__label"] for row in rows] == [10.5, 12.0, 3.0]
    assert [row["price"] for row in rows] == [10.5, 9.0, None]
    assert [row["__event_id"] for row in rows] == ["ev-000", "ev-001", "ev-002"]
    assert dataset.manifest.columns["__label"] == "double"
    assert dataset.manifest.labels == {}
    assert dataset.manifest.errors == 1
    errors = build_dataset(items, REGRESSION, "loans", "ref-abc", errors_only=True)
    assert errors.manifest.rows == 1


def test_missing_and_nan_features_are_nulls() -> None:
    sample = task(0, "1").sample.model_copy(update={"features": {"income": float("nan")}})
    item = task(0, "1").model_copy(update={"sample": sample})
    rows = pq.read_table(io.BytesIO(build([item]))).to_pylist()
    assert (rows[0]["income"], rows[0]["city"]) == (None, None)


def test_bad_input_names_the_task_and_field() -> None:
    with pytest.raises(ValueError, match=r"tasks\[1\]\.model"):
        build_dataset([task(0, "1"), task(1, "1", model="other")], SCHEMA, "loans", "ref")
    with pytest.raises(ValueError, match=r"tasks\[0\]\.final_label"):
        build_dataset([task(0, "many")], REGRESSION, "loans", "ref")
    sample = task(0, "1").sample.model_copy(update={"features": {"income": "lots"}})
    with pytest.raises(ValueError, match=r"tasks\[0\]\.sample\.features\.income"):
        build([task(0, "1").model_copy(update={"sample": sample})])
    clash = ModelSchema(features={"__timestamp": "numerical"}, prediction_kind="categorical")
    with pytest.raises(ValueError, match="__timestamp"):
        build_dataset([], clash, "loans", "ref")
