"""CloudEvents exactly as KServe's and Seldon's inference loggers send them."""

from __future__ import annotations

import uuid

import numpy as np
import orjson
import pandas as pd

from tests.fixtures_app import Harness

MODEL = "sklearn-iris"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


async def upload_iris(harness: Harness) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(3, 1, 300) for name in FEATURES})
    frame["class"] = rng.integers(0, 3, 300)
    response = await harness.client.put(
        f"/v1/models/{MODEL}/reference?prediction=class",
        content=frame.to_csv(index=False).encode(),
    )
    assert response.status_code == 201, response.text


def kserve_headers(kind: str, event_id: str, **extra: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-source": "http://localhost:9081/",
        "ce-id": event_id,
        "ce-time": "2026-11-28T10:00:00.0789529Z",
        "ce-inferenceservicename": MODEL,
        "ce-namespace": "default",
        "ce-endpoint": "",
        "ce-traceparent": "00-90bdf848647d50283394155d2df58f19-84dacdfdf07cadfc-00",
        "content-type": "application/json",
        **extra,
    }


async def post(harness: Harness, headers: dict[str, str], body: object) -> dict[str, object]:
    response = await harness.client.post(
        "/v1/cloudevents", headers=headers, content=orjson.dumps(body)
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def stored_events(harness: Harness) -> int:
    count: int = await harness.services.stores.events.total_events(MODEL)
    return count


async def test_kserve_v1_binary_batch_is_joined_into_events(harness: Harness) -> None:
    await upload_iris(harness)
    event_id = str(uuid.uuid4())
    request = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
    first = await post(harness, kserve_headers("request", event_id), request)
    assert first["status"] == "waiting"
    second = await post(harness, kserve_headers("response", event_id), {"predictions": [1, 1]})
    assert second["status"] == "joined"
    assert second["accepted"] == 2
    window = await harness.services.stores.events.read_window(MODEL, 0, 100)
    assert list(window["__event_id"]) == [f"{event_id}:0", f"{event_id}:1"]
    assert list(window["petal_length"]) == [4.8, 4.5]
    assert list(window["__prediction"]) == ["1", "1"]


async def test_out_of_order_halves_join_too(harness: Harness) -> None:
    await upload_iris(harness)
    event_id = str(uuid.uuid4())
    await post(harness, kserve_headers("response", event_id), {"predictions": [2]})
    joined = await post(
        harness, kserve_headers("request", event_id), {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    )
    assert joined["status"] == "joined"
    window = await harness.services.stores.events.read_window(MODEL, 0, 100)
    assert list(window["__event_id"]) == [event_id]


async def test_open_inference_protocol_v2_structured_mode(harness: Harness) -> None:
    await upload_iris(harness)
    event_id = str(uuid.uuid4())
    request = {
        "id": event_id,
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6],
            }
        ],
    }
    response = {
        "model_name": MODEL,
        "model_version": "v3",
        "id": event_id,
        "outputs": [
            {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 2]},
            {
                "name": "predict_proba",
                "shape": [2, 3],
                "datatype": "FP32",
                "data": [0.1, 0.8, 0.1, 0.1, 0.2, 0.7],
            },
        ],
    }
    for kind, data in (("request", request), ("response", response)):
        envelope = {
            "specversion": "1.0",
            "type": f"org.kubeflow.serving.inference.{kind}",
            "source": "http://localhost:9081/",
            "id": event_id,
            "datacontenttype": "application/json",
            "inferenceservicename": MODEL,
            "data": data,
        }
        result = await post(harness, {"content-type": "application/cloudevents+json"}, envelope)
    assert result["status"] == "joined"
    window = await harness.services.stores.events.read_window(MODEL, 0, 100)
    assert list(window["__prediction"]) == ["1", "2"]
    assert list(window["__score:1"]) == [0.8, 0.2]
    assert list(window["__model_version"]) == ["v3", "v3"]
    assert list(window["sepal_width"]) == [2.8, 3.4]


