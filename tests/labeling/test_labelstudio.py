"""Label Studio export and import, checked against label-studio-sdk's own task models,
labeling-config parser and validators, and its export converter."""

from __future__ import annotations

import importlib
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk.label_interface.objects import TaskValue
from label_studio_sdk.types import Annotation as SdkAnnotation
from label_studio_sdk.types import ImportApiRequest

from core.labeling import Annotation, FlaggedSample, Label, LabelTask
from core.schema import ModelSchema
from labeling.labelstudio import CONTROL, export_tasks, label_classes, label_config_xml
from labeling.labelstudio_import import import_annotations

CLASSIFIER = ModelSchema(
    features={"income": "numerical", "city": "categorical"},
    prediction="approved",
    prediction_kind="categorical",
    scores={"0": "p0", "1": "p1"},
    positive_class="1",
    label="approved_true",
)
REGRESSOR = ModelSchema(
    features={"income": "numerical", "city": "categorical"},
    prediction="price",
    prediction_kind="numerical",
    label="price_true",
)
# label-studio-sdk ships py.typed but leaves LabelInterface and Converter mostly untyped:
# reached as Any, so that strict mypy checks this file rather than the sdk
LabelInterface: Any = importlib.import_module("label_studio_sdk.label_interface").LabelInterface
Converter: Any = importlib.import_module("label_studio_sdk.converter").Converter
# the sdk's Region serialises its value with pydantic's deprecated .dict()
pytestmark = pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning")
USERS = [
    {"id": 7, "email": "ann@example.com", "first_name": "Ann", "last_name": ""},
    {"id": 8, "email": "bob@example.com", "first_name": "", "last_name": ""},
    {"id": 9, "email": "", "first_name": "", "last_name": ""},  # no email: the id names them
]


def task(
    index: int,
    prediction: Label | None,
    scores: dict[str, float] | None = None,
    model_version: str | None = "v3",
) -> LabelTask:
    return LabelTask(
        id=f"task-{index}",
        model="loans",
        sample=FlaggedSample(
            event_id=f"ev-{index}",
            priority=0.9 - index / 100,
            reasons=["uncertainty", "drift_region"] if index % 2 else ["random"],
            details=[f"confidence 0.5{index} < 0.60"] if index % 2 else [],
            timestamp=1_800_000_000.0 + index,
            model_version=model_version,
            features={"income": 1000.0 * index if index != 3 else float("nan"), "city": "Lyon"},
            prediction=prediction,
            scores=scores or {},
        ),
        required=3 if index % 2 else 1,
        created_at=1_800_000_100.0,
        run_id="run-1",
    )


def classifier_tasks() -> list[LabelTask]:
    return [
        task(0, "1", {"0": 0.45, "1": 0.55}),
        task(1, 0, {"0": 0.52, "1": 0.48}),  # an integer class: exported as its category text
        task(2, "1", {"1": 0.7}),  # one score, the positive class's
        task(3, "0", {"1": 0.3}, model_version=None),  # binary: 1 - the positive score
        task(4, None),  # no prediction: no pre-annotation
    ]


def regressor_tasks() -> list[LabelTask]:
    return [task(0, 12.5), task(1, 40), task(2, None)]


def interface(schema: ModelSchema, classes: list[str] | None = None) -> Any:
    config = LabelInterface(label_config_xml(schema, classes))
    config.validate()  # the sdk's JSON schema of labeling configs, unique names, toName
    return config


# ---------------------------------------------------------------------------------------------
# the labeling config
# ---------------------------------------------------------------------------------------------


def test_classification_config_parses_and_offers_the_classes() -> None:
    xml = label_config_xml(CLASSIFIER, label_classes(CLASSIFIER, classifier_tasks()))
    root = ET.fromstring(xml)
    assert root.tag == "View"
    choices = root.find("Choices")
    assert choices is not None
    assert choices.get("name") == CONTROL
    assert [choice.get("value") for choice in choices.iter("Choice")] == ["0", "1"]
    assert root.find("Table") is not None

    config = interface(CLASSIFIER)
    control = config.get_control(CONTROL)
    assert control.tag == "Choices"
    assert control.labels == ["0", "1"]
    assert {obj.tag for obj in config.objects} == {"Table", "Text"}


