"""Drift verdicts: drifted windows are flagged, same-distribution windows are not, and
the scores are Evidently's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.drift import ColumnSpec, DriftPolicy, detect_drift, drifted_share
from detectors.report import build_report_html
from tests.data import credit_reference

SPECS = [
    ColumnSpec("age", "numerical"),
    ColumnSpec("income", "numerical"),
    ColumnSpec("region", "categorical"),
]


def window(rows: int, seed: int, age_shift: float = 0.0) -> pd.DataFrame:
    frame = credit_reference(rows, seed)
    frame["age"] += age_shift
    return frame


def test_same_distribution_is_not_flagged() -> None:
    results = detect_drift(credit_reference(), window(2000, seed=2), SPECS)
    assert {name: result.drifted for name, result in results.items()} == {
        "age": False,
        "income": False,
        "region": False,
    }
    assert drifted_share(results) == 0.0


def test_shifted_feature_is_flagged_alone() -> None:
    results = detect_drift(credit_reference(), window(2000, seed=2, age_shift=8), SPECS)
    assert results["age"].drifted is True
    assert results["age"].score is not None
    assert results["age"].threshold is not None
    assert results["age"].score > results["age"].threshold
    assert results["income"].drifted is False
    assert drifted_share(results) == pytest.approx(1 / 3)


def test_default_methods_are_distances_at_every_size() -> None:
    results = detect_drift(credit_reference(), window(2000, seed=2), SPECS)
    assert results["income"].method == "wasserstein"
    assert results["region"].method == "jensenshannon"
    small = detect_drift(credit_reference(500), window(300, seed=3), SPECS)
    assert small["income"].method == "wasserstein"
    assert small["region"].method == "jensenshannon"


def test_evidently_policy_defers_to_evidently_defaults() -> None:
    policy = DriftPolicy(default_methods="evidently")
    small = detect_drift(credit_reference(500), window(300, seed=3), SPECS, policy)
    assert small["income"].method == "ks"
    assert small["region"].method == "chisquare"
    large = detect_drift(credit_reference(), window(2000, seed=2), SPECS, policy)
    assert large["income"].method == "wasserstein"


def test_configured_method_and_threshold_are_used() -> None:
    specs = [ColumnSpec("income", "numerical", method="psi", threshold=0.3)]
    result = detect_drift(credit_reference(), window(2000, seed=2), specs)["income"]
    assert (result.method, result.threshold) == ("psi", 0.3)


def test_an_empty_column_is_no_data_and_does_not_fail_the_others() -> None:
    current = window(2000, seed=2, age_shift=8)
    current["income"] = np.nan
    current = current.drop(columns=["region"])
    results = detect_drift(credit_reference(), current, SPECS)
    assert results["income"].status == "insufficient_data"
    assert results["income"].missing_share == 1.0
    assert results["region"].status == "insufficient_data"
    assert results["age"].drifted is True
    assert drifted_share(results) == 1.0


def test_scores_match_evidently_value_drift_report() -> None:
    """Also the canary for the pandas pin: evidently must import and run a report."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    reference = credit_reference()
    current = window(1500, seed=4, age_shift=3)
    ours = detect_drift(reference, current, SPECS)
    definition = DataDefinition(numerical_columns=["age", "income"], categorical_columns=["region"])
    snapshot = Report([ValueDrift(column=spec.name) for spec in SPECS]).run(
        Dataset.from_pandas(current[["age", "income", "region"]], data_definition=definition),
        Dataset.from_pandas(reference[["age", "income", "region"]], data_definition=definition),
    )
    theirs = {metric["config"]["column"]: metric["value"] for metric in snapshot.dict()["metrics"]}
    for name, result in ours.items():
        assert result.score == pytest.approx(theirs[name], rel=1e-9)


def test_small_columns_are_insufficient_data() -> None:
    results = detect_drift(credit_reference(), window(150, seed=6, age_shift=20), SPECS)
    assert {result.status for result in results.values()} == {"insufficient_data"}
    assert all(result.drifted is None for result in results.values())
    assert "150 usable values" in (results["age"].note or "")


def test_a_failing_column_is_an_error_of_that_column_only() -> None:
    specs = [ColumnSpec("age", "numerical", method="no_such_method"), SPECS[1]]
    results = detect_drift(credit_reference(), window(1000, seed=7), specs)
    assert results["age"].status == "error"
    assert "no_such_method" in (results["age"].note or "")
    assert results["income"].status == "ok"


def test_report_html_names_the_columns() -> None:
    html = build_report_html(credit_reference(), window(500, seed=5), SPECS, "credit · run x")
    assert "<html" in html.lower()
    for name in ("age", "income", "region"):
        assert name in html
