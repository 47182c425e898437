"""/v1/cloudevents fed by the official CloudEvents SDK: percent-encoded header values
match a DRIFTMON_CLOUDEVENTS_MODELS key, and Seldon's real feedback type becomes labels."""

from __future__ import annotations

from typing import Any

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from tests.fixtures_app import Harness, harness_settings, start_harness
from tests.service.test_cloudevents import FEATURES, MODEL, SELDON_TYPES, upload_iris

# what a KServe logger behind a proxy might call itself: the SDK percent-encodes it
SOURCE = "kserve logger/credit risk"


def kserve_event(kind: str, event_id: str, data: Any) -> SdkEvent:
    return SdkEvent(
        attributes={
            "id": event_id,
            "source": SOURCE,
            "type": f"org.kubeflow.serving.inference.{kind}",
            "datacontenttype": "application/json",
            "inferenceservicename": "served under another name",
        },
        data=data,
    )


async def send(harness: Harness, message: ce_http.HTTPMessage) -> dict[str, Any]:
    response = await harness.client.post(
        "/v1/cloudevents", headers=message.headers, content=message.body
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_percent_encoded_source_matches_its_models_key(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, cloudevents_models={SOURCE: MODEL})
    async for harness in start_harness(settings):
        await upload_iris(harness)
        request = ce_http.to_binary_event(kserve_event("request", "e1", {"instances": [[1] * 4]}))
        assert "%20" in request.headers["ce-source"]
        assert (await send(harness, request))["status"] == "waiting"
        response = ce_http.to_binary_event(kserve_event("response", "e1", {"predictions": [2]}))
        joined = await send(harness, response)
        assert (joined["status"], joined["model"], joined["accepted"]) == ("joined", MODEL, 1)


async def test_structured_and_batch_messages_of_the_sdk_join(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, cloudevents_models={SOURCE: MODEL})
    async for harness in start_harness(settings):
        await upload_iris(harness)
        request = kserve_event("request", "s1", {"instances": [[1] * 4, [2] * 4]})
        assert (await send(harness, ce_http.to_structured_event(request)))["status"] == "waiting"
        halves = [kserve_event("response", "s1", {"predictions": [0, 1]})]
        body = b"[" + b",".join(JSONFormat().write(event) for event in halves) + b"]"
        batch = ce_http.HTTPMessage({"content-type": "application/cloudevents-batch+json"}, body)
        [result] = (await send(harness, batch))["results"]
        assert (result["status"], result["accepted"]) == ("joined", 2)
        window = await harness.services.stores.events.read_window(MODEL, 0, 100)
        assert list(window[FEATURES[0]]) == [1, 2]


def seldon_event(kind: str, event_id: str, puid: str, data: Any) -> ce_http.HTTPMessage:
    """As Seldon Core's executor logs: an id of its own, the prediction's puid as
    `requestid`, the model's name as `inferenceservicename`."""
    event = SdkEvent(
        attributes={
            "id": event_id,
            "source": "http://0.0.0.0:9000",
            "type": SELDON_TYPES[kind],
            "datacontenttype": "application/json",
            "requestid": puid,
            "modelid": "classifier",
            "inferenceservicename": MODEL,
            "namespace": "seldon",
            "endpoint": "default",
            "protocol": "seldon",
        },
        data=data,
    )
    return ce_http.to_binary_event(event)


async def test_seldon_feedback_of_the_real_type_becomes_a_label(harness: Harness) -> None:
    await upload_iris(harness)
    puid = "p-42"
    request = {"data": {"names": FEATURES, "ndarray": [[5.1, 3.5, 1.4, 0.2]]}}
    await send(harness, seldon_event("request", "r1", puid, request))
    response = {"data": {"ndarray": [[0.1, 0.8, 0.1]]}, "meta": {"puid": puid}}
    assert (await send(harness, seldon_event("response", "r2", puid, response)))["status"] == (
        "joined"
    )
    feedback = {"response": {"meta": {"puid": puid}}, "truth": {"data": {"ndarray": [[2]]}}}
    labelled = await send(harness, seldon_event("feedback", "f1", "feedback-puid", feedback))
    assert (labelled["status"], labelled["accepted"]) == ("labels", 1)
    assert await harness.services.stores.labels.labels_for(MODEL, [puid]) == ["2"]


async def test_a_type_no_logger_sends_is_ignored(harness: Harness) -> None:
    await upload_iris(harness)
    message = seldon_event("feedback", "f2", "p", {"truth": [1]})
    message.headers["ce-type"] = "io.seldon.serving.inference.feedback"
    result = await send(harness, message)
    assert result["status"] == "ignored"
    assert "io.seldon.serving.inference.feedback" in result["reason"]
