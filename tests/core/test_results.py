"""RunResult's JSON is stable: runs stored before its sections were typed read back and
write out byte for byte, and a run of the same inputs today writes the same JSON (keys,
key order, types; floats to 1e-12, see assert_same_json).

The fixtures are runs of tests/core/scenarios.py, as written before the sections were
typed (see there)."""

from __future__ import annotations

import json
import math

import pytest

from core.results import (
    ClassificationMetrics,
    ColumnQuality,
    ColumnResult,
    DataQuality,
    Finding,
    KpiComparison,
    KpiSummary,
    MeanConfidence,
    ModelVersions,
    Multivariate,
    Performance,
    PredictionSection,
    RegressionMetrics,
    RunResult,
    SchemaChanges,
    VersionComparison,
)
from tests.core.scenarios import SCENARIOS, VOLATILE_FIELDS, Scenario, run_scenario

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def stored(name: str) -> RunResult:
    return RunResult.model_validate_json(BY_NAME[name].fixture.read_bytes())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_a_stored_run_writes_back_the_same_bytes(scenario: Scenario) -> None:
    raw = scenario.fixture.read_bytes()
    run = RunResult.model_validate_json(raw)
    assert run.model_dump_json().encode() == raw
    # the API's path: FastAPI dumps the returned model to Python, validates and writes it
    assert RunResult.model_validate(run.model_dump()).model_dump_json().encode() == raw


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
async def test_a_new_run_of_the_same_inputs_writes_the_same_json(
    scenario: Scenario, redis_url: str, key_prefix: str
) -> None:
    raw = scenario.fixture.read_bytes()
    fresh = await run_scenario(scenario, redis_url, key_prefix)
    old = RunResult.model_validate_json(raw)
    volatile = {name: getattr(old, name) for name in VOLATILE_FIELDS}
    written = fresh.model_copy(update=volatile).model_dump_json().encode()
    assert_same_json(json_tree(written), json_tree(raw))


def json_tree(raw: bytes) -> object:
    """The JSON with each object as a list of (key, value) pairs: key order counts."""
    return json.loads(raw, object_pairs_hook=list)


def assert_same_json(actual: object, expected: object, path: str = "$") -> None:
    """The same keys in the same order, the same types (1 is not 1.0) and values; floats
    to 1e-12. Evidently orders categories by a set of strings, whose order changes with
    each process's hash seed, so a categorical score's last bits vary between runs."""
    assert type(actual) is type(expected), f"{path}: {actual!r} vs {expected!r}"
    if isinstance(actual, list) and isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {actual!r} vs {expected!r}"
        for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(mine, theirs, f"{path}[{index}]")
    elif isinstance(actual, tuple) and isinstance(expected, tuple):  # (key, value)
        assert actual[0] == expected[0], f"{path}: key {actual[0]!r} vs {expected[0]!r}"
        assert_same_json(actual[1], expected[1], f"{path}.{expected[0]}")
    elif isinstance(actual, float) and isinstance(expected, float):
        assert math.isclose(actual, expected, rel_tol=1e-12), f"{path}: {actual} vs {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} vs {expected!r}"


def test_the_sections_of_a_full_run_are_typed() -> None:
    run = stored("classifier_full")
    assert isinstance(run.prediction, PredictionSection)
    assert isinstance(run.prediction.drift, ColumnResult)
    assert isinstance(run.prediction.mean_confidence, MeanConfidence)
    assert isinstance(run.prediction.versions, ModelVersions)
    assert isinstance(run.prediction.versions.candidates["8"], VersionComparison)
    assert isinstance(run.performance, Performance)
    assert isinstance(run.performance.window, ClassificationMetrics)
    assert isinstance(run.performance.drop, ClassificationMetrics)
    assert isinstance(run.performance.label_drift, ColumnResult)
    assert isinstance(run.multivariate, Multivariate)
    assert run.multivariate.drifted is True
    assert isinstance(run.kpis["complaints"], KpiComparison)
    assert run.kpis["complaints"].window == KpiSummary(count=0)


def test_data_quality_keeps_counts_as_integers_and_shares_as_floats() -> None:
    quality = stored("classifier_full").data_quality
    assert isinstance(quality, DataQuality)
    assert isinstance(quality.schema_changes, SchemaChanges)
    assert quality.schema_changes.missing_columns == ["channel"]
    age, region = quality.columns["age"], quality.columns["region"]
    assert isinstance(age, ColumnQuality)
    assert isinstance(age.reference_range, tuple)
    assert age.unseen_categories is None
    assert region.unseen_categories == {"MARS": 30}
    assert region.reference_range is None
    values = {(f.column, f.check): f.value for f in quality.findings}
    assert all(isinstance(finding, Finding) for finding in quality.findings)
    assert type(values[("age", "type_mismatch")]) is int
    assert type(values[("shoe_size", "new_column")]) is int
    assert type(values[("channel", "missing_column")]) is float
    assert type(values[("income", "missing_values")]) is float


def test_absent_sections_are_none_and_empty_in_the_json() -> None:
    regression = stored("regression")
    assert isinstance(regression.performance, Performance)
    assert isinstance(regression.performance.window, RegressionMetrics)
    assert regression.performance.reference is None  # the reference had no labels
    features_only = stored("features_only")
    assert features_only.performance is None
    assert features_only.multivariate is None
    assert features_only.prediction == PredictionSection()
    few_labels = stored("few_labels")
    assert few_labels.performance is not None
    assert few_labels.performance.status == "insufficient_labels"
    assert few_labels.multivariate == Multivariate(status="insufficient_data", sample_size=55)
    error = stored("error")
    assert error.data_quality is None
    sections = ("prediction", "performance", "data_quality", "multivariate", "kpis")
    assert error.model_dump(include=set(sections)) == {section: {} for section in sections}
