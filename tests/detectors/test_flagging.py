"""Which window samples a run flags for labeling, on constructed windows: uncertainty by
each method, drift regions, production errors, data-quality suspects and the random
share; caps, merged reasons and determinism; the runner hands them to its sinks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.blocks import (
    EVENT_ID,
    INGESTED_AT,
    LABEL,
    MODEL_VERSION,
    PREDICTION,
    SCORE_PREFIX,
    TIMESTAMP,
    EncodedBatch,
    Layout,
)
from core.events import Event
from core.labeling import FlaggedSample, LabelingConfig
from core.results import ColumnResult, RunResult
from core.schema import ColumnKind, ModelSchema
from detectors.evaluate import ReferencePayload, evaluate_and_flag
from detectors.flagging import flag_samples, run_seed
from detectors.quality import IntakeRejects, data_quality, profile_reference
from detectors.reference import to_parquet
from detectors.runner import DetectionRunner, RunnerSettings
from tests.data import credit_events
from tests.detectors.test_evaluate import config as model_config
from tests.fixtures_app import Harness, upload_credit_reference

NO_RANDOM = LabelingConfig(random_share=0.0)
NO_REJECTS = IntakeRejects({}, {})


# any array: numpy releases type their arrays differently (2.2 vs 2.4)
Column = Sequence[object] | np.ndarray[Any, Any]


def window_of(
    features: Mapping[str, Column],
    *,
    prediction: Sequence[object] | None = None,
    scores: Mapping[str, Column] | None = None,
    labels: Sequence[object] | None = None,
) -> pd.DataFrame:
    """A frame as decode_window gives it: features under their names, the rest under the
    internal columns."""
    size = len(next(iter(features.values())))
    frame = pd.DataFrame({name: list(values) for name, values in features.items()})
    frame[EVENT_ID] = [f"e{i}" for i in range(size)]
    frame[TIMESTAMP] = 1_800_000_000.0 + np.arange(size)
    frame[INGESTED_AT] = 1_800_000_100.0
    frame[MODEL_VERSION] = "7"
    frame[PREDICTION] = pd.Series(list(prediction) if prediction else [None] * size, dtype=object)
    frame[LABEL] = pd.Series(list(labels) if labels else [None] * size, dtype=object)
    for cls, values in (scores or {}).items():
        frame[SCORE_PREFIX + cls] = np.asarray(values, dtype="float64")
    return frame


def ok_run(drifted: dict[str, ColumnKind] | None = None) -> RunResult:
    run = RunResult(run_id="1800000000000-abcd", model="m", status="ok", started_at="2027-01-15")
    run.columns = {
        name: ColumnResult(kind=kind, drifted=True) for name, kind in (drifted or {}).items()
    }
    return run


def by_id(flagged: list[FlaggedSample]) -> dict[str, FlaggedSample]:
    return {sample.event_id: sample for sample in flagged}


def with_reason(flagged: list[FlaggedSample], reason: str) -> list[FlaggedSample]:
    return [sample for sample in flagged if reason in sample.reasons]


def test_binary_low_confidence_is_flagged_the_most_uncertain_first() -> None:
    p = [0.5, 0.55, 0.99, 0.02, 0.42, 0.7]
    schema = ModelSchema(features={"x": "numerical"}, prediction="y", scores={"1": "score"})
    window = window_of({"x": [1.0] * 6}, prediction=["1"] * 6, scores={"1": p})
    reference = pd.DataFrame({"x": [1.0] * 6})
    flagged = flag_samples(window, reference, ok_run(), schema, NO_RANDOM, seed=1)
    # the top score is max(p, 1 - p): 0.5, 0.55, 0.58 under 0.6; 0.7, 0.98, 0.99 not
    assert [sample.event_id for sample in flagged] == ["e0", "e1", "e4"]
    assert all(sample.reasons == ["uncertainty"] for sample in flagged)
    assert flagged[0].details == ["confidence 0.50 < 0.60"]
    assert flagged[0].scores == {"1": 0.5}
    assert flagged[0].features == {"x": 1.0}
    assert flagged[0].prediction == "1"
    assert flagged[0].priority > flagged[1].priority > flagged[2].priority > 1.0


def multiclass() -> tuple[ModelSchema, pd.DataFrame]:
    rows = [
        (0.45, 0.45, 0.10),  # two classes in doubt: the smallest margin
        (0.34, 0.33, 0.33),  # doubt over all three: the highest entropy
        (0.90, 0.05, 0.05),  # sure
        (0.55, 0.40, 0.05),  # a margin of 0.15
    ]
    scores = {cls: [row[i] for row in rows] for i, cls in enumerate("abc")}
    schema = ModelSchema(features={"x": "numerical"}, prediction="y", scores={c: c for c in "abc"})
    return schema, window_of({"x": [0.0] * 4}, prediction=["a"] * 4, scores=scores)


def test_multiclass_margin_flags_a_close_second() -> None:
    schema, window = multiclass()
    labeling = LabelingConfig(uncertainty="margin", uncertainty_threshold=0.2, random_share=0)
    flagged = flag_samples(window, pd.DataFrame({"x": [0.0]}), ok_run(), schema, labeling, 1)
    assert [sample.event_id for sample in flagged] == ["e0", "e1", "e3"]
    assert flagged[0].details == ["margin 0.00 < 0.20 between the top two scores"]


def test_multiclass_entropy_flags_doubt_spread_over_the_classes() -> None:
    schema, window = multiclass()
    labeling = LabelingConfig(uncertainty="entropy", uncertainty_threshold=0.2, random_share=0)
    flagged = flag_samples(window, pd.DataFrame({"x": [0.0]}), ok_run(), schema, labeling, 1)
    # normalised entropies: 0.87, 1.00, 0.36, 0.77; flagged above 1 - 0.2
    assert [sample.event_id for sample in flagged] == ["e1", "e0"]
    assert flagged[0].details == ["normalised entropy 1.00 > 0.80"]


def test_out_of_range_and_denser_values_of_a_drifted_numerical_column() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"income": rng.uniform(0, 100, 5000), "age": rng.uniform(0, 1, 5000)})
    income = rng.uniform(0, 100, 1000)
    income[:300] = rng.uniform(40, 44, 300)  # 30% where the reference holds 4%
    income[300:305] = [150.0, 1000.0, -30.0, 101.0, 120.0]  # outside [0, 100]
    age = rng.uniform(0, 1, 1000)
    age[:5] = 7.0  # out of range too, but age did not drift
    schema = ModelSchema(features={"income": "numerical", "age": "numerical"})
    window = window_of({"income": income, "age": age})
    labeling = LabelingConfig(random_share=0, max_per_reason=20)
    run = ok_run({"income": "numerical"})
    flagged = flag_samples(window, reference, run, schema, labeling, seed=2)
    assert all(sample.reasons == ["drift_region"] for sample in flagged)
    assert len(flagged) == 20
    ids = [sample.event_id for sample in flagged]
    # the farthest outside first, then the rest outside, then the dense region
    assert ids[:5] == ["e301", "e300", "e302", "e304", "e303"]
    assert by_id(flagged)["e301"].details[0].startswith("income 1000 above the reference range")
    assert not any("age" in detail for sample in flagged for detail in sample.details)
    dense = flagged[5:]
    incomes = [sample.features["income"] for sample in dense]
    assert all(isinstance(value, float) and 40 <= value <= 44.5 for value in incomes)
    assert all("of the window vs" in sample.details[0] for sample in dense)
    assert all(3.0 > sample.priority >= 2.0 for sample in flagged)


def test_unseen_and_share_gaining_categories_of_a_drifted_column() -> None:
    reference = pd.DataFrame({"region": ["EU"] * 500 + ["US"] * 300 + ["APAC"] * 200})
    window = window_of({"region": ["EU"] * 200 + ["US"] * 300 + ["APAC"] * 480 + ["MARS"] * 20})
    schema = ModelSchema(features={"region": "categorical"})
    run = ok_run({"region": "categorical"})
    flagged = flag_samples(window, reference, run, schema, NO_RANDOM, seed=4)
    values = [sample.features["region"] for sample in flagged]
    assert len(flagged) == 50
    assert values[:20] == ["MARS"] * 20  # unseen first
    assert set(values[20:]) == {"APAC"}  # 48% against 20%; US kept its share, EU lost
    assert flagged[0].details == ["region: unseen category 'MARS'"]
    assert flagged[20].details == ["region 'APAC': 48.0% of the window vs 20.0% of the reference"]


def test_every_drifted_column_gets_its_share_of_the_cap() -> None:
    reference = pd.DataFrame({"a": ["x", "y"] * 500, "b": ["x", "y"] * 500})
    window = window_of({"a": ["new"] * 500 + ["x"] * 500, "b": ["x"] * 800 + ["y"] * 200})
    schema = ModelSchema(features={"a": "categorical", "b": "categorical"})
    run = ok_run({"a": "categorical", "b": "categorical"})
    labeling = LabelingConfig(random_share=0, max_per_reason=10)
    flagged = flag_samples(window, reference, run, schema, labeling, seed=4)
    assert len(flagged) == 10
    details = [detail for sample in flagged for detail in sample.details]
    # a's unseen category is the most severe, yet b's risen one gets its turns
    assert sum(detail.startswith("a: unseen") for detail in details) >= 5
    assert sum(detail.startswith("b 'x'") for detail in details) >= 5


def test_a_hashed_column_is_never_quoted() -> None:
    token = "f" * 32
    reference = pd.DataFrame({"email": ["a" * 32] * 500 + ["b" * 32] * 500})
    window = window_of({"email": ["a" * 32] * 90 + [token] * 10})
    schema = ModelSchema(features={"email": "categorical"}, pii={"email": "hash"})
    run = ok_run({"email": "categorical"})
    run.data_quality = data_quality(
        window, schema, profile_reference(reference, schema), NO_REJECTS
    )
    flagged = flag_samples(window, reference, run, schema, NO_RANDOM, seed=4)
    unseen = [sample for sample in flagged if sample.features["email"] == token]
    assert len(unseen) == 10
    assert unseen[0].reasons == ["drift_region", "data_quality"]
    assert unseen[0].details == ["email: unseen category"]
    assert not any(token in detail or "a" * 32 in detail for s in flagged for detail in s.details)


def test_wrong_predictions_confidently_wrong_first() -> None:
    p = [0.95, 0.6, 0.2, 0.8, 0.1, 0.99]
    predictions = ["1", "1", "0", "1", "0", "1"]
    labels = [0, "0", "0", 1.0, "1", None]  # wrong, wrong, right, right, wrong, no label
    schema = ModelSchema(
        features={"x": "numerical"},
        prediction="y",
        prediction_kind="categorical",
        scores={"1": "score"},
    )
    window = window_of({"x": [0.0] * 6}, prediction=predictions, scores={"1": p}, labels=labels)
    labeling = LabelingConfig(random_share=0, uncertainty_threshold=0.01)
    flagged = flag_samples(window, pd.DataFrame({"x": [0.0]}), ok_run(), schema, labeling, 1)
    assert [sample.event_id for sample in flagged] == ["e0", "e4", "e1"]
    assert flagged[0].details == ["predicted 1, label 0, with confidence 0.95"]
    assert flagged[0].label == 0
    assert flagged[1].details == ["predicted 0, label 1, with confidence 0.90"]
    assert all(sample.priority >= 3.0 for sample in flagged)


def test_the_largest_regression_errors() -> None:
    truth = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    predicted = [10.5, 9.5, 10.2, 9.9, 30.0, 10.1, 10.3, 18.0]
    schema = ModelSchema(features={"x": "numerical"}, prediction="y", prediction_kind="numerical")
    window = window_of({"x": [0.0] * 8}, prediction=predicted, labels=truth)
    flagged = flag_samples(window, pd.DataFrame({"x": [0.0]}), ok_run(), schema, NO_RANDOM, 1)
    assert [sample.event_id for sample in flagged] == ["e4", "e7"]
    assert flagged[0].reasons == ["production_error"]


def test_missing_values_where_the_reference_had_none() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"income": rng.normal(50, 10, 2000)})
    income = rng.normal(50, 10, 1000)
    income[::10] = np.nan  # 10% missing: a warning
    window = window_of({"income": income})
    schema = ModelSchema(features={"income": "numerical"})
    run = ok_run()
    run.data_quality = data_quality(
        window, schema, profile_reference(reference, schema), NO_REJECTS
    )
    assert [f.check for f in run.data_quality.findings] == ["missing_values"]
    labeling = LabelingConfig(random_share=0, max_per_reason=1000)
    flagged = flag_samples(window, reference, run, schema, labeling, seed=6)
    assert len(flagged) == 100
    assert all(sample.features["income"] is None for sample in flagged)
    assert flagged[0].reasons == ["data_quality"]
    assert flagged[0].details == ["income missing (10.0% of the window; the reference had none)"]


def test_out_of_range_values_a_finding_names() -> None:
    reference = pd.DataFrame({"age": np.linspace(18, 90, 1000)})
    age = np.linspace(20, 80, 1000)
    age[:50] = 500.0
    window = window_of({"age": age})
    schema = ModelSchema(features={"age": "numerical"})
    run = ok_run()
    run.data_quality = data_quality(
        window, schema, profile_reference(reference, schema), NO_REJECTS
    )
    flagged = flag_samples(window, reference, run, schema, NO_RANDOM, seed=6)
    assert len(flagged) == 50
    assert flagged[0].details == ["age 500 above the reference range [18, 90]"]
    assert flagged[0].reasons == ["data_quality"]


def test_the_random_share_is_its_size_and_the_same_for_a_seed() -> None:
    schema = ModelSchema(features={"x": "numerical"})
    window = window_of({"x": np.arange(300.0)})
    reference = pd.DataFrame({"x": np.arange(300.0)})
    labeling = LabelingConfig(random_share=0.1, max_random=1000)
    first = flag_samples(window, reference, ok_run(), schema, labeling, seed=run_seed("r1"))
    again = flag_samples(window, reference, ok_run(), schema, labeling, seed=run_seed("r1"))
    other = flag_samples(window, reference, ok_run(), schema, labeling, seed=run_seed("r2"))
    assert len(first) == 30
    assert first == again
    assert {s.event_id for s in first} != {s.event_id for s in other}
    assert all(s.reasons == ["random"] and s.priority == pytest.approx(0.1) for s in first)
    capped = LabelingConfig(random_share=0.5, max_random=7)
    assert len(flag_samples(window, reference, ok_run(), schema, capped, seed=1)) == 7
    assert run_seed("r1") == run_seed("r1") != run_seed("r2")


def test_each_reason_is_capped() -> None:
    p = np.full(500, 0.5)
    schema = ModelSchema(features={"x": "numerical"}, prediction="y", scores={"1": "score"})
    window = window_of({"x": np.zeros(500)}, prediction=["1"] * 500, scores={"1": p})
    labeling = LabelingConfig(max_per_reason=12, random_share=0.5, max_random=5)
    flagged = flag_samples(window, pd.DataFrame({"x": [0.0]}), ok_run(), schema, labeling, 9)
    assert len(with_reason(flagged, "uncertainty")) == 12
    assert len(with_reason(flagged, "random")) == 5
    assert len(flagged) <= 17


def test_a_sample_with_several_reasons_is_flagged_once_with_all_of_them() -> None:
    reference = pd.DataFrame({"region": ["EU"] * 500 + ["US"] * 500})
    regions = ["EU"] * 50 + ["US"] * 49 + ["MARS"]
    p = [0.9] * 99 + [0.55]
    schema = ModelSchema(
        features={"region": "categorical"},
        prediction="y",
        prediction_kind="categorical",
        scores={"1": "score"},
    )
    window = window_of(
        {"region": regions}, prediction=["1"] * 100, scores={"1": p}, labels=[None] * 99 + ["0"]
    )
    run = ok_run({"region": "categorical"})
    run.data_quality = data_quality(
        window, schema, profile_reference(reference, schema), NO_REJECTS
    )
    labeling = LabelingConfig(random_share=1.0, max_random=100)
    flagged = flag_samples(window, reference, run, schema, labeling, seed=3)
    assert len(flagged) == 100
    assert len({sample.event_id for sample in flagged}) == 100
    top = flagged[0]
    assert top.event_id == "e99"
    assert top.reasons == [
        "production_error",
        "drift_region",
        "data_quality",
        "uncertainty",
        "random",
    ]
    assert top.details[:2] == [
        "predicted 1, label 0, with confidence 0.55",
        "region: unseen category 'MARS'",
    ]
    assert "confidence 0.55 < 0.60" in top.details
    assert top.priority == pytest.approx(3.0 + 0.8 * 0.55 + 0.05 * 4)


def test_nothing_is_flagged_for_a_run_without_verdicts() -> None:
    schema = ModelSchema(features={"x": "numerical"})
    window = window_of({"x": np.arange(10.0)})
    run = ok_run().model_copy(update={"status": "insufficient_data"})
    labeling = LabelingConfig(random_share=1.0)
    assert flag_samples(window, pd.DataFrame({"x": [0.0]}), run, schema, labeling, 1) == []
    off = LabelingConfig(enabled=False, random_share=1.0)
    assert flag_samples(window, pd.DataFrame({"x": [0.0]}), ok_run(), schema, off, 1) == []


def stored_blocks(count: int, seed: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Events of the credit model as one stream block."""
    events = [
        Event(
            event_id=str(event["event_id"]),
            timestamp=1_800_000_000.0 + index,
            model_version="7",
            features=event["features"],  # type: ignore[arg-type]
            prediction=str(event["prediction"]),
            scores=event["scores"],  # type: ignore[arg-type]
        )
        for index, event in enumerate(credit_events(count, seed))
    ]
    batch = EncodedBatch.from_events(events, Layout(("age", "income"), ("region",)))
    fields = {
        b"l": batch.layout.encode(),
        b"n": str(len(batch)).encode(),
        b"x": batch.packed_numbers(),
        b"r": batch.joined_rows(),
    }
    return [(b"1800000000000-0", fields)]


