"""Labels from the labeling queue in a run's performance: how many of the window's came
from it, and the metrics on its random share alone, beside the window's, which the
queue's other picks (mostly errors) bias. On constructed windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.blocks import (
    EVENT_ID,
    INGESTED_AT,
    LABEL,
    MODEL_VERSION,
    PREDICTION,
    TIMESTAMP,
    EncodedBatch,
    Layout,
)
from core.events import Event
from core.results import ClassificationMetrics, Performance, RegressionMetrics, RunResult
from core.schema import ModelSchema
from detectors.drift import DriftPolicy
from detectors.evaluate import (
    ReferencePayload,
    evaluate_and_flag,
    evaluate_blocks,
    queue_origins,
    with_labels,
)
from detectors.performance import performance, random_floor
from detectors.quality import IntakeRejects
from detectors.reference import to_parquet
from detectors.window import as_reference_columns
from tests.data import credit_events, credit_reference
from tests.detectors.test_evaluate import config as model_config

SCHEMA = ModelSchema(
    features={"x": "numerical"},
    prediction="prediction",
    prediction_kind="categorical",
    label="label",
)
POLICY = DriftPolicy()
NO_REJECTS = IntakeRejects({}, {})

# 1000 window events, all predicted "1"; 200 of them labeled late:
PLAIN = range(0, 140)  # posted labels, 80% right (112 of 140)
RANDOM = range(140, 170)  # the queue's random share, 80% right too (24 of 30)
FLAGGED = range(170, 200)  # the queue's other picks, mostly errors (3 of 30 right)


def window_frame(size: int = 1000, own_labels: dict[int, str] | None = None) -> pd.DataFrame:
    """A frame as decode_window gives it."""
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=size)})
    frame[EVENT_ID] = [f"e{i}" for i in range(size)]
    frame[TIMESTAMP] = 1_800_000_000.0 + np.arange(size)
    frame[INGESTED_AT] = 1_800_000_100.0
    frame[MODEL_VERSION] = "7"
    frame[PREDICTION] = pd.Series(["1"] * size, dtype=object)
    labels: list[object] = [None] * size
    for index, label in (own_labels or {}).items():
        labels[index] = label
    frame[LABEL] = pd.Series(labels, dtype=object)
    return frame


def right_first(indices: range, right: int) -> dict[str, object]:
    """Labels of these events: the first `right` agree with the prediction "1"."""
    return {f"e{i}": "1" if n < right else "0" for n, i in enumerate(indices)}


LABELS = right_first(PLAIN, 112) | right_first(RANDOM, 24) | right_first(FLAGGED, 3)
ORIGINS = {f"e{i}": True for i in RANDOM} | {f"e{i}": False for i in FLAGGED}


def reference() -> pd.DataFrame:
    return pd.DataFrame({"x": [0.0, 1.0] * 50, "prediction": ["1"] * 100, "label": ["1"] * 100})


def evaluated(
    window: pd.DataFrame,
    labels: dict[str, object],
    origins: dict[str, bool] | None,
    min_labels: int = 50,
    schema: ModelSchema = SCHEMA,
    ref: pd.DataFrame | None = None,
) -> Performance:
    """The worker's path: origins read before the join, then performance."""
    from_queue = queue_origins(window, origins)
    current = as_reference_columns(with_labels(window, labels), schema)
    out = performance(
        reference() if ref is None else ref, current, schema, min_labels, POLICY, from_queue
    )
    assert out is not None
    return out


def accuracy(metrics: object) -> float:
    assert isinstance(metrics, ClassificationMetrics)
    return metrics.accuracy


