"""CloudEvents from model servers' inference loggers, in binary, structured or batch mode.

The envelope is read by the official CloudEvents SDK (`cloudevents.core`): its HTTP
binding percent-decodes `ce-*` header values (the spec's encoding, which the SDKs apply
to spaces, quotes and non-ASCII), and its v0.3 and v1.0 event classes check the
attributes. Batch mode, which the SDK does not read, is a JSON array of structured
events, each read the same way. What stays here is the loggers' mapping:

- KServe's logger (kserve/kserve `pkg/logger/worker.go`) sends a request and a response
  as two binary-mode events sharing one `ce-id`, of types
  `org.kubeflow.serving.inference.request` and `.response`.
- Seldon Core's executor logger (SeldonIO/seldon-core v1 `executor/logger/worker.go`)
  sends `io.seldon.serving.inference.request` and `.response`, each with an id of its
  own and linked by the `requestid` extension, and `io.seldon.serving.feedback`.

Anything else (Seldon's outlier and drift detectors' events, for one) is not an
inference log. payloads.py reads the data."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import unquote

import orjson
from cloudevents.core.base import BaseCloudEvent, EventFactory
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings.common import get_event_factory_for_version
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "type", "specversion")
# attributes of the envelope itself: what is left of a parsed event are its extensions
CONTEXT_ATTRIBUTES = frozenset(
    {
        *REQUIRED,
        "time",
        "subject",
        "datacontenttype",
        "dataschema",
        "schemaurl",
        "datacontentencoding",
    }
)

Half = Literal["request", "response", "feedback"]

INFERENCE_TYPES: Final[Mapping[str, Half]] = {
    "org.kubeflow.serving.inference.request": "request",
    "org.kubeflow.serving.inference.response": "response",
    "io.seldon.serving.inference.request": "request",
    "io.seldon.serving.inference.response": "response",
    "io.seldon.serving.feedback": "feedback",
}


class CloudEventError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass
class CloudEvent:
    id: str
    source: str
    type: str
    specversion: str
    data: Any
    extensions: dict[str, str] = field(default_factory=dict)
    time: str | None = None

    @property
    def half(self) -> Half | None:
        """request, response or feedback, for the inference types we know; else None."""
        return INFERENCE_TYPES.get(self.type)

    @property
    def correlation_id(self) -> str:
        """What ties a request to its response: Seldon's requestid, else the event id."""
        return self.extensions.get("requestid") or self.id


def _json(body: bytes, where: str) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CloudEventError(where, f"invalid JSON ({exc})") from exc


class InferenceLogFormat(JSONFormat):
    """The SDK's JSON event format with orjson, and JSON that does not parse refused
    (the SDK would hand it on as text): inference payloads are JSON, and a broken one
    is the sender's error to hear about."""

    def read(self, event_factory: EventFactory | None, data: str | bytes) -> BaseCloudEvent:
        envelope = _json(data.encode() if isinstance(data, str) else data, "body")
        return self.from_envelope(envelope)

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        return _json(body, "body")

    def from_envelope(self, envelope: Any) -> BaseCloudEvent:
        """One structured-mode event, already parsed from JSON."""
        if not isinstance(envelope, dict):
            raise CloudEventError("body", "a structured CloudEvent is a JSON object")
        # the SDK makes up an id and a time that are missing: a logged event has its own
        missing = [name for name in REQUIRED if not envelope.get(name)]
        if missing:
            raise CloudEventError(missing[0], "attribute missing from the structured CloudEvent")
        attributes = dict(envelope)
        data = _structured_data(attributes)
        if isinstance(attributes.get("time"), str):
            attributes["time"] = _time(attributes["time"], "time")
        return _event(attributes, data, prefix="")


def _structured_data(attributes: dict[str, Any]) -> Any:
    """Pops the data out of a structured envelope: `data` (JSON text when its content
    type says JSON), else `data_base64` decoded and read as JSON."""
    data = attributes.pop("data", None)
    encoded = attributes.pop("data_base64", None)
    if data is None and encoded is not None:
        return _json(_base64(encoded), "data_base64")
    content_type = attributes.get("datacontenttype")
    if isinstance(data, str) and isinstance(content_type, str) and content_type.endswith("json"):
        return _json(data.encode(), "data")
    return data