def test_evaluate_and_flag_flags_from_the_window_it_decoded() -> None:
    from tests.data import credit_reference

    reference = credit_reference()
    schema = ModelSchema(
        features={"age": "numerical", "income": "numerical", "region": "categorical"},
        prediction="prediction",
        prediction_kind="categorical",
        scores={"1": "score"},
    )
    payload = ReferencePayload("sha256:0123abcd", to_parquet(reference))
    blocks = stored_blocks(400, seed=2)
    run = ok_run()
    labeling = LabelingConfig()
    config = model_config(multivariate_enabled=False)
    done = evaluate_and_flag(run, payload, blocks, {}, schema, config, NO_REJECTS, labeling)
    assert done.run.status == "ok"
    assert done.run.window.events == 400
    assert len(with_reason(done.flagged, "random")) == 40
    assert with_reason(done.flagged, "uncertainty")
    assert all(s.event_id.startswith("ev-2-") for s in done.flagged)
    again = evaluate_and_flag(run, payload, blocks, {}, schema, config, NO_REJECTS, labeling)
    assert again.flagged == done.flagged
    assert evaluate_and_flag(run, payload, blocks, {}, schema, config, NO_REJECTS).flagged == []
    few = stored_blocks(50, seed=2)
    short = evaluate_and_flag(run, payload, few, {}, schema, config, NO_REJECTS, labeling)
    assert short.run.status == "insufficient_data"
    assert short.flagged == []


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.published: list[tuple[RunResult, list[FlaggedSample]]] = []

    async def publish(
        self,
        run: RunResult,
        previous: RunResult | None,
        flagged: Sequence[FlaggedSample] = (),
    ) -> None:
        self.published.append((run, list(flagged)))


