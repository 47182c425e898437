"""A whole evaluation: data quality, performance with labels, multivariate shift and
version comparison, on seeded synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.blocks import EVENT_ID, INGESTED_AT, LABEL, MODEL_VERSION, PREDICTION, SCORE_PREFIX
from core.config import EffectiveModelConfig, ModelConfig, effective_config
from core.results import ClassificationMetrics, RegressionMetrics, RunResult
from core.schema import ModelSchema
from detectors.drift import DriftPolicy
from detectors.evaluate import ReferencePayload, evaluate
from detectors.multivariate import domain_classifier
from detectors.performance import performance
from detectors.quality import IntakeRejects, data_quality, profile_reference
from detectors.reference import ReferenceRoles, prepare_reference, to_parquet
from detectors.window import as_reference_columns
from service.config import Settings

NO_REJECTS = IntakeRejects({}, {})


def labeled_reference(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows)
    income = rng.normal(50_000, 10_000, rows)
    region = rng.choice(["EU", "US", "APAC"], rows, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(age - 40) / 5))
    label = (rng.random(rows) < score).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "region": region,
            "prediction": (score > 0.5).astype(int),
            "score": score,
            "label": label,
        }
    )


def as_window(
    frame: pd.DataFrame, schema: ModelSchema, versions: list[str] | None = None
) -> pd.DataFrame:
    """A reference-like frame as the event store would return it."""
    window = frame[list(schema.features)].copy()
    window[EVENT_ID] = [f"e{i}" for i in range(len(frame))]
    window[INGESTED_AT] = 1_800_000_000.0
    window[MODEL_VERSION] = versions or ["7"] * len(frame)
    window[PREDICTION] = frame["prediction"].astype(str).to_numpy()
    window[SCORE_PREFIX + "1"] = frame["score"].to_numpy()
    window[LABEL] = frame["label"].astype(str).to_numpy() if "label" in frame else None
    return window


def prepared(frame: pd.DataFrame) -> tuple[ReferencePayload, ModelSchema, pd.DataFrame]:
    roles = ReferenceRoles(prediction="prediction", scores="score", label="label")
    reference = prepare_reference(frame.to_csv(index=False).encode(), roles)
    return (
        ReferencePayload(reference.version, to_parquet(reference.frame)),
        reference.schema,
        reference.frame,
    )


def new_run() -> RunResult:
    return RunResult(run_id="r", model="m", status="ok", started_at="2027-01-15T08:00:00Z")


def config(**overrides: object) -> EffectiveModelConfig:
    settings = Settings(min_window_events=100, **overrides)  # type: ignore[arg-type]
    return effective_config(settings.model_defaults(), ModelConfig(name="m"))


def test_data_quality_findings_and_severities() -> None:
    _, schema, reference = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(1000, seed=2), schema)
    window.loc[:299, "income"] = np.nan
    window.loc[:199, "region"] = "MARS"
    window.loc[:49, "age"] = 500.0
    rejects = IntakeRejects(type_mismatches={"age": 3}, unknown_fields={"shoe_size": 7})
    quality = data_quality(
        as_reference_columns(window, schema), schema, profile_reference(reference, schema), rejects
    )
    by_check = {(f.column, f.check): f for f in quality.findings}
    assert by_check[("income", "missing_values")].severity == "critical"
    assert by_check[("region", "unseen_categories")].severity == "critical"
    assert by_check[("age", "out_of_range")].severity == "warning"
    assert by_check[("age", "type_mismatch")].value == 3
    assert by_check[("shoe_size", "new_column")].value == 7
    assert quality.columns["region"].unseen_categories == {"MARS": 200}
    assert quality.columns["region"].out_of_range_share is None
    assert quality.columns["age"].reference_range is not None
    assert quality.columns["income"].missing_share == 0.3
    assert quality.worst_severity == "critical"
    assert quality.schema_changes.new_columns == {"shoe_size": 7}


def test_a_clean_window_has_no_findings() -> None:
    _, schema, reference = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(1000, seed=2), schema)
    quality = data_quality(window, schema, profile_reference(reference, schema), NO_REJECTS)
    assert quality.findings == []
    assert quality.worst_severity is None


def test_performance_needs_labels_and_reports_the_drop() -> None:
    _, schema, reference = prepared(labeled_reference(3000, seed=1))
    frame = labeled_reference(1000, seed=3)
    window = as_reference_columns(as_window(frame, schema), schema)
    policy = DriftPolicy()
    few = window.copy()
    few.loc[30:, "label"] = None
    sparse = performance(reference, few, schema, 50, policy)
    assert sparse is not None
    assert sparse.status == "insufficient_labels"
    assert sparse.label_coverage == 0.03
    assert sparse.window is None
    healthy = performance(reference, window, schema, 50, policy)
    assert healthy is not None
    assert healthy.status == "ok"
    assert isinstance(healthy.drop, ClassificationMetrics)
    assert abs(healthy.drop.accuracy) < 0.05
    assert isinstance(healthy.window, ClassificationMetrics)
    assert healthy.window.roc_auc is not None
    assert healthy.window.roc_auc > 0.7
    broken = window.copy()
    broken["label"] = np.where(broken["label"] == "1", "0", "1")  # the world flipped
    worse = performance(reference, broken, schema, 50, policy)
    assert worse is not None
    assert isinstance(worse.drop, ClassificationMetrics)
    assert worse.drop.accuracy > 0.4
    assert isinstance(worse.window, ClassificationMetrics)
    assert worse.window.roc_auc is not None
    assert worse.window.roc_auc < 0.3
    assert worse.label_drift is not None
    assert worse.label_drift.kind == "categorical"


def test_regression_quality() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y_hat": rng.normal(size=500)})
    frame["y"] = frame["y_hat"] + rng.normal(0, 0.5, 500)
    reference = prepare_reference(
        frame.to_csv(index=False).encode(), ReferenceRoles(prediction="y_hat", label="y")
    )
    assert reference.schema.prediction_kind == "numerical"
    result = performance(reference.frame, reference.frame, reference.schema, 50, DriftPolicy())
    assert result is not None
    assert result.task == "regression"
    assert isinstance(result.window, RegressionMetrics)
    assert 0.3 < result.window.mae < 0.5
    assert isinstance(result.drop, RegressionMetrics)
    assert result.drop.rmse == 0.0


def correlated(rows: int, seed: int, correlation: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = rng.normal(size=rows)
    second = correlation * first + np.sqrt(1 - correlation**2) * rng.normal(size=rows)
    return pd.DataFrame({"a": first, "b": second, "c": rng.normal(size=rows)})


def test_multivariate_catches_a_flipped_correlation_the_columns_miss() -> None:
    schema = ModelSchema(features={"a": "numerical", "b": "numerical", "c": "numerical"})
    reference = correlated(4000, seed=1, correlation=0.8)
    flipped = correlated(2000, seed=2, correlation=-0.8)
    same = correlated(2000, seed=3, correlation=0.8)
    shift = domain_classifier(reference, flipped, schema, sample=2000, threshold=0.6)
    calm = domain_classifier(reference, same, schema, sample=2000, threshold=0.6)
    assert shift.drifted is True
    assert shift.score is not None
    assert shift.score > 0.75
    assert calm.drifted is False
    assert calm.score is not None
    assert calm.score < 0.56
    from detectors.drift import ColumnSpec, detect_drift

    specs = [ColumnSpec(name, "numerical") for name in "abc"]
    assert not any(r.drifted for r in detect_drift(reference, flipped, specs).values())


def test_evaluate_compares_model_versions() -> None:
    payload, schema, _ = prepared(labeled_reference(3000, seed=1))
    stable = labeled_reference(800, seed=5)
    canary = labeled_reference(400, seed=6)
    canary["score"] = np.clip(canary["score"] + 0.3, 0, 1)
    canary["prediction"] = (canary["score"] > 0.5).astype(int)
    both = pd.concat([stable, canary], ignore_index=True)
    window = as_window(both, schema, versions=["7"] * 800 + ["8"] * 400)
    run = new_run()
    result = evaluate(run, payload, window, schema, config(), NO_REJECTS)
    versions = result.prediction.versions
    assert versions is not None
    assert versions.stable == "7"
    assert versions.events == {"7": 800, "8": 400}
    canary_verdicts = versions.candidates["8"]
    assert canary_verdicts.prediction.drifted is True
    assert canary_verdicts.confidence is not None
    assert canary_verdicts.confidence.drifted is True
    assert result.status == "ok"
    assert result.multivariate is not None
    assert result.multivariate.method == "domain_classifier"
    assert result.performance is not None
    assert result.performance.labeled_events == 1200
    assert run.columns == {}  # the run passed in is left as it was


def test_reference_rows_are_capped_deterministically() -> None:
    payload, schema, _ = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(500, seed=2), schema)
    capped = config(reference_max_rows=1000)
    first = evaluate(new_run(), payload, window, schema, capped, NO_REJECTS)
    second = evaluate(new_run(), payload, window, schema, capped, NO_REJECTS)
    assert first.columns["age"].reference_size == 1000
    assert first.columns["age"].score == second.columns["age"].score