def _base64(encoded: Any) -> bytes:
    if not isinstance(encoded, str):
        raise CloudEventError("data_base64", "must be a base64 string")
    try:
        # validate: a body that is not base64 is an error, not silently stripped to bytes
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:  # binascii.Error, or characters beyond ASCII
        raise CloudEventError("data_base64", f"not valid base64 ({exc})") from exc


def _time(value: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise CloudEventError(where, f"not an RFC 3339 timestamp ({exc})") from exc


def _event(attributes: dict[str, Any], data: Any, prefix: str) -> BaseCloudEvent:
    """The SDK's event of the attributes' specversion; its first complaint as ours,
    the attribute named as the sender wrote it (`ce-id` for a header)."""
    factory = get_event_factory_for_version(str(attributes.get("specversion")))
    try:
        return factory(attributes, data)
    except CloudEventValidationError as exc:
        name, errors = next(iter(exc.errors.items()))
        where = "content-type" if prefix and name == "datacontenttype" else prefix + name
        raise CloudEventError(where, "; ".join(str(error) for error in errors)) from exc


def _binary(headers: Mapping[str, str], body: bytes) -> tuple[BaseCloudEvent, bool]:
    """The event of binary mode, and whether it had a time of its own."""
    # only the event's own headers: the SDK looks at every header it is given
    wanted = {
        lowered: value
        for name, value in headers.items()
        if (lowered := name.lower()).startswith("ce-") or lowered == "content-type"
    }
    missing = [name for name in REQUIRED if not wanted.get(f"ce-{name}")]
    if missing:
        raise CloudEventError(f"ce-{missing[0]}", "header missing: not a CloudEvent in binary mode")
    # read here rather than by the SDK, whose dateutil parse costs ~10 us an event,
    # 60x the standard library's, which reads the same RFC 3339 stamps
    stamp = wanted.pop("ce-time", None)
    time = None if stamp is None else _time(unquote(stamp), "ce-time")

    def checked(attributes: dict[str, Any], data: Any) -> BaseCloudEvent:
        if time is not None:
            attributes["time"] = time
        return _event(attributes, data, prefix="ce-")

    message = ce_http.HTTPMessage(headers=wanted, body=body)
    return ce_http.from_binary(message, InferenceLogFormat(), checked), time is not None


def _ours(event: BaseCloudEvent, had_time: bool) -> CloudEvent:
    attributes = event.get_attributes()
    extensions = {
        name: str(value) for name, value in attributes.items() if name not in CONTEXT_ATTRIBUTES
    }
    time = event.get_time()
    return CloudEvent(
        id=event.get_id(),
        source=event.get_source(),
        type=event.get_type(),
        specversion=event.get_specversion(),
        # the SDK stamps an event without a time with now: the intake's clock decides then
        time=time.isoformat() if had_time and time is not None else None,
        data=event.get_data(),
        extensions=extensions,
    )


def _in_batch(index: int, envelope: Any) -> CloudEvent:
    try:
        parsed = InferenceLogFormat().from_envelope(envelope)
    except CloudEventError as exc:  # which event of the batch, too
        raise CloudEventError(f"[{index}].{exc.field}", exc.message) from exc
    return _ours(parsed, had_time="time" in envelope)


@dataclass(frozen=True)
class Received:
    """The CloudEvents of one HTTP request; a batch is answered as one even when it
    holds a single event."""

    events: list[CloudEvent]
    batch: bool


def from_http(headers: Mapping[str, str], body: bytes) -> Received:
    """The CloudEvents of one HTTP request: binary, structured or batch mode."""
    content_type = next(
        (value for name, value in headers.items() if name.lower() == "content-type"), ""
    ).lower()  # media types are case-insensitive
    if content_type.startswith(BATCH):
        batch = _json(body, "body")
        if not isinstance(batch, list):
            raise CloudEventError("body", "a CloudEvents batch is a JSON array")
        return Received([_in_batch(index, envelope) for index, envelope in enumerate(batch)], True)
    if content_type.startswith(STRUCTURED):
        envelope = _json(body, "body")
        parsed = InferenceLogFormat().from_envelope(envelope)
        return Received([_ours(parsed, had_time="time" in envelope)], False)
    return Received([_ours(*_binary(headers, body))], False)