def test_the_random_share_estimates_what_the_flagged_labels_bias() -> None:
    out = evaluated(window_frame(), LABELS, ORIGINS)
    assert out.status == "ok"
    assert out.labeled_events == 200
    assert out.labels_from_queue == 60
    # the window's metrics use every label, the queue's errors included
    assert accuracy(out.window) == pytest.approx(139 / 200)
    estimate = out.random_estimate
    assert estimate is not None
    assert estimate.labeled_events == 30
    assert estimate.min_labeled_events == 10
    assert accuracy(estimate.window) == pytest.approx(0.8)
    # the queue's labels alone would say far worse: (24 + 3) / 60
    queue_only = evaluated(window_frame(), {k: LABELS[k] for k in ORIGINS}, ORIGINS, 10)
    assert accuracy(queue_only.window) == pytest.approx(0.45)
    # the random share agrees with the plain labels, a sample of the window too
    plain = evaluated(window_frame(), right_first(PLAIN, 112), None)
    assert accuracy(plain.window) == accuracy(estimate.window)
    assert accuracy(estimate.window) - accuracy(out.window) > 0.1


def test_without_queue_labels_the_section_is_unchanged() -> None:
    for origins in (None, {}, {"elsewhere": True}):
        out = evaluated(window_frame(), dict(LABELS), origins)
        assert out.labels_from_queue is None
        assert out.random_estimate is None
        dumped = out.model_dump()
        assert "labels_from_queue" not in dumped
        assert "random_estimate" not in dumped
    # an origin of an event whose late label is null: no label, not the queue's
    unlabeled = evaluated(window_frame(), {"e500": None}, {"e500": True})
    assert unlabeled.labels_from_queue is None


def test_an_events_own_label_is_not_the_queues() -> None:
    """The label sent with the event wins the join: its queue origin does not count."""
    own = {i: "1" for i in range(140, 150)}  # ten of the random share's events
    out = evaluated(window_frame(own_labels=own), LABELS, ORIGINS)
    assert out.labeled_events == 200
    assert out.labels_from_queue == 50
    assert out.random_estimate is not None
    assert out.random_estimate.labeled_events == 20


def test_the_random_estimate_has_its_own_lower_floor() -> None:
    assert [random_floor(n) for n in (1, 5, 10, 50, 100, 200, 1000)] == [1, 5, 10, 10, 20, 40, 200]
    # 30 random labels: enough for a floor of 20, not of 40
    enough = evaluated(window_frame(), LABELS, ORIGINS, min_labels=100)
    assert enough.random_estimate is not None
    assert enough.random_estimate.window is not None
    short = evaluated(window_frame(), LABELS, ORIGINS, min_labels=200)
    assert short.status == "ok"
    assert short.random_estimate is not None
    assert short.random_estimate.min_labeled_events == 40
    assert short.random_estimate.labeled_events == 30
    assert short.random_estimate.window is None
    # the count and the estimate's size come even when the window has too few labels
    sparse = evaluated(window_frame(), LABELS, ORIGINS, min_labels=500)
    assert sparse.status == "insufficient_labels"
    assert sparse.window is None
    assert sparse.labels_from_queue == 60
    assert sparse.random_estimate is not None
    assert sparse.random_estimate.window is None
    # no random-share label at all: the count, and an empty estimate
    flagged_only: dict[str, bool] = {k: v for k, v in ORIGINS.items() if not v}
    none_random = evaluated(window_frame(), LABELS, flagged_only)
    assert none_random.labels_from_queue == 30
    assert none_random.random_estimate is not None
    assert none_random.random_estimate.labeled_events == 0
    assert none_random.random_estimate.window is None


def test_a_regression_models_random_estimate() -> None:
    schema = ModelSchema(
        features={"x": "numerical"}, prediction="y_hat", prediction_kind="numerical", label="y"
    )
    window = window_frame()
    window[PREDICTION] = 10.0
    labels: dict[str, object] = {f"e{i}": 11.0 for i in [*PLAIN, *RANDOM]}
    labels.update({f"e{i}": 30.0 for i in FLAGGED})  # the queue's picks: large errors
    ref = pd.DataFrame({"x": [0.0] * 100, "y_hat": [10.0] * 100, "y": [10.5] * 100})
    out = evaluated(window, labels, ORIGINS, schema=schema, ref=ref)
    assert isinstance(out.window, RegressionMetrics)
    assert out.window.mae == pytest.approx((170 * 1.0 + 30 * 20.0) / 200)
    assert out.random_estimate is not None
    assert isinstance(out.random_estimate.window, RegressionMetrics)
    assert out.random_estimate.window.mae == pytest.approx(1.0)


