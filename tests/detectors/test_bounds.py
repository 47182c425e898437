"""A run's work and result stay bounded whatever the window holds: thousands of model
versions, thousands of unknown fields."""

from __future__ import annotations

from core.results import RunResult
from detectors.evaluate import evaluate
from detectors.quality import IntakeRejects, data_quality, profile_reference
from detectors.window import as_reference_columns
from tests.detectors.test_evaluate import (
    NO_REJECTS,
    as_window,
    config,
    labeled_reference,
    new_run,
    prepared,
)

SMALL_RESULT_BYTES = 100_000


def many_versions(distinct: int) -> list[str]:
    """v0 the most frequent, v1..v9 next (50 events each), then 2 events per version."""
    versions = ["v0"] * 1000
    for index in range(1, distinct):
        versions += [f"v{index}"] * (50 if index < 10 else 2)
    return versions


def run_with_versions(versions: list[str], **settings: object) -> RunResult:
    payload, schema, _ = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(len(versions), seed=2), schema, versions=versions)
    settings.setdefault("multivariate_enabled", False)  # not what these tests are about
    return evaluate(new_run(), payload, window, schema, config(**settings), NO_REJECTS)


def test_only_the_most_frequent_versions_are_compared_and_the_rest_counted() -> None:
    versions = many_versions(2000)
    result = run_with_versions(versions)
    compared = result.prediction.versions
    assert compared is not None
    assert compared.stable == "v0"
    assert list(compared.events) == [f"v{index}" for index in range(10)]
    assert len(compared.candidates) <= 10
    assert set(compared.candidates) == {f"v{index}" for index in range(1, 10)}
    assert compared.other_versions == 2000 - 10
    assert compared.other_events is not None
    assert sum(compared.events.values()) + compared.other_events == len(versions)
    assert len(result.model_dump_json()) < SMALL_RESULT_BYTES


def test_the_version_cap_is_a_setting_and_ties_go_by_name() -> None:
    versions = ["a"] * 300 + ["c"] * 100 + ["b"] * 100 + ["d"] * 100
    compared = run_with_versions(versions, max_model_versions=2).prediction.versions
    assert compared is not None
    assert compared.events == {"a": 300, "b": 100}
    assert (compared.other_versions, compared.other_events) == (2, 200)


def test_a_window_under_the_cap_has_no_other_fields() -> None:
    compared = run_with_versions(["7"] * 300 + ["8"] * 200).prediction.versions
    assert compared is not None
    assert (compared.other_versions, compared.other_events) == (None, None)
    assert "other_" not in compared.model_dump_json()


def test_ten_thousand_unknown_fields_make_a_bounded_report() -> None:
    payload, schema, reference = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(500, seed=2), schema)
    # field f<i> sent by i % 50 + 1 records: the largest are f49, f99, f149, ...
    unknown = {f"f{index}": index % 50 + 1 for index in range(10_000)}
    rejects = IntakeRejects(type_mismatches={}, unknown_fields=unknown)
    quality = data_quality(
        as_reference_columns(window, schema), schema, profile_reference(reference, schema), rejects
    )
    new_column_findings = [f for f in quality.findings if f.check == "new_column"]
    assert len(new_column_findings) == 20
    assert {f.value for f in new_column_findings} == {50}
    assert quality.omitted_findings == {"new_column": 10_000 - 20}
    assert len(quality.schema_changes.new_columns) == 20
    assert set(quality.schema_changes.new_columns.values()) == {50}
    assert quality.schema_changes.omitted_new_columns == 10_000 - 20
    assert quality.worst_severity == "warning"
    quick = config(multivariate_enabled=False)
    result = evaluate(new_run(), payload, window, schema, quick, rejects)
    assert result.data_quality is not None
    assert len(result.data_quality.findings) <= 20 * 6
    assert len(result.model_dump_json()) < SMALL_RESULT_BYTES


def test_findings_over_the_cap_keep_the_largest_in_report_order() -> None:
    _, schema, reference = prepared(labeled_reference(3000, seed=1))
    window = as_reference_columns(as_window(labeled_reference(500, seed=2), schema), schema)
    rejects = IntakeRejects(type_mismatches={"age": 3, "income": 5, "region": 1}, unknown_fields={})
    profile = profile_reference(reference, schema)
    quality = data_quality(window, schema, profile, rejects, max_findings_per_check=2)
    mismatches = [(f.column, f.value) for f in quality.findings if f.check == "type_mismatch"]
    assert mismatches == [("age", 3), ("income", 5)]
    assert quality.omitted_findings == {"type_mismatch": 1}


def test_the_most_severe_findings_are_kept() -> None:
    _, schema, reference = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(1000, seed=2), schema)
    window.loc[:99, "age"] = None  # 10% more missing: a warning, listed first
    window.loc[:299, "income"] = None  # 30% more: critical
    profile = profile_reference(reference, schema)
    current = as_reference_columns(window, schema)
    quality = data_quality(current, schema, profile, NO_REJECTS, max_findings_per_check=1)
    missing = [(f.column, f.severity) for f in quality.findings if f.check == "missing_values"]
    assert missing == [("income", "critical")]
    assert quality.omitted_findings == {"missing_values": 1}
    assert quality.worst_severity == "critical"
    uncapped = data_quality(current, schema, profile, NO_REJECTS)
    assert uncapped.omitted_findings is None
    assert "omitted" not in uncapped.model_dump_json()


def test_findings_cap_reaches_evaluate_through_the_config() -> None:
    payload, schema, _ = prepared(labeled_reference(3000, seed=1))
    window = as_window(labeled_reference(500, seed=2), schema)
    rejects = IntakeRejects(type_mismatches={}, unknown_fields={"x": 1, "y": 2, "z": 3})
    capped = config(max_findings_per_check=1, multivariate_enabled=False)
    result = evaluate(new_run(), payload, window, schema, capped, rejects)
    assert result.data_quality is not None
    assert result.data_quality.schema_changes.new_columns == {"z": 3}
    assert result.data_quality.omitted_findings == {"new_column": 2}
