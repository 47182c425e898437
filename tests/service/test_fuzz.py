"""Schemathesis against the app's own OpenAPI schema, bodies included: every operation
gets generated requests, schema-conforming and not (for the known model `credit` and
for any name), sent with a key holding every scope. No answer is a 5xx, and every
answer's status, content type and body are ones the schema states for the operation.

When a check fails because the schema is wrong, fix the schema (service/openapi.py),
not the check. A failure prints the request that caused it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from tests.data import credit_events, credit_reference
from tests.fixtures_app import (
    Harness,
    api_key,
    bearer,
    harness_settings,
    keyed_client,
    keyed_settings,
    start_harness,
    upload_credit_reference,
)

# cases per operation, spread over valid and invalid ones, any and known path parameters
# and a good body: 17 operations take ~20 s on the busy two-core CI machine
EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZER = "fuzzer"  # a key with every scope, so that requests get past auth
BASE_URL = "http://driftmon"
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]
# bodies the app reads as text or bytes: sent as generated
schemathesis.serializer.alias(["text/csv", "application/x-ndjson"], "text/plain")
schemathesis.serializer.alias("application/vnd.apache.parquet", "application/octet-stream")


def operations() -> list[tuple[str, str]]:
    """Every operation of the schema (which needs no Redis to build)."""
    spec = create_app(harness_settings("redis://unused:1", "x:")).openapi()
    return [(method.upper(), path) for path, methods in spec["paths"].items() for method in methods]


@dataclass(frozen=True)
class Fuzzed:
    harness: Harness
    known: dict[str, str]  # path parameters that exist: past the 404s


@pytest.fixture
async def fuzzed(redis_url: str, key_prefix: str) -> AsyncIterator[Fuzzed]:
    settings = keyed_settings(redis_url, key_prefix, {FUZZER: ["admin", "ingest", "read", "label"]})
    async for harness in start_harness(settings):
        async with keyed_client(harness, bearer(api_key(FUZZER))) as client:
            await upload_credit_reference(client)
            run = await client.post("/v1/models/credit/runs")  # insufficient data: no report
            assert run.status_code == 200, run.text
        yield Fuzzed(harness, {"model": "credit", "run_id": run.json()["run_id"]})


def good_bodies() -> dict[tuple[str, str], tuple[str, object]]:
    """A body the known model accepts, per operation: the success answers get checked
    too, which random features, labels or CSV seldom reach."""
    events = credit_events(3, seed=7, prefix="fuzz")
    cloudevent = {
        "specversion": "1.0",
        "type": "org.kubeflow.serving.inference.request",
        "source": "fuzz",
        "id": "fuzz-1",
        "inferenceservicename": "credit",
        "data": {"instances": [events[0]["features"]]},
    }
    return {
        ("POST", "/v1/models/{model}/events"): ("application/json", events),
        ("POST", "/v1/models/{model}/labels"): (
            "application/json",
            [{"event_id": "fuzz-7-0", "label": 1}],
        ),
        ("POST", "/v1/models/{model}/kpis"): (
            "application/json",
            [{"name": "approval_rate", "value": 0.6}],
        ),
        ("POST", "/v1/cloudevents"): ("application/cloudevents+json", cloudevent),
        ("PUT", "/v1/models/{model}/reference"): (
            "text/csv",
            credit_reference(rows=200).to_csv(index=False),
        ),
    }


GOOD_BODIES = good_bodies()


def cases(operation: Operation, known: dict[str, str]) -> st.SearchStrategy[AnyCase]:
    """Generated requests, valid and not, with any path parameters and with known ones."""
    existing = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
    strategies = [
        operation.as_strategy(mode, path_parameters=parameters)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for parameters in ([{}, existing] if existing else [{}])
    ]
    good = GOOD_BODIES.get((operation.method.upper(), operation.path))
    if good is not None:
        media_type, body = good
        strategies.append(
            operation.as_strategy(path_parameters=existing, body=body, media_type=media_type)
        )
    return st.one_of(*strategies)


async def send(client: httpx.AsyncClient, case: AnyCase) -> httpx.Response:
    """The case as schemathesis would send it, through the harness's client."""
    sent = case.as_transport_kwargs(base_url=BASE_URL, headers=bearer(api_key(FUZZER)))
    body: dict[str, Any] = {}
    if "json" in sent:
        body["json"] = sent["json"]
    elif sent.get("data") is not None:
        data = sent["data"]
        body["content"] = data.encode() if isinstance(data, str) else data
    return await client.request(
        sent["method"], sent["url"], headers=sent["headers"], params=sent["params"], **body
    )


def fuzz(
    operation: Operation,
    known: dict[str, str],
    call: Callable[[AnyCase], httpx.Response],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a CI failure reproduces
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(operation, known))
    def check(case: AnyCase) -> None:
        case.validate_response(call(case), checks=CHECKS)

    check()


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("method", "path"), operations())
async def test_answers_conform_to_the_schema(fuzzed: Fuzzed, method: str, path: str) -> None:
    app = fuzzed.harness.app
    operation = schemathesis.openapi.from_dict(app.openapi())[path][method]
    loop = asyncio.get_running_loop()
    async with keyed_client(fuzzed.harness, {}) as client:

        def call(case: AnyCase) -> httpx.Response:
            # hypothesis drives the cases from a worker thread; the app runs on this loop
            return asyncio.run_coroutine_threadsafe(send(client, case), loop).result()

        await asyncio.to_thread(fuzz, operation, fuzzed.known, call)
