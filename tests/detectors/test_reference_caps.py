"""The cap on a reference's columns (DRIFTMON_REFERENCE_MAX_COLUMNS): checked on the
header before the body is parsed, role and `pii: drop` columns not counted."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from detectors.reference import (
    ReferencePolicy,
    ReferenceRoles,
    ReferenceTooWideError,
    header_names,
    prepare_reference,
)
from tests.data import credit_reference
from tests.fixtures_app import harness_settings, start_harness

ROLES = ReferenceRoles(prediction="prediction", scores="score")


def wide(columns: int, rows: int = 50) -> pd.DataFrame:
    values = np.random.default_rng(3).normal(size=(rows, columns))
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(columns)])
    frame["prediction"] = (frame["f0"] > 0).astype(int)
    frame["score"] = 0.5
    return frame


def as_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)  # with its index: not a column
    return buffer.getvalue()


def test_roles_and_dropped_columns_do_not_count() -> None:
    body = wide(5).assign(ssn="x").to_csv(index=False).encode()
    policy = ReferencePolicy(pii={"ssn": "drop"}, max_columns=5)
    assert len(prepare_reference(body, ROLES, policy).schema.features) == 5
    with pytest.raises(ReferenceTooWideError, match=r"6 columns .* the cap is 5"):
        prepare_reference(body, ROLES, ReferencePolicy(max_columns=5))


@pytest.mark.parametrize("encode", [lambda f: f.to_csv(index=False).encode(), as_parquet])
def test_too_wide_is_refused_from_the_header_alone(
    encode: Callable[[pd.DataFrame], bytes],
) -> None:
    body = encode(wide(20))
    assert len(header_names(body) or []) == 22
    # a body that the header promises too much of is refused before it is parsed
    cut = body if body[:4] == b"PAR1" else body.split(b"\n", 1)[0] + b'\n"unclosed\n'
    with pytest.raises(ReferenceTooWideError) as refused:
        prepare_reference(cut, ROLES, ReferencePolicy(max_columns=19))
    assert refused.value.columns == 20


async def test_the_api_answers_413_naming_the_setting(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, reference_max_columns=3)
    async for harness in start_harness(settings):
        params = {"prediction": "prediction", "scores": "score"}
        fits = credit_reference()  # age, income, region besides the roles
        wider = fits.assign(extra=1.0)
        for frame, status in ((fits, 201), (wider, 413)):
            response = await harness.client.put(
                "/v1/models/credit/reference",
                params=params,
                content=frame.to_csv(index=False).encode(),
                headers={"content-type": "text/csv"},
            )
            assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert detail["setting"] == "DRIFTMON_REFERENCE_MAX_COLUMNS"
        assert detail["cap_columns"] == 3