async def test_v2_tensors_named_by_feature(harness: Harness) -> None:
    await upload_iris(harness)
    event_id = str(uuid.uuid4())
    request = {
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP32", "data": [float(i)]}
            for i, name in enumerate(reversed(FEATURES))
        ]
    }
    await post(harness, kserve_headers("request", event_id), request)
    await post(
        harness,
        kserve_headers("response", event_id),
        {"outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [0]}]},
    )
    window = await harness.services.stores.events.read_window(MODEL, 0, 100)
    assert window["petal_width"].iloc[0] == 0.0
    assert window["sepal_length"].iloc[0] == 3.0


# the types of Seldon Core's executor logger (executor/logger/worker.go, v1.1 to v1.18)
SELDON_TYPES = {
    "request": "io.seldon.serving.inference.request",
    "response": "io.seldon.serving.inference.response",
    "feedback": "io.seldon.serving.feedback",
}


def seldon_headers(kind: str, request_id: str) -> dict[str, str]:
    return {
        "ce-id": request_id,
        "ce-specversion": "1.0",
        "ce-source": f"io.seldon.serving.deployment.{MODEL}.seldon",
        "ce-type": SELDON_TYPES[kind],
        "ce-requestid": request_id,
        "ce-modelid": "classifier",
        "ce-inferenceservicename": MODEL,
        "ce-namespace": "seldon",
        "ce-endpoint": "default",
        "content-type": "application/json",
    }


async def test_seldon_request_response_and_feedback(harness: Harness) -> None:
    await upload_iris(harness)
    puid = "a1b2c3"
    await post(
        harness,
        seldon_headers("request", puid),
        {"data": {"names": FEATURES, "ndarray": [[5.1, 3.5, 1.4, 0.2]]}},
    )
    joined = await post(
        harness,
        seldon_headers("response", puid),
        {
            "data": {"names": ["0", "1", "2"], "ndarray": [[0.9, 0.05, 0.05]]},
            "meta": {"puid": puid},
        },
    )
    assert joined["status"] == "joined"
    window = await harness.services.stores.events.read_window(MODEL, 0, 100)
    assert window["__prediction"].iloc[0] == "0"
    assert window["__score:0"].iloc[0] == 0.9
    feedback = await post(
        harness,
        seldon_headers("feedback", "other-id"),
        {
            "request": {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}},
            "response": {"data": {"ndarray": [[0.9, 0.05, 0.05]]}, "meta": {"puid": puid}},
            "truth": {"data": {"ndarray": [[2]]}},
            "reward": 0,
        },
    )
    assert (feedback["status"], feedback["accepted"], feedback["unknown"]) == ("labels", 1, 0)
    labels = await harness.services.stores.labels.labels_for(MODEL, [puid])
    assert labels == ["2"]


async def test_seldon_tensor_payload(harness: Harness) -> None:
    await upload_iris(harness)
    await post(
        harness,
        seldon_headers("request", "t1"),
        {"data": {"tensor": {"shape": [2, 4], "values": [1, 2, 3, 4, 5, 6, 7, 8]}}},
    )
    joined = await post(
        harness,
        seldon_headers("response", "t1"),
        {"data": {"tensor": {"shape": [2, 1], "values": [0, 1]}}},
    )
    assert joined["accepted"] == 2


async def test_unknown_model_is_counted_not_an_error(harness: Harness) -> None:
    headers = kserve_headers("request", "x1", **{"ce-inferenceservicename": "nobody"})
    result = await post(harness, headers, {"instances": [[1, 2, 3, 4]]})
    assert result["status"] == "ignored"
    assert "DRIFTMON_CLOUDEVENTS_MODELS" in str(result["reason"])
    scrape = (await harness.client.get("/metrics")).text
    assert 'driftmon_cloudevents_total{half="request",outcome="unknown_model"} 1.0' in scrape


async def test_not_a_cloudevent_is_400_naming_the_header(harness: Harness) -> None:
    response = await harness.client.post("/v1/cloudevents", json={"instances": [[1]]})
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "ce-id"


async def test_unmatched_halves_expire_and_are_counted(harness: Harness) -> None:
    await upload_iris(harness)
    await post(harness, kserve_headers("request", "lonely"), {"instances": [[1, 2, 3, 4]]})
    services = harness.services
    ttl = services.settings.cloudevents_join_ttl_seconds
    assert await services.cloudevents.sweep(harness.clock.now()) == 0
    assert await services.cloudevents.sweep(harness.clock.now() + ttl + 1) == 1
    scrape = (await harness.client.get("/metrics")).text
    assert f'driftmon_cloudevents_unmatched_total{{model="{MODEL}"}} 1.0' in scrape


async def test_a_mismatched_pair_is_reported(harness: Harness) -> None:
    await upload_iris(harness)
    await post(
        harness, kserve_headers("request", "m1"), {"instances": [[1, 2, 3, 4], [1, 2, 3, 4]]}
    )
    result = await post(harness, kserve_headers("response", "m1"), {"predictions": [1]})
    assert result["status"] == "invalid"
    assert "2 instances but 1 predictions" in str(result["error"])
