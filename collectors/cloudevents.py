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
    missing = [name for name in REQUIRED if not envelope.get(name)]
    if missing:
        raise CloudEventError(missing[0], "attribute missing from the structured CloudEvent")
    data = envelope.get("data")
    if data is None and envelope.get("data_base64"):
        data = _json(base64.b64decode(envelope["data_base64"]), "data_base64")
    elif isinstance(data, str) and envelope.get("datacontenttype", "").endswith("json"):
        data = _json(data.encode(), "data")
    extensions = {
        name: str(value) for name, value in envelope.items() if name not in CONTEXT_ATTRIBUTES
    }
    return CloudEvent(
        id=str(envelope["id"]),
        source=str(envelope["source"]),
        type=str(envelope["type"]),
        specversion=str(envelope["specversion"]),
        time=envelope.get("time"),
        data=data,
        extensions=extensions,
    )


def from_http(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """The CloudEvents of one HTTP request: binary, structured or batch mode."""
    content_type = next(
        (value for name, value in headers.items() if name.lower() == "content-type"), ""
    )
    if content_type.startswith(BATCH):
        batch = _json(body, "body")
        if not isinstance(batch, list):
            raise CloudEventError("body", "a CloudEvents batch is a JSON array")
        return [_structured(envelope) for envelope in batch]
    if content_type.startswith(STRUCTURED):
        return [_structured(_json(body, "body"))]
    return [_binary(headers, body)]
