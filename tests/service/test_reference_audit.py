"""A reference upload answers with its audit summary, and the model's description shows
the active reference's: counts and flagged columns, from the real app and Redis."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.audit_data import clean_training_set, with_exact_duplicates, with_label_conflicts
from tests.fixtures_app import Harness, upload_credit_reference

ROLES = {"label": "label", "event_id": "id"}


def planted_reference() -> pd.DataFrame:
    """Three duplicated rows (with their own event ids), two label conflicts, a
    constant column and a column that copies the label."""
    frame = with_exact_duplicates(clean_training_set(), [5, 6, 7])
    frame["currency"] = "EUR"
    frame["chargeback_filed"] = np.where(frame["label"] == 1, "yes", "no")
    frame = with_label_conflicts(frame, [9, 11])  # copied before the label flips
    frame["id"] = [f"event-{i}" for i in range(len(frame))]
    return frame


async def put(harness: Harness, model: str, frame: pd.DataFrame) -> dict[str, object]:
    response = await harness.client.put(
        f"/v1/models/{model}/reference",
        params=ROLES,
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    answer: dict[str, object] = response.json()
    return answer


async def test_upload_and_description_carry_the_planted_findings(harness: Harness) -> None:
    answer = await put(harness, "loans", planted_reference())
    audit = answer["audit"]
    assert isinstance(audit, dict)
    assert audit["exact_duplicates"] == 3
    assert audit["constant_columns"] == ["currency"]
    assert audit["leakage_suspects"] == ["chargeback_filed"]
    assert audit["label_conflicts"]["groups"] == 2
    kinds = {finding["kind"] for finding in audit["findings"]}
    assert kinds == {"exact_duplicates", "constant_columns", "leakage_suspects", "label_conflicts"}
    described = await harness.client.get("/v1/models/loans")
    assert described.status_code == 200
    assert described.json()["audit"] == audit


async def test_a_new_reference_replaces_the_audit(harness: Harness) -> None:
    await put(harness, "loans", planted_reference())
    answer = await put(harness, "loans", clean_training_set())
    assert answer["created"] is False
    assert answer["audit"]["findings"] == []  # type: ignore[index]
    described = (await harness.client.get("/v1/models/loans")).json()
    assert described["audit"] == answer["audit"]
    assert described["audit"]["exact_duplicates"] == 0


async def test_existing_answer_fields_are_unchanged(harness: Harness) -> None:
    answer = await upload_credit_reference(harness.client)
    expected = {"model", "created", "version", "rows", "columns", "uploaded_at", "ignored"}
    assert set(answer) == expected | {"audit"}
    assert answer["rows"] == 3000
    described = (await harness.client.get("/v1/models/credit")).json()
    assert described["references"][0].keys() == expected - {"model", "created"}