def test_regression_config_has_a_number_control() -> None:
    root = ET.fromstring(label_config_xml(REGRESSOR))
    assert root.find("Choices") is None
    number = root.find("Number")
    assert number is not None
    assert number.get("name") == CONTROL
    config = interface(REGRESSOR)
    assert config.get_control(CONTROL).tag == "Number"
    assert config.to_json_schema()["properties"][CONTROL]["type"] == "number"


def test_class_names_are_escaped_in_the_xml() -> None:
    odd = ['say "yes"', "a & b", "<none>"]
    config = interface(CLASSIFIER, odd)
    assert config.get_control(CONTROL).labels == odd
    region = config.get_control(CONTROL).label(label="a & b")._dict()
    assert config.validate_prediction({"result": [region]})


def test_a_classification_config_needs_classes() -> None:
    bare = ModelSchema(features={"x": "numerical"}, prediction="y", prediction_kind="categorical")
    with pytest.raises(ValueError, match="classes"):
        label_config_xml(bare)
    assert label_classes(bare, [task(0, True), task(1, "b")]) == ["True", "b"]


# ---------------------------------------------------------------------------------------------
# the tasks export, validated by the sdk
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "tasks"),
    [(CLASSIFIER, classifier_tasks()), (REGRESSOR, regressor_tasks())],
    ids=["classification", "regression"],
)
def test_exported_tasks_pass_the_sdk_validators(
    schema: ModelSchema, tasks: list[LabelTask]
) -> None:
    config = interface(schema, label_classes(schema, tasks))
    exported = export_tasks(tasks, schema)
    json.dumps(exported, allow_nan=False)  # strict JSON: the NaN feature became null
    for item, source in zip(exported, tasks, strict=True):
        # the import API's task model (its generated PredictionRequest wants the `task` id
        # that a nested prediction of an import never has, so predictions are checked below)
        ImportApiRequest.model_validate({k: v for k, v in item.items() if k != "predictions"})
        # the task model LabelInterface validates, predictions included
        TaskValue.model_validate(item)
        # every object of the config finds its data (validate_task calls
        # validate_prediction without its argument when the task has predictions)
        assert config.validate_task({"data": item["data"]})
        for prediction in item["predictions"]:
            assert config.validate_prediction(prediction, return_errors=True) == []
        assert item["meta"]["reasons"] == source.sample.reasons
        assert item["meta"]["driftmon_task_id"] == source.id
        assert item["data"]["event_id"] == source.sample.event_id


def test_pre_annotations_are_the_regions_the_sdk_builds() -> None:
    tasks = classifier_tasks()
    config = interface(CLASSIFIER)
    exported = export_tasks(tasks, CLASSIFIER)
    for item, source in zip(exported, tasks, strict=True):
        if source.sample.prediction is None:
            assert item["predictions"] == []
            continue
        (prediction,) = item["predictions"]
        (region,) = prediction["result"]
        expected = config.create_regions({CONTROL: str(source.sample.prediction)})[0]._dict()
        assert {k: v for k, v in region.items() if k != "id"} == {
            k: v for k, v in expected.items() if k != "id"
        }
    scores = [item["predictions"][0]["score"] for item in exported[:4]]
    assert scores == pytest.approx([0.55, 0.52, 0.7, 0.7])
    assert [item["predictions"][0]["model_version"] for item in exported[:4]] == [
        "v3",
        "v3",
        "v3",
        "unknown",
    ]

    regression = export_tasks(regressor_tasks(), REGRESSOR)
    number = interface(REGRESSOR).create_regions({CONTROL: 40.0})[0]._dict()
    region = regression[1]["predictions"][0]["result"][0]
    assert region["value"] == number["value"] == {"number": 40.0}
    assert region["type"] == number["type"] == "number"
    assert regression[1]["predictions"][0]["score"] is None


def test_a_class_outside_the_config_is_caught_by_the_sdk() -> None:
    """The validators the tests lean on do refuse a wrong pre-annotation."""
    config = interface(CLASSIFIER, ["0", "1"])
    (item,) = export_tasks([task(0, "2")], CLASSIFIER)
    assert config.validate_prediction(item["predictions"][0], return_errors=True)
    assert config.validate_prediction({**item["predictions"][0], "score": 1.5}, return_errors=True)


