"""CloudEvents from model servers' inference loggers, in binary or structured mode.

KServe's InferenceLogger sends a request and a response as two events sharing one id
(types org.kubeflow.serving.inference.request / .response); Seldon's sends
io.seldon.serving.inference.request / .response / .feedback, linked by the
`requestid` extension. This module reads the envelope; payloads.py reads the data."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "type", "specversion")
CONTEXT_ATTRIBUTES = {
    "id",
    "source",
    "type",
    "specversion",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
}

Half = Literal["request", "response", "feedback"]


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
        for prefix in ("org.kubeflow.serving.inference.", "io.seldon.serving.inference."):
            if self.type.startswith(prefix):
                kind = self.type.removeprefix(prefix)
                if kind in ("request", "response", "feedback"):
                    return kind  # type: ignore[return-value]
        return None

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


def _base64_json(encoded: Any) -> Any:
    if not isinstance(encoded, str):
        raise CloudEventError("data_base64", "must be a base64 string")
    try:
        # validate: a body that is not base64 is an error, not silently stripped to bytes
        decoded = base64.b64decode(encoded, validate=True)
    except ValueError as exc:  # binascii.Error, or characters beyond ASCII
        raise CloudEventError("data_base64", f"not valid base64 ({exc})") from exc
    return _json(decoded, "data_base64")


def _attributes(envelope: dict[str, Any]) -> None:
    """The attributes the spec types as strings are strings (a number where a string
    belongs would otherwise surface deep in the join as a 500)."""
    missing = [name for name in REQUIRED if not envelope.get(name)]
    if missing:
        raise CloudEventError(missing[0], "attribute missing from the structured CloudEvent")
    for name in (*REQUIRED, "time", "datacontenttype"):
        if envelope.get(name) is not None and not isinstance(envelope[name], str):
            raise CloudEventError(name, "must be a string")


def _binary(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    lowered = {name.lower(): value for name, value in headers.items()}
    attributes = {name[3:]: value for name, value in lowered.items() if name.startswith("ce-")}
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise CloudEventError(f"ce-{missing[0]}", "header missing: not a CloudEvent in binary mode")
    extensions = {k: v for k, v in attributes.items() if k not in CONTEXT_ATTRIBUTES}
    return CloudEvent(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        specversion=attributes["specversion"],
        time=attributes.get("time"),
        data=_json(body, "body"),
        extensions=extensions,
    )


def _structured(envelope: Any) -> CloudEvent:
    if not isinstance(envelope, dict):
        raise CloudEventError("body", "a structured CloudEvent is a JSON object")
    _attributes(envelope)
    data = envelope.get("data")
    if data is None and envelope.get("data_base64") is not None:
        data = _base64_json(envelope["data_base64"])
    elif isinstance(data, str) and (envelope.get("datacontenttype") or "").endswith("json"):
        data = _json(data.encode(), "data")
    extensions = {
        name: str(value) for name, value in envelope.items() if name not in CONTEXT_ATTRIBUTES
    }
    return CloudEvent(
        id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        specversion=envelope["specversion"],
        time=envelope.get("time"),
        data=data,
        extensions=extensions,
    )


def _in_batch(index: int, envelope: Any) -> CloudEvent:
    try:
        return _structured(envelope)
    except CloudEventError as exc:  # which event of the batch, too
        raise CloudEventError(f"[{index}].{exc.field}", exc.message) from exc


def from_http(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """The CloudEvents of one HTTP request: binary, structured or batch mode."""
    content_type = next(
        (value for name, value in headers.items() if name.lower() == "content-type"), ""
    ).lower()  # media types are case-insensitive
    if content_type.startswith(BATCH):
        batch = _json(body, "body")
        if not isinstance(batch, list):
            raise CloudEventError("body", "a CloudEvents batch is a JSON array")
        return [_in_batch(index, envelope) for index, envelope in enumerate(batch)]
    if content_type.startswith(STRUCTURED):
        return [_structured(_json(body, "body"))]
    return [_binary(headers, body)]
