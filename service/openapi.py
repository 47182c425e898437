"""What the OpenAPI schema says the API answers, kept beside nothing else so that the
routes' decorators stay one argument each: the error shape every 4xx and 503 shares,
the JSON answers of the routes, and the request bodies the routes read themselves
(they take the raw `Request`, so FastAPI cannot infer them). Clients and fuzzers
(tests/service/test_fuzz.py) hold the API to this."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.alerts import AlertState
from core.dataset_audit import AuditSummary
from core.results import RunResult

# where the error shape lands in the schema: routes that answer HTML or text refer to it
# by reference, since FastAPI would file a model under the route's own media type
ERROR_REF = "#/components/schemas/ErrorBody"

DESCRIPTIONS = {
    400: "The body is unusable as a whole (empty, not JSON, not a CloudEvent); `field` names it.",
    401: "API keys are configured and the request has none, or none valid.",
    403: "The API key lacks the route's scope (named in `scope`).",
    404: "No such model (the `hint` says how to create it), or no such run.",
    409: "Refused in the current state: one model more than DRIFTMON_MAX_MODELS, or a run "
    "without a report.",
    413: "The body is over its cap (`cap_bytes` and the `setting` are named), or the "
    "reference has more columns than allowed.",
    422: "The model name is not valid, or nothing in the body could be used.",
    429: "Too many detection runs in flight; retry after Retry-After seconds.",
    503: "Redis is unavailable and nothing was acknowledged; retry after Retry-After seconds.",
}
HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}


class ErrorDetail(BaseModel):
    """What went wrong: where (`field`) or what to do about it (`hint`). Some errors add
    what they are about: `setting`, `cap_bytes`, `scope`, `max_models`."""

    model_config = ConfigDict(extra="allow")

    error: str
    field: str | None = None
    hint: str | None = None


class ErrorBody(BaseModel):
    detail: ErrorDetail


def responses(
    *errors: int,
    ok: dict[int, Any] | None = None,
    unprocessable: Any = ErrorBody,
    by_reference: bool = False,
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: its success answers (`ok`: status to model) and its errors
    in the shared shape, with 401 and 403 (every route here needs a key once keys are
    configured) and 503 (every route here reads Redis). `unprocessable` is what a 422
    holds where it is not the error shape; `by_reference` for routes whose own answer
    is not JSON (HTML, text)."""
    out: dict[int | str, dict[str, Any]] = {
        status: {"model": model} for status, model in (ok or {}).items()
    }
    for status in sorted({*errors, 401, 403, 503}):
        answer: dict[str, Any] = {"description": DESCRIPTIONS[status]}
        if status in HEADERS:
            answer["headers"] = HEADERS[status]
        if by_reference:
            answer["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
        else:
            answer["model"] = unprocessable if status == 422 else ErrorBody
        out[status] = answer
    return out


def intake_responses(accepted: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """Intake's answers: 202 with the counts, or 422 with the same counts when every
    record was rejected (or the error shape, for a model name that is not valid)."""
    return responses(400, 404, 413, 422, ok={202: accepted}, unprocessable=accepted | ErrorBody)


# --- JSON answers ------------------------------------------------------------------------


class RecordError(BaseModel):
    index: int
    field: str
    reason: str
    error: str


class KpisAccepted(BaseModel):
    accepted: int
    rejected: int
    errors: list[RecordError]


class EventsAccepted(KpisAccepted):
    duplicates: int = Field(description="events already stored, by their event_id")


class LabelsAccepted(KpisAccepted):
    unknown: int = Field(description="labels of event ids not (or no longer) stored")


class CloudEventOutcome(BaseModel):
    """One CloudEvent's outcome; a joined pair adds the intake counts, feedback the
    label counts."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: Literal["waiting", "joined", "labels", "ignored", "invalid"]
    model: str | None = None
    reason: str | None = None
    field: str | None = None
    error: str | None = None


class CloudEventBatch(BaseModel):
    results: list[CloudEventOutcome]


class ReferenceVersion(BaseModel):
    version: str
    rows: int
    columns: dict[str, str] = Field(description="column: its kind or role")
    uploaded_at: float
    ignored: dict[str, str] = Field(description="column: why it is not monitored")


class ReferenceUploaded(ReferenceVersion):
    model: str
    created: bool
    audit: AuditSummary | None = Field(description="the reference's audit; null if it failed")


class ModelSummary(BaseModel):
    name: str
    active_reference: str
    features: int


class ModelList(BaseModel):
    models: list[ModelSummary]


class WindowNow(BaseModel):
    seconds: float
    max_events: int
    min_events: int
    events: int = Field(description="events in the window now")


class LatestRun(BaseModel):
    run_id: str
    status: str
    started_at: str


class ModelDescription(BaseModel):
    name: str
    model_schema: dict[str, Any] = Field(alias="schema")
    columns: dict[str, str]
    active_reference: str
    references: list[ReferenceVersion]
    created_at: float
    schedule_seconds: float
    window: WindowNow
    stored_events: int
    latest_run: LatestRun | None
    audit: AuditSummary | None = Field(description="the active reference's audit")
    firing_alerts: list[AlertState]


def _absent_sections_are_empty(schema: dict[str, Any]) -> None:
    for name in ("performance", "data_quality", "multivariate"):
        section = schema["properties"][name]
        section["anyOf"] = [EMPTY if arm == {"type": "null"} else arm for arm in section["anyOf"]]


EMPTY = {"type": "object", "maxProperties": 0, "description": "the run has no such section"}


class RunAnswer(RunResult):
    """A RunResult as its JSON has it: a section the run lacks is {}, where the model's
    own schema says null (core/results.py `EmptyWhenAbsent` serializes None as {})."""

    model_config = ConfigDict(json_schema_extra=_absent_sections_are_empty)


class RunList(BaseModel):
    runs: list[RunAnswer] = Field(description="newest first")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """`status` and each dependency's state; 503 names what is down."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "unavailable"]
    redis: str
    stream_consumer: Literal["ok", "down"] | None = None
    stream_consumer_error: str | None = None


READINESS: dict[int | str, dict[str, Any]] = {
    200: {"model": Readiness},
    503: {"model": Readiness, "description": "Not ready: Redis or the stream consumer is down."},
}


# --- request bodies (`openapi_extra=`) ---------------------------------------------------

NUMBER_OR_TEXT: dict[str, Any] = {"type": ["number", "string"]}
EVENT_ID: dict[str, Any] = {"type": ["string", "integer"], "maxLength": 256}
TIMESTAMP: dict[str, Any] = {
    "type": ["string", "number"],
    "description": "ISO 8601 with an offset, or epoch seconds (or milliseconds); absent: now",
}
EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["features"],
    "properties": {
        "event_id": {**EVENT_ID, "description": "idempotency key; generated when absent"},
        "timestamp": TIMESTAMP,
        "model_version": {"type": ["string", "integer"]},
        "features": {
            "type": "object",
            "description": "the reference's feature columns: numbers, strings or null",
            "additionalProperties": {"type": ["number", "string", "null"]},
        },
        "prediction": {"type": ["number", "string", "null"]},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "score": {"type": "number", "description": "the positive class's probability"},
        "label": {"type": ["number", "string", "null"]},
    },
}
LABEL: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "label"],
    "properties": {"event_id": EVENT_ID, "label": NUMBER_OR_TEXT},
}
KPI: dict[str, Any] = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {"name": {"type": "string"}, "value": {"type": "number"}, "timestamp": TIMESTAMP},
}
CLOUDEVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "source", "type", "specversion"],
    "properties": {
        **{name: {"type": "string", "minLength": 1} for name in ("id", "source", "type")},
        **{name: {"type": "string"} for name in ("specversion", "time", "datacontenttype")},
        "data": {"description": "the inference request or response"},
        "data_base64": {"type": "string", "contentEncoding": "base64"},
    },
}
# binary mode: the body is the inference payload, the attributes are ce-* headers
CLOUDEVENT_HEADERS = [
    {"name": f"ce-{name}", "in": "header", "required": False, "schema": {"type": "string"}}
    for name in ("id", "source", "type", "specversion", "time", "inferenceservicename")
]


