"""A JSON body of plainly valid events takes the typed msgspec path; it must store what
the careful path stores for the same events, and duplicates stay duplicates."""

from __future__ import annotations

import orjson
import pandas as pd

from core.blocks import EVENT_ID
from tests.data import credit_events
from tests.fixtures_app import Harness, upload_credit_reference


async def _stored(harness: Harness, model: str) -> pd.DataFrame:
    frame = await harness.services.stores.events.read_window(model, 0.0, 10_000)
    return frame.sort_values(EVENT_ID).reset_index(drop=True)


async def test_a_json_array_is_stored_as_the_careful_path_stores_it(harness: Harness) -> None:
    for model in ("typed", "careful"):
        await upload_credit_reference(harness.client, model)
    events = credit_events(300, seed=5)
    typed = await harness.client.post("/v1/models/typed/events", json=events)
    # NDJSON always takes the careful path: parsed into dicts, validated column by column
    ndjson = b"\n".join(orjson.dumps(event) for event in events)
    careful = await harness.client.post(
        "/v1/models/careful/events",
        content=ndjson,
        headers={"content-type": "application/x-ndjson"},
    )
    assert typed.status_code == careful.status_code == 202
    assert typed.json() == careful.json() == {
        "accepted": 300, "duplicates": 0, "rejected": 0, "errors": []
    }  # fmt: skip
    pd.testing.assert_frame_equal(
        await _stored(harness, "typed"), await _stored(harness, "careful")
    )


async def test_one_event_sent_twice_is_a_duplicate_the_second_time(harness: Harness) -> None:
    await upload_credit_reference(harness.client, "once")
    event = credit_events(1, seed=6)[0]
    first = await harness.client.post("/v1/models/once/events", json=event)
    again = await harness.client.post("/v1/models/once/events", json=event)
    assert (first.json()["accepted"], again.json()["duplicates"]) == (1, 1)
    assert len(await _stored(harness, "once")) == 1


async def test_an_invalid_record_is_still_named_by_the_careful_path(harness: Harness) -> None:
    await upload_credit_reference(harness.client, "mixed")
    good, bad = credit_events(2, seed=7)
    bad["features"] = {**bad["features"], "age": "old"}  # type: ignore[dict-item]
    response = await harness.client.post("/v1/models/mixed/events", json=[good, bad])
    body = response.json()
    assert (response.status_code, body["accepted"], body["rejected"]) == (202, 1, 1)
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["field"] == "features.age"
