from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from detectors.reference import ReferenceError, ReferenceRoles, prepare_reference
from tests.data import credit_reference

ROLES = ReferenceRoles(prediction="prediction", scores="score")


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def as_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_kinds_and_roles_are_inferred_and_reported() -> None:
    prepared = prepare_reference(as_csv(credit_reference()), ROLES)
    schema = prepared.schema
    assert schema.features == {"age": "numerical", "income": "numerical", "region": "categorical"}
    assert schema.prediction_kind == "categorical"
    assert schema.scores == {"1": "score"}
    assert schema.positive_class == "1"
    assert prepared.rows == 3000
    assert prepared.version.startswith("sha256:")


def test_csv_and_parquet_of_the_same_data_share_a_version() -> None:
    frame = credit_reference()
    from_csv = prepare_reference(as_csv(frame), ROLES)
    from_parquet = prepare_reference(as_parquet(frame), ROLES)
    assert from_csv.version == from_parquet.version
    again = prepare_reference(as_csv(frame), ROLES)
    assert again.version == from_csv.version


def test_other_data_or_roles_give_another_version() -> None:
    frame = credit_reference()
    base = prepare_reference(as_csv(frame), ROLES).version
    changed = frame.copy()
    changed["income"] = changed["income"] + np.eye(1, len(changed))[0]
    assert prepare_reference(as_csv(changed), ROLES).version != base
    as_category = ReferenceRoles(prediction="prediction", scores="score", categorical=["age"])
    assert prepare_reference(as_csv(frame), as_category).version != base


def test_explicit_kinds_win_over_inference() -> None:
    roles = ReferenceRoles(prediction="prediction", scores="score", categorical=["age"])
    prepared = prepare_reference(as_csv(credit_reference()), roles)
    assert prepared.schema.features["age"] == "categorical"
    assert prepared.frame["age"].iloc[0] == str(int(credit_reference()["age"].iloc[0]))


@pytest.mark.parametrize(
    ("roles", "field"),
    [
        (ReferenceRoles(prediction="pred"), "prediction"),
        (ReferenceRoles(scores="nope"), "scores"),
        (ReferenceRoles(label="y"), "label"),
        (ReferenceRoles(categorical=["x"]), "categorical"),
        (ReferenceRoles(categorical=["age"], numerical=["age"]), "numerical"),
    ],
)
def test_roles_naming_missing_columns_are_rejected(roles: ReferenceRoles, field: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        prepare_reference(as_csv(credit_reference()), roles)
    assert caught.value.field == field


def test_unreadable_bodies_are_rejected() -> None:
    with pytest.raises(ReferenceError):
        prepare_reference(b"", ROLES)
    with pytest.raises(ReferenceError):
        prepare_reference(b"PAR1 this is not parquet", ROLES)


def test_numerical_declared_text_is_rejected() -> None:
    frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]})
    with pytest.raises(ReferenceError) as caught:
        prepare_reference(as_csv(frame), ReferenceRoles(numerical=["a"]))
    assert caught.value.field == "a"


def test_scores_as_column_class_pairs() -> None:
    frame = credit_reference()
    frame["p0"] = 1 - frame["score"]
    roles = ReferenceRoles(prediction="prediction", scores="p0:0,score:1")
    prepared = prepare_reference(as_csv(frame), roles)
    assert prepared.schema.scores == {"0": "p0", "1": "score"}
    assert "p0" not in prepared.schema.features