# ---------------------------------------------------------------------------------------------
# Label Studio's JSON export, read back
# ---------------------------------------------------------------------------------------------


def label_studio_export(
    exported: list[dict[str, Any]], config: Any, labels: list[list[Label | None]]
) -> list[dict[str, Any]]:
    """What Label Studio's JSON export gives for the imported tasks once people labeled
    them: per task its data and meta as imported, and annotations (None: skipped) whose
    result regions the sdk builds from the config, with completed_by expanded to a user
    (the export's) or a bare user id (the API's)."""
    out: list[dict[str, Any]] = []
    for number, (item, task_labels) in enumerate(zip(exported, labels, strict=True), start=1):
        annotations: list[dict[str, Any]] = []
        for a, label in enumerate(task_labels):
            user = USERS[a % len(USERS)]
            result = [] if label is None else config.create_regions({CONTROL: label})
            annotation = {
                "id": number * 100 + a,
                "completed_by": user if (number + a) % 2 else user["id"],
                "result": [{**region._dict(), "origin": "manual"} for region in result],
                "was_cancelled": label is None,
                "ground_truth": False,
                "created_at": f"2027-01-15T10:0{a}:00.000000Z",
                "updated_at": f"2027-01-15T10:0{a}:30.500000Z",
                "draft_created_at": None,
                "lead_time": 12.5,
                "prediction": {},
                "result_count": 0,
                "unique_id": f"u-{number}-{a}",
                "import_id": None,
                "last_action": None,
                "bulk_created": False,
                "task": number,
                "project": 1,
                "updated_by": user["id"],
                "parent_prediction": None,
                "parent_annotation": None,
                "last_created_by": None,
            }
            if label is not None:
                assert config.validate_annotation(annotation)
            SdkAnnotation.model_validate({**annotation, "completed_by": user["id"]})
            annotations.append(annotation)
        out.append(
            {
                "id": number,
                "annotations": annotations,
                "file_upload": "tasks.json",
                "drafts": [],
                "predictions": [],
                "data": item["data"],
                "meta": item["meta"],
                "created_at": "2027-01-15T09:00:00.000000Z",
                "updated_at": "2027-01-15T10:05:00.000000Z",
                "inner_id": number,
                "total_annotations": len(annotations),
                "cancelled_annotations": sum(label is None for label in task_labels),
                "total_predictions": len(item["predictions"]),
                "comment_count": 0,
                "unresolved_comment_count": 0,
                "last_comment_updated_at": None,
                "project": 1,
                "updated_by": 7,
                "comment_authors": [],
            }
        )
    return out


def expected_annotator(task_number: int, index: int) -> str:
    user = USERS[index % len(USERS)]
    if (task_number + index) % 2 and user["email"]:
        return str(user["email"])
    return str(user["id"])


@pytest.mark.parametrize(
    ("schema", "tasks", "labels"),
    [
        (
            CLASSIFIER,
            classifier_tasks(),
            [["1", "0", None], ["0"], [], ["1", "1"], [None, "0"]],
        ),
        (REGRESSOR, regressor_tasks(), [[13.0, 12.25], [None], [0.0, -3.5, 1e6]]),
    ],
    ids=["classification", "regression"],
)
def test_round_trip_gives_back_the_annotations(
    schema: ModelSchema, tasks: list[LabelTask], labels: list[list[Label | None]], tmp_path: Path
) -> None:
    xml = label_config_xml(schema, label_classes(schema, tasks))
    config = interface(schema, label_classes(schema, tasks))
    export = label_studio_export(export_tasks(tasks, schema), config, labels)

    imported = import_annotations(json.loads(json.dumps(export)))

    expected: list[tuple[str, Annotation]] = []
    for number, (source, task_labels) in enumerate(zip(tasks, labels, strict=True), start=1):
        for a, label in enumerate(task_labels):
            at = datetime(2027, 1, 15, 10, a, 30, 500_000, tzinfo=UTC).timestamp()
            expected.append(
                (
                    source.id,
                    Annotation(
                        annotator=expected_annotator(number, a),
                        label=label,
                        skip=label is None,
                        at=at,
                    ),
                )
            )
    assert [task_id for task_id, _ in imported] == [task_id for task_id, _ in expected]
    assert imported == expected

    # Label Studio's own converter reads the same export to the same labels and annotators
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(export))
    converter = Converter(xml, project_dir=str(tmp_path), download_resources=False)
    converter.convert(str(export_file), str(tmp_path / "out"), "JSON_MIN", is_dir=False)
    records = json.loads((tmp_path / "out" / "result.json").read_text())
    theirs = sorted(
        (
            record["driftmon_task_id"],
            record[CONTROL] if isinstance(record[CONTROL], str) else record[CONTROL][0]["number"],
            str(record["annotator"]),
        )
        for record in records
        if CONTROL in record
    )
    ours = sorted(
        (task_id, annotation.label, annotation.annotator)
        for task_id, annotation in imported
        if not annotation.skip
    )
    assert [row[:2] for row in theirs] == [row[:2] for row in ours]
    # the converter names a user without an email "", where the user id names them here
    assert [row[2] or "9" for row in theirs] == [row[2] for row in ours]


