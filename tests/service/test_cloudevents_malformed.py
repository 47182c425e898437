"""Malformed CloudEvents and inference payloads, shaped after what KServe's (V1, Open
Inference Protocol v2) and Seldon's loggers send, each answered with a 4xx naming the
field, in either order of the halves; never a 5xx. A request half waiting for its
response is kept with its PII columns already hashed or dropped."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from core.redis_types import text
from core.schema import pii_token
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
)
from tests.service.test_cloudevents import (
    FEATURES,
    MODEL,
    kserve_headers,
    seldon_headers,
    upload_iris,
)

V1 = ({"instances": [[6.8, 2.8, 4.8, 1.4]]}, {"predictions": [1]})
V2 = (
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
    {"outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]},
)
SELDON = (
    {"data": {"names": FEATURES, "ndarray": [[5.1, 3.5, 1.4, 0.2]]}},
    {"data": {"names": ["0", "1", "2"], "ndarray": [[0.9, 0.05, 0.05]]}},
)


def v2_input(**tensor: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "datatype": "FP32", **tensor}]}


def v2_output(*tensors: dict[str, Any]) -> dict[str, Any]:
    return {"outputs": list(tensors)}


# (case, protocol's valid pair, which half is bad, the bad payload, the field named)
MALFORMED: list[tuple[str, tuple[dict[str, Any], dict[str, Any]], str, Any, str]] = [
    ("v1 instances a number", V1, "request", {"instances": 5}, "data.instances"),
    ("v1 instance too wide", V1, "request", {"instances": [[1, 2, 3, 4, 5]]}, "data.instances"),
    ("v1 predictions a number", V1, "response", {"predictions": 5}, "data.predictions"),
    ("v1 predictions [[]]", V1, "response", {"predictions": [[]]}, "data.predictions[0]"),
    ("v1 text probabilities", V1, "response", {"predictions": [["a", "b"]]}, "data.predictions[0]"),
    ("v1 predictions an object", V1, "response", {"predictions": {"a": 1}}, "data.predictions"),
    ("request not an object", V1, "request", [1, 2, 3], "data"),
    ("response of no protocol", V1, "response", {"answer": 1}, "data"),
    ("v2 inputs an object", V2, "request", {"inputs": {"name": "x"}}, "data.inputs"),
    ("v2 inputs empty", V2, "request", {"inputs": []}, "data.inputs"),
    ("v2 tensor not an object", V2, "request", {"inputs": [5]}, "data.inputs[0]"),
    ("v2 shape and data disagree", V2, "request", v2_input(shape=[2, 4], data=[1, 2, 3]),
     "data.inputs[0].shape"),
    ("v2 shape of text", V2, "request", v2_input(shape=["1", "a"], data=[1]),
     "data.inputs[0].shape"),
    ("v2 negative shape", V2, "request", v2_input(shape=[-1, 4], data=[1, 2, 3, 4]),
     "data.inputs[0].shape"),
    ("v2 data a string", V2, "request", v2_input(shape=[3], data="abc"), "data.inputs[0].data"),
    ("v2 data of objects", V2, "request", v2_input(shape=[1], data=[{"a": 1}]),
     "data.inputs[0].data"),
    ("v2 3-d tensor", V2, "request", v2_input(shape=[1, 2, 2], data=[1, 2, 3, 4]),
     "data.inputs[0].shape"),
    ("v2 feature tensors of two lengths", V2, "request", {"inputs": [
        {"name": "sepal_length", "shape": [2], "data": [1, 2]},
        {"name": "sepal_width", "shape": [1], "data": [1]},
    ]}, "data.inputs"),
    ("v2 outputs not tensors", V2, "response", {"outputs": [5]}, "data.outputs[0]"),
    ("v2 outputs empty", V2, "response", {"outputs": []}, "data.outputs"),
    ("v2 output shape and data disagree", V2, "response",
     v2_output({"name": "predict", "shape": [3], "data": [1]}), "data.outputs[0].shape"),
    ("v2 text probabilities", V2, "response",
     v2_output({"name": "predict_proba", "shape": [1, 2], "data": ["a", "b"]}),
     "data.outputs[0].data"),
    ("v2 labels and probabilities of two lengths", V2, "response", v2_output(
        {"name": "predict", "shape": [1], "data": [1]},
        {"name": "predict_proba", "shape": [2, 3], "data": [0.1, 0.2, 0.7, 0.3, 0.3, 0.4]},
    ), "data.outputs"),
    ("seldon ndarray a number", SELDON, "request", {"data": {"ndarray": 5}}, "data.data.ndarray"),
    ("seldon tensor not an object", SELDON, "request", {"data": {"tensor": [1, 2]}},
     "data.data.tensor"),
    ("seldon tensor shape and values disagree", SELDON, "request",
     {"data": {"tensor": {"shape": [2, 4], "values": [1, 2, 3]}}}, "data.data.tensor.shape"),
    ("seldon names not text", SELDON, "request", {"data": {"names": [1, 2], "ndarray": [[1, 2]]}},
     "data.data.names"),
    ("seldon data of neither kind", SELDON, "request", {"data": {"names": FEATURES}}, "data.data"),
    ("seldon response [[]]", SELDON, "response", {"data": {"ndarray": [[]]}}, "data.data[0]"),
    ("seldon more probabilities than names", SELDON, "response",
     {"data": {"names": ["0", "1"], "ndarray": [[0.1, 0.2, 0.7]]}}, "data.data[0]"),
    ("seldon response tensor of wrong shape", SELDON, "response",
     {"data": {"tensor": {"shape": [2, 3], "values": [0.1, 0.9]}}}, "data.data.tensor.shape"),
    ("jsonData response an empty array", SELDON, "response", {"jsonData": []}, "data.jsonData"),
]  # fmt: skip


def headers_for(pair: tuple[dict[str, Any], dict[str, Any]], half: str, id_: str) -> dict[str, str]:
    return seldon_headers(half, id_) if pair is SELDON else kserve_headers(half, id_)


async def send(harness: Harness, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    response = await harness.client.post(
        "/v1/cloudevents", headers=headers, content=orjson.dumps(body)
    )
    assert response.status_code < 500, response.text
    return response.status_code, response.json()


async def invalid_count(harness: Harness, half: str) -> float:
    samples = await scrape_samples(harness.client)
    counted = sample_value(samples, "driftmon_cloudevents_total", half=half, outcome="invalid")
    return counted or 0.0


@pytest.mark.parametrize("order", ["bad half first", "bad half after its partner"])
@pytest.mark.parametrize(
    ("pair", "half", "payload", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
async def test_malformed_payloads_are_4xx_naming_the_field(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    order: str,
    pair: tuple[dict[str, Any], dict[str, Any]],
    half: str,
    payload: Any,
    field: str,
) -> None:
    await upload_iris(harness)
    other = "response" if half == "request" else "request"
    if order == "bad half after its partner":
        partner = pair[1] if other == "response" else pair[0]
        status, body = await send(harness, headers_for(pair, other, "e1"), partner)
        assert (status, body["status"]) == (200, "waiting"), body
    before = await invalid_count(harness, half)
    with caplog.at_level(logging.WARNING, logger="collectors.ce_intake"):
        status, body = await send(harness, headers_for(pair, half, "e1"), payload)
    assert status == 422, body
    assert body["detail"]["field"] == field, body
    assert await invalid_count(harness, half) == before + 1
    assert any(field in record.getMessage() for record in caplog.records)
    assert await harness.services.stores.events.total_events(MODEL) == 0


async def test_a_pair_that_disagrees_is_reported_invalid_in_the_body(harness: Harness) -> None:
    await upload_iris(harness)
    await send(harness, kserve_headers("request", "p1"), {"instances": [[1, 2, 3, 4]] * 2})
    status, body = await send(harness, kserve_headers("response", "p1"), {"predictions": [1]})
    assert (status, body["status"], body["field"]) == (200, "invalid", "data")
    assert await invalid_count(harness, "response") == 1


STRUCTURED = {"content-type": "application/cloudevents+json"}
ENVELOPE = {
    "specversion": "1.0",
    "type": "org.kubeflow.serving.inference.request",
    "source": "http://localhost:9081/",
    "id": "s1",
    "inferenceservicename": MODEL,
}


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        pytest.param({**ENVELOPE, "data_base64": "!!not base64!!"}, "data_base64", id="bad b64"),
        pytest.param({**ENVELOPE, "data_base64": 12}, "data_base64", id="b64 not a string"),
        pytest.param({**ENVELOPE, "data_base64": base64.b64encode(b"{").decode()}, "data_base64",
                     id="b64 of broken JSON"),
        pytest.param({**ENVELOPE, "datacontenttype": 5, "data": "{}"}, "datacontenttype",
                     id="datacontenttype a number"),
        pytest.param({**ENVELOPE, "id": 7}, "id", id="id a number"),
        pytest.param({**ENVELOPE, "time": {"at": 1}}, "time", id="time an object"),
        pytest.param({**ENVELOPE, "data": "{not json", "datacontenttype": "application/json"},
                     "data", id="data a broken JSON string"),
    ],
)  # fmt: skip
async def test_malformed_envelopes_are_400_naming_the_attribute(
    harness: Harness, envelope: dict[str, Any], field: str
) -> None:
    await upload_iris(harness)
    status, body = await send(harness, STRUCTURED, envelope)
    assert (status, body["detail"]["field"]) == (400, field), body


async def test_a_batch_names_the_event_and_keeps_the_good_ones(harness: Harness) -> None:
    await upload_iris(harness)
    batch = {"content-type": "application/cloudevents-batch+json"}
    good = {**ENVELOPE, "data": V1[0]}
    bad = {**ENVELOPE, "id": "s2", "data": {"instances": 5}}
    status, body = await send(harness, batch, [good, bad])
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["waiting", "invalid"]
    assert body["results"][1]["field"] == "[1].data.instances"
    status, body = await send(harness, batch, [bad, {**bad, "id": "s3"}])  # nothing usable
    assert (status, body["detail"]["field"]) == (422, "[0].data.instances")
    assert len(body["detail"]["results"]) == 2
    status, body = await send(harness, batch, [good, {**ENVELOPE, "id": 3}])
    assert (status, body["detail"]["field"]) == (400, "[1].id")


async def test_malformed_feedback_is_422(harness: Harness) -> None:
    await upload_iris(harness)
    headers = seldon_headers("feedback", "f1")
    status, body = await send(harness, headers, {"truth": {"data": {"ndarray": 5}}})
    assert (status, body["detail"]["field"]) == (422, "data.truth.data.ndarray")
    # a `meta` that is not an object is no puid: the labels go by the event's id
    status, body = await send(harness, headers, {"truth": [1], "response": {"meta": "x"}})
    assert (status, body["status"]) == (200, "labels")


async def test_a_mapped_model_without_reference_is_ignored(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, cloudevents_models={MODEL: "not-yet"})
    async for harness in start_harness(settings):
        status, body = await send(harness, kserve_headers("request", "m1"), V1[0])
        assert (status, body["status"]) == (200, "ignored")
        assert "not-yet" in body["reason"]


# --- PII: a waiting request half holds no raw PII value ---------------------------------

PII_KEY = "ce-pii-key-0123456789abcdef"
SECRET_EMAIL = "alice.secret@example.com"
SECRET_SSN = "987-65-4321"
PII_MODELS = f"""
models:
  - name: {MODEL}
    columns:
      email: {{pii: hash}}
      ssn: {{pii: drop}}
