"""The OpenAPI schema is valid OpenAPI and states what the routes answer: request
bodies, the shared error shape, the JSON answers and the non-JSON ones."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from service.app import create_app
from tests.fixtures_app import harness_settings

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    # no lifespan: the schema needs no Redis
    schema: dict[str, Any] = create_app(harness_settings("redis://unused:1", "x:")).openapi()
    return schema


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_schema_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)  # raises, naming the place, when it is not


def test_request_bodies_are_described(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    for kind in ("events", "labels", "kpis"):
        content = paths[f"/v1/models/{{model}}/{kind}"]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-ndjson"}
        assert len(content["application/json"]["schema"]["anyOf"]) == 2  # object or array
    reference = paths["/v1/models/{model}/reference"]["put"]["requestBody"]["content"]
    assert set(reference) == {
        "text/csv",
        "application/octet-stream",
        "application/vnd.apache.parquet",
    }
    cloudevents = paths["/v1/cloudevents"]["post"]
    assert "application/cloudevents+json" in cloudevents["requestBody"]["content"]
    assert "ce-id" in {parameter["name"] for parameter in cloudevents["parameters"]}


def test_every_keyed_route_documents_401_403_and_503_in_the_error_shape(
    spec: dict[str, Any],
) -> None:
    for method, path, operation in operations(spec):
        if path in ("/healthz", "/readyz"):
            continue
        for status in ("401", "403", "503"):
            answer = operation["responses"].get(status)
            assert answer is not None, f"{method} {path} lacks {status}"
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, f"{method} {path} {status}: {schema}"
        assert "Retry-After" in operation["responses"]["503"]["headers"]


def test_the_error_shape_names_error_field_and_hint(spec: dict[str, Any]) -> None:
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert detail["required"] == ["error"]
    assert {"error", "field", "hint"} <= set(detail["properties"])
    assert detail["additionalProperties"] is True  # setting, cap_bytes, scope...


def test_json_answers_have_models_and_others_their_media_type(spec: dict[str, Any]) -> None:
    paths = spec["paths"]

    def schema_of(path: str, method: str, status: str) -> dict[str, Any]:
        content = paths[path][method]["responses"][status]["content"]
        return dict(content["application/json"]["schema"])

    assert schema_of("/v1/models/{model}/events", "post", "202")["$ref"].endswith("EventsAccepted")
    assert schema_of("/v1/models", "get", "200")["$ref"].endswith("ModelList")
    assert schema_of("/v1/models/{model}", "get", "200")["$ref"].endswith("ModelDescription")
    assert schema_of("/v1/models/{model}/reference", "put", "201")["$ref"].endswith(
        "ReferenceUploaded"
    )
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    report = paths["/v1/models/{model}/runs/{run_id}/report"]["get"]["responses"]
    assert list(report["200"]["content"]) == ["text/html"]
    assert report["404"]["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}
