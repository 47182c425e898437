"""The envelope of inference-logger CloudEvents as the official SDK writes them (binary,
structured, batch), and the KServe and Seldon types each logger really sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from collectors.cloudevents import (
    BATCH,
    STRUCTURED,
    CloudEvent,
    CloudEventError,
    Received,
    from_http,
)

REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
# a source and extension with spaces, a slash, a quote and non-ASCII: the SDK writes them
# percent-encoded into the headers (CloudEvents HTTP binding, 3.1.3.2)
SOURCE = 'kserve logger/credit risk "eu"'
SERVICE = "crédit-risque"
STAMP = datetime(2026, 11, 28, 10, 0, 0, 78952, tzinfo=UTC)


def sdk_event(data: Any = None, **attributes: Any) -> SdkEvent:
    base: dict[str, Any] = {
        "id": "evt-1",
        "source": SOURCE,
        "type": "org.kubeflow.serving.inference.request",
        "time": STAMP,
        "datacontenttype": "application/json",
        "inferenceservicename": SERVICE,
    }
    return SdkEvent(attributes={**base, **attributes}, data=REQUEST if data is None else data)


def only(received: Received) -> CloudEvent:
    assert not received.batch
    [event] = received.events
    return event


def test_binary_mode_header_values_are_percent_decoded() -> None:
    message = ce_http.to_binary_event(sdk_event())
    assert "%20" in message.headers["ce-source"]  # what a naive reader would have kept
    event = only(from_http(message.headers, message.body))
    assert (event.source, event.extensions["inferenceservicename"]) == (SOURCE, SERVICE)
    assert event.data == REQUEST
    assert event.half == "request"
    assert event.time is not None
    assert datetime.fromisoformat(event.time) == STAMP


def test_header_values_sent_unencoded_are_kept_as_sent() -> None:
    """KServe's Go logger writes plain values: decoding leaves them alone."""
    headers = {
        "ce-id": "a1",
        "ce-source": "http://localhost:9081/",
        "ce-type": "org.kubeflow.serving.inference.response",
        "ce-specversion": "1.0",
        "ce-inferenceservicename": "sklearn-iris",
        "content-type": "application/json",
    }
    event = only(from_http(headers, b'{"predictions": [1]}'))
    assert (event.source, event.half, event.time) == ("http://localhost:9081/", "response", None)
    assert event.extensions == {"inferenceservicename": "sklearn-iris"}


def test_structured_mode_as_the_sdk_writes_it() -> None:
    message = ce_http.to_structured_event(sdk_event())
    assert message.headers["content-type"] == STRUCTURED
    event = only(from_http(message.headers, message.body))
    assert (event.id, event.source, event.data) == ("evt-1", SOURCE, REQUEST)
    assert event.extensions == {"inferenceservicename": SERVICE}


def test_structured_binary_data_is_decoded_from_base64() -> None:
    written = JSONFormat().write(sdk_event(data=orjson.dumps(REQUEST)))
    assert b"data_base64" in written
    assert only(from_http({"content-type": STRUCTURED}, written)).data == REQUEST


def test_batch_mode_reads_every_event_in_order() -> None:
    events = [sdk_event(id=f"evt-{i}") for i in range(3)]
    body = b"[" + b",".join(JSONFormat().write(event) for event in events) + b"]"
    received = from_http({"Content-Type": BATCH}, body)
    assert received.batch
    parsed = received.events
    assert [event.id for event in parsed] == ["evt-0", "evt-1", "evt-2"]
    assert {event.source for event in parsed} == {SOURCE}


@pytest.mark.parametrize(
    ("kind", "half"),
    [
        # kserve/kserve pkg/logger/worker.go
        ("org.kubeflow.serving.inference.request", "request"),
        ("org.kubeflow.serving.inference.response", "response"),
        # SeldonIO/seldon-core v1 executor/logger/worker.go
        ("io.seldon.serving.inference.request", "request"),
        ("io.seldon.serving.inference.response", "response"),
        ("io.seldon.serving.feedback", "feedback"),
        # no logger sends this one; Seldon's detectors send the next two
        ("io.seldon.serving.inference.feedback", None),
        ("io.seldon.serving.inference.outlier", None),
        ("org.kubeflow.serving.inference.outlier", None),
    ],
)
def test_each_loggers_type_maps_to_its_half(kind: str, half: str | None) -> None:
    message = ce_http.to_binary_event(sdk_event(type=kind))
    assert only(from_http(message.headers, message.body)).half == half


def test_seldon_links_halves_by_requestid() -> None:
    message = ce_http.to_binary_event(
        sdk_event(type="io.seldon.serving.inference.response", requestid="puid-1", modelid="m")
    )
    event = only(from_http(message.headers, message.body))
    assert (event.id, event.correlation_id) == ("evt-1", "puid-1")


def test_a_spec_0_3_event_is_read_too() -> None:
    headers = {
        "ce-id": "old",
        "ce-source": "s",
        "ce-type": "io.seldon.serving.inference.request",
        "ce-specversion": "0.3",
    }
    assert only(from_http(headers, b'{"data": {"ndarray": [[1]]}}')).specversion == "0.3"


BINARY = {
    "ce-id": "b1",
    "ce-source": "s",
    "ce-type": "org.kubeflow.serving.inference.request",
    "ce-specversion": "1.0",
}


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        pytest.param({**BINARY, "ce-specversion": "2.0"}, "ce-specversion", id="specversion"),
        pytest.param({**BINARY, "ce-time": "yesterday"}, "ce-time", id="time not RFC 3339"),
        pytest.param({**BINARY, "ce-time": "2026-11-28T10:00:00"}, "ce-time", id="naive time"),
        pytest.param({**BINARY, "ce-model-name": "x"}, "ce-model-name", id="extension name"),
        pytest.param({k: v for k, v in BINARY.items() if k != "ce-id"}, "ce-id", id="no id"),
    ],
)
def test_a_bad_binary_event_names_its_header(headers: dict[str, str], field: str) -> None:
    with pytest.raises(CloudEventError) as caught:
        from_http(headers, b"{}")
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"specversion": "2.0"}, "specversion", id="specversion"),
        pytest.param({"time": "2026-13-45T99:99Z"}, "time", id="time"),
        pytest.param({"Model": "x"}, "Model", id="extension name"),
        pytest.param({"source": ""}, "source", id="empty source"),
    ],
)
def test_a_bad_structured_event_names_its_attribute(change: dict[str, Any], field: str) -> None:
    envelope = {**orjson.loads(JSONFormat().write(sdk_event())), **change}
    with pytest.raises(CloudEventError) as caught:
        from_http({"content-type": STRUCTURED}, orjson.dumps(envelope))
    assert caught.value.field == field
    with pytest.raises(CloudEventError) as caught:
        from_http({"content-type": BATCH}, orjson.dumps([envelope]))
    assert caught.value.field == f"[0].{field}"
