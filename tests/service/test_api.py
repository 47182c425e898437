"""The HTTP API in-process, against the test Redis."""

from __future__ import annotations

import asyncio
import io
from asyncio.subprocess import PIPE, STDOUT

import orjson
import pytest

from tests.data import credit_events, credit_reference
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)


async def post_events(
    harness: Harness, events: list[dict[str, object]], model: str = "credit"
) -> dict[str, object]:
    response = await harness.client.post(f"/v1/models/{model}/events", json=events)
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


async def test_intake_accepts_object_array_and_ndjson(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    events = credit_events(6, seed=1)
    one = await harness.client.post("/v1/models/credit/events", json=events[0])
    assert one.status_code == 202
    assert one.json()["accepted"] == 1
    array = await harness.client.post("/v1/models/credit/events", json=events[1:3])
    assert array.json()["accepted"] == 2
    ndjson = b"\n".join(orjson.dumps(event) for event in events[3:])
    lines = await harness.client.post(
        "/v1/models/credit/events",
        content=ndjson,
        headers={"content-type": "application/x-ndjson"},
    )
    assert lines.json() == {"accepted": 3, "duplicates": 0, "rejected": 0, "errors": []}
    model = (await harness.client.get("/v1/models/credit")).json()
    assert model["window"]["events"] == 6
    assert model["stored_events"] == 6


async def test_bad_records_are_rejected_one_by_one(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    events = credit_events(4, seed=2)
    events[1]["features"] = {"age": "forty"}
    events[2]["features"] = {"shoe_size": 44}
    body = await post_events(harness, events)
    assert (body["accepted"], body["rejected"]) == (2, 2)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert [(error["index"], error["field"]) for error in errors] == [
        (1, "features.age"),
        (2, "features.shoe_size"),
    ]
    assert "forty" not in errors[0]["error"]
    assert "must be a number" in errors[0]["error"]


async def test_all_bad_is_422_and_broken_json_is_400(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    all_bad = await harness.client.post("/v1/models/credit/events", json=[{"features": 1}])
    assert all_bad.status_code == 422
    assert all_bad.json()["errors"][0]["field"] == "features"
    broken = await harness.client.post("/v1/models/credit/events", content=b"{nope")
    assert broken.status_code == 400
    assert broken.json()["detail"]["field"] == "body"


async def test_duplicates_are_counted_not_stored(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    events = credit_events(5, seed=3)
    await post_events(harness, events)
    again = await post_events(harness, events[:3])
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    model = (await harness.client.get("/v1/models/credit")).json()
    assert model["stored_events"] == 5


async def test_unknown_model_is_404_with_a_hint(harness: Harness) -> None:
    response = await harness.client.post("/v1/models/ghost/events", json={"features": {}})
    assert response.status_code == 404
    assert "PUT /v1/models/ghost/reference" in response.json()["detail"]["hint"]
    assert (await harness.client.get("/v1/models/ghost")).status_code == 404
    assert (await harness.client.post("/v1/models/ghost/runs")).status_code == 404


async def test_labels_are_accepted_for_known_events(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    await post_events(harness, credit_events(3, seed=4))
    response = await harness.client.post(
        "/v1/models/credit/labels",
        json=[{"event_id": "ev-4-0", "label": 1}, {"event_id": "nope", "label": 0}, {"label": 1}],
    )
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["unknown"], body["rejected"]) == (1, 1, 1)
    assert body["errors"][0]["field"] == "event_id"


async def test_reference_upload_csv_parquet_versions(harness: Harness) -> None:
    first = await upload_credit_reference(harness.client)
    assert first["created"] is True
    assert first["rows"] == 3000
    assert first["columns"] == {
        "age": "numerical",
        "income": "numerical",
        "region": "categorical",
        "prediction": "prediction (categorical)",
        "score": "score (class 1)",
    }
    buffer = io.BytesIO()
    credit_reference().to_parquet(buffer, index=False)
    parquet = await harness.client.put(
        "/v1/models/credit/reference",
        params={"prediction": "prediction", "scores": "score"},
        content=buffer.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert parquet.status_code == 201
    assert parquet.json()["version"] == first["version"]
    assert parquet.json()["created"] is False
    other = credit_reference(1000, seed=9).to_csv(index=False).encode()
    newer = await harness.client.put(
        "/v1/models/credit/reference?prediction=prediction", content=other
    )
    model = (await harness.client.get("/v1/models/credit")).json()
    assert model["active_reference"] == newer.json()["version"] != first["version"]
    assert len(model["references"]) == 2
    listing = (await harness.client.get("/v1/models")).json()
    assert [entry["name"] for entry in listing["models"]] == ["credit"]


async def test_reference_errors_name_the_parameter(harness: Harness) -> None:
    body = credit_reference().to_csv(index=False).encode()
    response = await harness.client.put("/v1/models/credit/reference?prediction=pred", content=body)
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "prediction"
    bad_name = await harness.client.put("/v1/models/bad{name}/reference", content=body)
    assert bad_name.status_code == 422


async def test_reference_over_the_cap_is_413(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, reference_max_bytes=10_000)
    async for harness in start_harness(settings):
        body = credit_reference().to_csv(index=False).encode()
        response = await harness.client.put("/v1/models/credit/reference", content=body)
        assert response.status_code == 413
        assert "10000 bytes" in response.json()["detail"]["error"]
        assert (await harness.client.get("/v1/models/credit")).status_code == 404


async def test_drifted_window_is_flagged_and_same_distribution_is_not(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    await post_events(harness, credit_events(1500, seed=5))
    calm = (await harness.client.post("/v1/models/credit/runs")).json()
    assert calm["status"] == "ok"
    assert calm["window"]["events"] == 1500
    assert calm["dataset_drift"] is False
    assert not any(column["drifted"] for column in calm["columns"].values())

    harness.clock.advance(2 * harness.settings.window_seconds)
    await post_events(harness, credit_events(1500, seed=6, age_shift=10, prefix="shift"))
    drifted = (await harness.client.post("/v1/models/credit/runs")).json()
    assert drifted["window"]["events"] == 1500
    assert drifted["columns"]["age"]["drifted"] is True
    assert drifted["columns"]["income"]["drifted"] is False
    assert drifted["drifted_share"] == pytest.approx(1 / 3)
    assert drifted["prediction"]["drift"]["drifted"] is True
    assert drifted["prediction"]["confidence"]["drifted"] is True

    history = (await harness.client.get("/v1/models/credit/runs")).json()["runs"]
    assert [run["run_id"] for run in history] == [drifted["run_id"], calm["run_id"]]
    latest = (await harness.client.get("/v1/models/credit/runs/latest")).json()
    assert latest["run_id"] == drifted["run_id"]
    one = (await harness.client.get(f"/v1/models/credit/runs/{calm['run_id']}")).json()
    assert one == calm


async def test_small_window_is_insufficient_data(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    await post_events(harness, credit_events(50, seed=7, age_shift=20))
    result = (await harness.client.post("/v1/models/credit/runs")).json()
    assert result["status"] == "insufficient_data"
    assert result["dataset_drift"] is None
    assert result["columns"] == {}


async def test_report_is_built_on_request_and_cached(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    await post_events(harness, credit_events(300, seed=8, age_shift=10))
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    first = await harness.client.get(f"/v1/models/credit/runs/{run['run_id']}/report")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert "age" in first.text
    cached = await harness.client.get(f"/v1/models/credit/runs/{run['run_id']}/report")
    assert cached.content == first.content
    missing = await harness.client.get("/v1/models/credit/runs/nope/report")
    assert missing.status_code == 404


async def test_metrics_show_the_run_and_pass_promtool(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    await post_events(harness, credit_events(400, seed=9, age_shift=10))
    rejected = credit_events(1, seed=10)
    rejected[0]["features"] = {"age": "x"}
    await harness.client.post("/v1/models/credit/events", json=rejected)
    await harness.client.post("/v1/models/credit/runs")
    scrape = (await harness.client.get("/metrics")).text
    assert 'driftmon_events_total{model="credit",outcome="accepted",source="http"} 400.0' in scrape
    assert 'driftmon_events_total{model="credit",outcome="rejected",source="http"} 1.0' in scrape
    assert 'driftmon_column_drifted{column="age",model="credit"} 1.0' in scrape
    assert 'driftmon_column_drifted{column="income",model="credit"} 0.0' in scrape
    assert 'driftmon_window_events{model="credit"} 400.0' in scrape
    assert "driftmon_last_successful_run_timestamp_seconds{" in scrape
    assert (
        'driftmon_detection_runs_total{model="credit",status="ok",trigger="manual"} 1.0' in scrape
    )
    promtool = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await promtool.communicate(scrape.encode())
    assert promtool.returncode == 0, output.decode()


# a feature name as a client might send it to break the text exposition format
HOSTILE_FEATURE = 'x"} 1\ndriftmon_pwned{model="credit'


async def test_unknown_feature_names_are_counted_but_never_become_label_values(
    harness: Harness,
) -> None:
    """Feature names come from clients: one that is not in the schema is rejected and
    counted by reason, and never exported as a label value (an unbounded label set, and
    a way to inject series), although the latest run, which the gauges are rendered
    from, names it."""
    await upload_credit_reference(harness.client)
    await post_events(harness, credit_events(400, seed=11))
    strangers = credit_events(3, seed=12, prefix="stranger")
    for event, name in zip(strangers, ["shoe_size", "shoe_size", HOSTILE_FEATURE], strict=True):
        features = event["features"]
        assert isinstance(features, dict)
        features[name] = 44
    body = await post_events(harness, [*credit_events(1, seed=13), *strangers])
    assert (body["accepted"], body["rejected"]) == (1, 3)
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    assert run["status"] == "ok", run
    assert run["data_quality"]["schema"]["new_columns"] == {"shoe_size": 2, HOSTILE_FEATURE: 1}

    samples = await scrape_samples(harness.client)
    rejected = sample_value(
        samples,
        "driftmon_events_rejected_by_reason_total",
        model="credit",
        reason="unknown_field",
        source="http",
    )
    assert rejected == 3.0
    leaks = [
        (sample.name, sample.labels)
        for sample in samples
        if any("shoe" in value or "pwned" in value for value in sample.labels.values())
    ]
    assert leaks == []
    scrape = (await harness.client.get("/metrics")).text
    assert "shoe_size" not in scrape
    assert "pwned" not in scrape


async def test_health_and_readiness(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["redis"] == "ok"