"""


async def test_a_waiting_request_half_is_stored_pseudonymised(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    models_file = tmp_path / "models.yaml"
    models_file.write_text(PII_MODELS)
    settings = harness_settings(
        redis_url, key_prefix, models_file=models_file, pii_hmac_key=PII_KEY
    )
    async for harness in start_harness(settings):
        await upload_pii_iris(harness)
        instance: dict[str, object] = dict(zip(FEATURES, [6.8, 2.8, 4.8, 1.4], strict=True))
        instance.update(email=SECRET_EMAIL, ssn=SECRET_SSN)
        status, body = await send(
            harness, kserve_headers("request", "pii-1"), {"instances": [instance]}
        )
        assert (status, body["status"]) == (200, "waiting")
        token = pii_token(SECRET_EMAIL, PII_KEY.encode())
        keys = harness.services.keys
        waiting = await harness.services.redis.hgetall(
            keys.ce_pending("http://localhost:9081/", "pii-1")
        )
        stored = "".join(text(value) for value in waiting.values())
        assert SECRET_EMAIL not in stored
        assert SECRET_SSN not in stored
        assert token in stored
        status, body = await send(
            harness, kserve_headers("response", "pii-1"), {"predictions": [1]}
        )
        assert (status, body["status"], body["accepted"]) == (200, "joined", 1), body
        window = await harness.services.stores.events.read_window(MODEL, 0, 100)
        assert list(window["email"]) == [token]  # hashed once, as by any other intake path
        assert "ssn" not in window.columns


async def upload_pii_iris(harness: Harness) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({name: rng.normal(3, 1, 200) for name in FEATURES})
    frame["email"] = rng.choice([f"user{i}@example.com" for i in range(5)], 200)
    frame["ssn"] = [f"000-00-{i:04d}" for i in range(200)]
    frame["class"] = rng.integers(0, 3, 200)
    response = await harness.client.put(
        f"/v1/models/{MODEL}/reference?prediction=class",
        content=frame.to_csv(index=False).encode(),
    )
    assert response.status_code == 201, response.text