def request_body(content: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`openapi_extra=` of a route that reads its body itself: media type to schema."""
    by_type = {media_type: {"schema": schema} for media_type, schema in content.items()}
    return {"requestBody": {"required": True, "content": by_type}}


def records_body(record: dict[str, Any]) -> dict[str, Any]:
    """A body of records: one object, an array of them, or NDJSON."""
    either = {"anyOf": [record, {"type": "array", "items": record}]}
    ndjson = {"type": "string", "description": "one JSON object a line"}
    return request_body({"application/json": either, "application/x-ndjson": ndjson})


BINARY = {"type": "string", "format": "binary"}
EVENTS_BODY = records_body(EVENT)
LABELS_BODY = records_body(LABEL)
KPIS_BODY = records_body(KPI)
REFERENCE_BODY = request_body(
    {
        "text/csv": {"type": "string"},
        "application/octet-stream": BINARY,
        "application/vnd.apache.parquet": BINARY,
    }
)
CLOUDEVENTS_BODY = {
    "parameters": CLOUDEVENT_HEADERS,
    **request_body(
        {
            "application/json": {"description": "binary mode: the data, any JSON"},
            "application/cloudevents+json": CLOUDEVENT,
            "application/cloudevents-batch+json": {"type": "array", "items": CLOUDEVENT},
        }
    ),
}
