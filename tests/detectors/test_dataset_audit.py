"""The dataset audit finds what was planted in a clean training set (duplicates exact and
near, a leaking column, label conflicts, a constant column, a high-cardinality
categorical, a shifted column in another file) and flags nothing in the clean one."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from core.dataset_audit import MAX_LISTED, AuditThresholds, DatasetAudit
from detectors.audit_duplicates import round_significant
from detectors.dataset_audit import AuditInputError, audit_dataset, audit_reference
from detectors.reference import ReferenceRoles, prepare_reference
from tests.audit_data import (
    clean_training_set,
    with_exact_duplicates,
    with_label_conflicts,
    with_near_duplicates,
)


def scores(audit: DatasetAudit) -> dict[str, float | None]:
    return {score.column: score.score for score in audit.leakage}


def test_a_clean_set_has_no_findings() -> None:
    audit = audit_dataset(clean_training_set(), label="label")
    assert audit.findings == []
    assert audit.duplicates.exact_rows == audit.duplicates.near_rows == 0
    assert audit.leakage_suspects == []
    assert audit.constant_columns == []
    assert audit.label_conflicts is not None
    assert audit.label_conflicts.groups == 0


def test_random_and_id_columns_do_not_leak() -> None:
    audit = audit_dataset(clean_training_set(), label="label")
    found = scores(audit)
    assert found["noise"] is not None
    assert found["noise"] < 0.6
    assert found["region"] is not None
    assert found["region"] < 0.6
    # every id is unseen out of fold: its label rate is the prior, whatever the label
    assert found["id"] is not None
    assert abs(found["id"] - 0.5) < 0.05
    assert "id" in audit.high_cardinality  # it is id-like all the same
    # a real, imperfect relation scores above chance and below the line
    assert found["age"] is not None
    assert 0.6 < found["age"] < audit.thresholds.leakage_auc


def test_planted_exact_duplicates_are_counted_and_located() -> None:
    frame = clean_training_set()
    audit = audit_dataset(with_exact_duplicates(frame, [3, 7, 7]), label="label")
    assert audit.duplicates.exact_rows == 3
    assert audit.duplicates.exact_examples == [len(frame), len(frame) + 1, len(frame) + 2]
    assert audit.duplicates.near_rows == 0
    assert [finding.kind for finding in audit.findings] == ["exact_duplicates"]


def test_planted_near_duplicates_are_not_exact_ones() -> None:
    frame = clean_training_set()
    audit = audit_dataset(with_near_duplicates(frame, [1, 2]), label="label")
    assert audit.duplicates.exact_rows == 0
    assert audit.duplicates.near_rows == 2
    assert audit.duplicates.near_examples == [len(frame), len(frame) + 1]
    assert "near_duplicates" in [finding.kind for finding in audit.findings]


def test_near_duplicates_follow_the_digits() -> None:
    frame = pd.DataFrame({"x": [1.23456, 1.23457, 1.3], "n": [1001, 1001, 1001]})
    assert audit_dataset(frame).duplicates.near_rows == 1  # differ in the 6th digit
    coarse = AuditThresholds(near_digits=1)
    assert audit_dataset(frame, thresholds=coarse).duplicates.near_rows == 2
    ids = pd.DataFrame({"n": [1000001, 1000002, 1000003]})  # integers compare exactly
    assert audit_dataset(ids, thresholds=coarse).duplicates.near_rows == 0


def test_rounding_is_canonical_across_a_power_of_ten() -> None:
    rounded = round_significant(np.array([9.99996, 10.0001, -0.0, 0.0, np.nan]), 4)
    assert rounded[0] == rounded[1]
    assert rounded[2] == rounded[3]
    assert not np.signbit(rounded[2])
    assert np.isnan(rounded[4])


def test_a_numerical_leak_is_a_suspect_in_either_direction() -> None:
    frame = clean_training_set()
    rng = np.random.default_rng(5)
    frame["days_to_default"] = -frame["label"] * 30 + rng.normal(0, 1, len(frame))
    audit = audit_dataset(frame, label="label")
    assert audit.leakage_suspects == ["days_to_default"]
    assert audit.findings[0].columns == ["days_to_default"]


def test_a_categorical_leak_is_a_suspect_out_of_fold() -> None:
    frame = clean_training_set()
    frame["outcome_code"] = np.where(frame["label"] == 1, "charged_off", "current")
    audit = audit_dataset(frame, label="label")
    assert audit.leakage_suspects == ["outcome_code"]


def test_multiclass_leak_names_the_class() -> None:
    frame = clean_training_set()
    rng = np.random.default_rng(6)
    frame["label"] = rng.choice(["a", "b", "c"], len(frame))
    frame["flag_c"] = (frame["label"] == "c").astype(float)
    audit = audit_dataset(frame, label="label")
    leak = next(score for score in audit.leakage if score.column == "flag_c")
    assert leak.suspect
    assert leak.positive_class == "c"
    assert audit.class_balance is not None
    assert set(audit.class_balance.counts) == {"a", "b", "c"}


def test_regression_label_uses_spearman_and_skips_classes() -> None:
    frame = clean_training_set()
    rng = np.random.default_rng(7)
    frame["label"] = frame["income"] * 0.1 + rng.normal(0, 3000, len(frame))
    frame["loss_given_default"] = frame["label"] ** 3  # monotone: rho 1
    audit = audit_dataset(frame, label="label")
    assert audit.label_task == "regression"
    assert audit.class_balance is None
    assert audit.label_conflicts is None
    assert {score.metric for score in audit.leakage} == {"spearman"}
    assert audit.leakage_suspects == ["loss_given_default"]
    noise = scores(audit)["noise"]
    assert noise is not None
    assert noise < 0.2


def test_planted_label_conflicts_estimate_the_noise() -> None:
    frame = clean_training_set()
    audit = audit_dataset(with_label_conflicts(frame, [0, 10, 20]), label="label")
    conflicts = audit.label_conflicts
    assert conflicts is not None
    assert (conflicts.groups, conflicts.rows) == (3, 6)
    # one of each pair is outside its group's majority (a tie: either one)
    assert conflicts.noise_rate == pytest.approx(3 / (len(frame) + 3))
    assert "label_conflicts" in [finding.kind for finding in audit.findings]


def test_constant_and_empty_columns_are_flagged_but_not_sparse_ones() -> None:
    frame = clean_training_set()
    frame["currency"] = "EUR"
    frame["unused"] = np.nan
    frame["sometimes"] = np.where(np.arange(len(frame)) % 2 == 0, 1.0, np.nan)
    audit = audit_dataset(frame, label="label")
    assert audit.constant_columns == ["currency", "unused"]
    missing = {column.name: column.missing_share for column in audit.columns}
    assert missing["unused"] == 1.0
    assert missing["sometimes"] == 0.5
    assert missing["age"] == 0.0


def test_high_cardinality_categorical_is_flagged() -> None:
    frame = clean_training_set()
    rng = np.random.default_rng(8)
    frame["merchant"] = rng.choice([f"m{i}" for i in range(300)], len(frame))
    audit = audit_dataset(frame, label="label")
    assert audit.high_cardinality == ["id", "merchant"]
    assert "merchant" not in audit.leakage_suspects
    assert [f.kind for f in audit.findings] == []  # worth knowing, not a finding


def test_against_a_shifted_file_finds_the_column_and_the_domain_shift() -> None:
    frame = clean_training_set(seed=11)
    other = clean_training_set(seed=12)
    other["income"] += 20_000  # two standard deviations
    comparison = audit_dataset(frame, label="label", other=other).comparison
    assert comparison is not None
    assert comparison.drifted == ["income"]
    assert comparison.domain.score is not None
    assert comparison.domain.score > 0.8
    assert comparison.domain.drifted is True
    assert comparison.not_compared == ["id"]  # id-like: it would separate any two files


def test_against_a_same_distribution_split_finds_nothing() -> None:
    both = clean_training_set(rows=4000, seed=13)
    first, second = both.iloc[:2000], both.iloc[2000:]
    audit = audit_dataset(first, label="label", other=second)
    assert audit.comparison is not None
    assert audit.comparison.drifted == []
    domain = audit.comparison.domain
    assert domain.score is not None
    assert abs(domain.score - 0.5) < 0.08
    assert audit.findings == []


def test_against_reports_columns_missing_from_either_file() -> None:
    frame = clean_training_set(seed=11)
    other = clean_training_set(seed=12).drop(columns=["noise"]).assign(extra=1.0)
    comparison = audit_dataset(frame, other=other).comparison
    assert comparison is not None
    assert (comparison.only_in_file, comparison.only_in_other) == (["noise"], ["extra"])


def test_ignored_columns_are_left_out_of_every_check() -> None:
    frame = with_exact_duplicates(clean_training_set(), [4])
    frame["row_number"] = np.arange(len(frame))  # would hide the duplicate
    hidden = audit_dataset(frame, label="label")
    shown = audit_dataset(frame, label="label", ignore=["row_number"])
    assert hidden.duplicates.exact_rows == 0
    assert shown.duplicates.exact_rows == 1
    assert "row_number" not in [column.name for column in shown.columns]


def test_an_unknown_label_names_the_field() -> None:
    with pytest.raises(AuditInputError) as caught:
        audit_dataset(clean_training_set(), label="target")
    assert caught.value.field == "label"


@pytest.mark.parametrize(
    "label",
    [
        np.tile([0, 1], 150),
        np.tile(["x", "y", "z"], 100),
        np.linspace(0, 1, 300),
        np.tile([True, False], 150),
        np.full(300, np.nan),
    ],
    ids=["binary", "multiclass", "regression", "bool", "all-missing"],
)
def test_awkward_columns_and_labels_are_audited(label: npt.NDArray[np.generic]) -> None:
    rows = 300
    frame = pd.DataFrame(
        {
            "with_nan": np.where(np.arange(rows) % 4 == 0, np.nan, np.arange(rows) / 7),
            "all_nan": np.nan,
            "flag": np.arange(rows) % 2 == 0,
            "when": pd.Series(pd.date_range("2024-01-01", periods=rows, freq="D", tz="UTC")),
            "mixed": [i if i % 3 else f"v{i % 5}" for i in range(rows)],
            "nested": [{"k": i % 3} for i in range(rows)],
            "tags": pd.Series([["a"], ["b"]] * (rows // 2)),
            "nullable": pd.Series([1, None] * (rows // 2), dtype="Int64"),
            "label": label,
        }
    )
    frame.loc[5, "when"] = pd.NaT
    audit = audit_dataset(frame, label="label", other=frame.iloc[::-1])
    assert DatasetAudit.model_validate_json(audit.model_dump_json()) == audit
    assert audit.constant_columns == ["all_nan"] + (["label"] if pd.isna(label).all() else [])
    assert {column.name for column in audit.columns} == set(frame.columns)


def test_an_empty_frame_has_no_findings() -> None:
    audit = audit_dataset(clean_training_set().iloc[:0], label="label")
    assert audit.rows == 0
    assert audit.findings == []


def test_the_summary_is_bounded() -> None:
    frame = clean_training_set(rows=200)
    for i in range(MAX_LISTED + 30):
        frame[f"blank_{i}"] = np.nan
    summary = audit_dataset(frame, label="label").summary()
    assert len(summary.constant_columns) == MAX_LISTED
    assert len(summary.missing) <= 20
    constant = next(finding for finding in summary.findings if finding.kind == "constant_columns")
    assert len(constant.columns) == MAX_LISTED


def test_a_reference_is_audited_on_its_features_and_label() -> None:
    frame = with_exact_duplicates(clean_training_set(), [0, 1])
    frame["id"] = [f"event-{i}" for i in range(len(frame))]  # the copies' ids differ
    frame["prediction"] = frame["label"]  # a perfect model: its output is no leak
    body = frame.to_csv(index=False).encode()
    roles = ReferenceRoles(prediction="prediction", label="label", event_id="id")
    prepared = prepare_reference(body, roles)
    audit = audit_reference(prepared.frame, prepared.schema)
    assert audit.label == "label"
    assert {column.name for column in audit.columns} == {
        "age",
        "income",
        "noise",
        "region",
        "label",
    }
    assert audit.leakage_suspects == []
    assert audit.duplicates.exact_rows == 2  # the event id would have hidden them