def test_a_run_with_queue_labels_round_trips_its_json() -> None:
    run = RunResult(run_id="r", model="m", status="ok", started_at="2027-01-15T08:00:00Z")
    run.performance = evaluated(window_frame(), LABELS, ORIGINS)
    raw = run.model_dump_json()
    again = RunResult.model_validate_json(raw)
    assert again == run
    assert again.model_dump_json() == raw
    section = again.model_dump(mode="json")["performance"]
    assert list(section)[-2:] == ["labels_from_queue", "random_estimate"]
    assert section["random_estimate"]["window"]["accuracy"] == pytest.approx(0.8)


def credit_blocks(count: int) -> tuple[list[tuple[bytes, dict[bytes, bytes]]], list[str]]:
    """Credit events as one stream block, and their predictions."""
    raw = credit_events(count, seed=2)
    events = [
        Event(
            event_id=str(event["event_id"]),
            timestamp=1_800_000_000.0 + index,
            model_version="7",
            features=event["features"],  # type: ignore[arg-type]
            prediction=str(event["prediction"]),
            scores=event["scores"],  # type: ignore[arg-type]
            # the first ten carry their own label
            label=str(event["prediction"]) if index < 10 else None,
        )
        for index, event in enumerate(raw)
    ]
    batch = EncodedBatch.from_events(events, Layout(("age", "income"), ("region",)))
    fields = {
        b"l": batch.layout.encode(),
        b"n": str(len(batch)).encode(),
        b"x": batch.packed_numbers(),
        b"r": batch.joined_rows(),
    }
    return [(b"1800000000000-0", fields)], [str(event["prediction"]) for event in raw]


def test_the_worker_carries_the_origins_to_the_performance_section() -> None:
    schema = ModelSchema(
        features={"age": "numerical", "income": "numerical", "region": "categorical"},
        prediction="prediction",
        prediction_kind="categorical",
        scores={"1": "score"},
    )
    payload = ReferencePayload("sha256:0123abcd", to_parquet(credit_reference()))
    blocks, predictions = credit_blocks(400)
    ids = [f"ev-2-{i}" for i in range(400)]
    wrong = {"0": "1", "1": "0"}
    labels: dict[str, object] = {ids[i]: predictions[i] for i in range(120)}
    labels |= {ids[i]: wrong[predictions[i]] for i in range(120, 150)}  # flagged: all wrong
    # 0..9 carry their own label: their queue origin does not count
    origins = {ids[i]: True for i in range(0, 40)} | {ids[i]: False for i in range(120, 150)}
    config = model_config(multivariate_enabled=False)
    run = RunResult(run_id="r", model="m", status="ok", started_at="2027-01-15T08:00:00Z")
    done = evaluate_and_flag(
        run, payload, blocks, labels, schema, config, NO_REJECTS, label_origins=origins
    )
    section = done.run.performance
    assert section is not None
    assert section.labeled_events == 150
    assert section.labels_from_queue == 60
    assert section.random_estimate is not None
    assert section.random_estimate.labeled_events == 30
    assert accuracy(section.random_estimate.window) == 1.0
    assert accuracy(section.window) == pytest.approx(120 / 150)
    # without origins (benchmarks, older callers) the section is as before
    plain = evaluate_blocks(run, payload, blocks, labels, schema, config, NO_REJECTS)
    assert plain.performance is not None
    assert plain.performance.labels_from_queue is None
    assert plain.performance.random_estimate is None