async def test_the_runner_hands_the_flagged_samples_to_its_sinks(harness: Harness) -> None:
    await upload_credit_reference(harness.client, "credit")
    response = await harness.client.post(
        "/v1/models/credit/events", json=credit_events(300, seed=7)
    )
    assert response.status_code == 202, response.text
    services = harness.services
    recorder = Recorder()
    labeling = {"credit": LabelingConfig(random_share=0.1)}
    with ThreadPoolExecutor(1) as executor:
        runner = DetectionRunner(
            services.stores,
            harness.clock,
            executor,
            services.config_for,
            sinks=[recorder],
            sink_failures=services.metrics,
            settings=RunnerSettings(),
            labeling_for=labeling.get,
        )
        result = await runner.run("credit")
        unlabeled = DetectionRunner(
            services.stores,
            harness.clock,
            executor,
            services.config_for,
            sinks=[recorder],
            sink_failures=services.metrics,
            settings=RunnerSettings(),
        )
        await unlabeled.run("credit")
    assert result.status == "ok"
    (run, flagged), (_, none) = recorder.published
    assert run.run_id == result.run_id
    assert len(with_reason(flagged, "random")) == 30
    assert {sample.event_id for sample in flagged} <= {f"ev-7-{i}" for i in range(300)}
    assert none == []


def test_a_categorical_column_with_missing_values_names_the_right_categories() -> None:
    """Descriptions are looked up among the present values: with missing ones before
    them, a window position must not be read as a position among the present."""
    reference = pd.DataFrame({"region": ["EU"] * 500 + ["US"] * 500})
    window = window_of({"region": [None] * 300 + ["EU"] * 400 + ["MARS"] * 300})
    schema = ModelSchema(features={"region": "categorical"})
    run = ok_run({"region": "categorical"})
    flagged = flag_samples(window, reference, run, schema, NO_RANDOM, seed=4)
    assert flagged
    for sample in flagged:
        assert sample.features["region"] == "MARS"
        assert sample.details == ["region: unseen category 'MARS'"]