def test_annotations_come_back_in_annotation_order() -> None:
    config = interface(CLASSIFIER)
    export = label_studio_export(export_tasks([task(0, "1")], CLASSIFIER), config, [["0", None]])
    ((_, first), (_, second)) = import_annotations(export)
    assert (first.label, first.skip) == ("0", False)
    assert (second.label, second.skip) == (None, True)
    assert second.at > first.at


def test_an_export_of_the_sdk_sample_annotation_imports() -> None:
    """An annotation as the sdk itself generates one for the config."""
    config = interface(CLASSIFIER)
    (item,) = export_tasks([task(0, "1")], CLASSIFIER)
    sample = config.generate_sample_annotation()
    assert sample is not None
    sample["created_at"] = "2027-01-15T10:00:00Z"
    ((task_id, annotation),) = import_annotations([{**item, "annotations": [sample]}])
    assert task_id == "task-0"
    assert annotation.annotator == str(sample["completed_by"])
    assert annotation.label in {"0", "1"}


def good_export() -> list[dict[str, Any]]:
    config = interface(CLASSIFIER)
    return label_studio_export(export_tasks([task(0, "1")], CLASSIFIER), config, [["1"]])


def broken(*edits: tuple[tuple[str | int, ...], object]) -> list[dict[str, Any]]:
    """The good export with each (path, value) edit made; value KeyError deletes."""
    export = good_export()
    for path, value in edits:
        target: Any = export
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return export


@pytest.mark.parametrize(
    ("edits", "field"),
    [
        (
            [((0, "data", "driftmon_task_id"), KeyError), ((0, "meta"), KeyError)],
            "tasks[0].data.driftmon_task_id",
        ),
        ([((0, "annotations", 0, "completed_by"), KeyError)], "annotations[0].completed_by"),
        ([((0, "annotations", 0, "completed_by"), {"first_name": "x"})], "completed_by"),
        ([((0, "annotations", 0, "updated_at"), "yesterday")], "annotations[0].updated_at"),
        (
            [
                ((0, "annotations", 0, "updated_at"), KeyError),
                ((0, "annotations", 0, "created_at"), KeyError),
            ],
            "annotations[0].created_at",
        ),
        ([((0, "annotations", 0, "result"), [])], "annotations[0].result"),
        ([((0, "annotations", 0, "result"), "1")], "annotations[0].result"),
        (
            [((0, "annotations", 0, "result", 0, "value", "choices"), ["0", "1"])],
            "annotations[0].result[0].value.choices",
        ),
        (
            [((0, "annotations", 0, "result", 0, "value"), {"number": "x"})],
            "result[0].value.number",
        ),
        ([((0, "annotations"), {})], "tasks[0].annotations"),
        ([((0, "data"), "text")], "tasks[0].data"),
    ],
)
def test_a_malformed_export_names_the_field(
    edits: list[tuple[tuple[str | int, ...], object]], field: str
) -> None:
    export = broken(*edits)
    with pytest.raises(ValueError, match=re.escape(field)):
        import_annotations(export)


def test_the_export_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="tasks"):
        import_annotations({"data": {}})  # type: ignore[arg-type]
