"""Access control: API keys and scopes on every route, the metrics token, the binding
rule, model deletion and the cap on models."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError

from core.schema import ModelSchema
from core.stores.registry import ModelLimitError, ReferenceInfo
from service import auth
from service.auth import OPEN_PATHS, declared_scope
from service.cli import log_access
from service.config import Settings, key_digest
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

SCOPES = ("ingest", "read", "admin", "label")
PATH_VALUES = {"model": "credit", "run_id": "1-abc", "silence_id": "0123abcd", "task_id": "m~0"}
TOKEN = "metrics-token-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


def scoped_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, scope) of every route not open-listed; fails on a route that is
    neither open-listed nor scoped."""
    routes: list[tuple[str, str, str]] = []
    for route in iter_route_contexts(app.routes):
        if route.path in OPEN_PATHS:
            continue
        scope = declared_scope(getattr(route, "dependencies", None) or [])
        assert scope is not None, f"{route.path} is neither in auth.OPEN_PATHS nor scoped"
        path = str(route.path).format(**PATH_VALUES)
        routes.extend((method, path, scope) for method in sorted(route.methods or ()))
    return routes


@pytest.fixture
async def keyed(redis_url: str, key_prefix: str) -> AsyncIterator[Harness]:
    """The app with one key per scope, each named after its scope."""
    settings = keyed_settings(redis_url, key_prefix, {scope: [scope] for scope in SCOPES})
    async for running in start_harness(settings):
        yield running


async def test_every_route_is_open_listed_or_needs_its_scope(keyed: Harness) -> None:
    routes = scoped_routes(keyed.app)
    assert {scope for _, _, scope in routes} == {"ingest", "read", "admin", "label"}
    client = keyed.client
    for method, path, scope in routes:
        missing = await client.request(method, path)
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["detail"]["scope"] == scope
        assert repr(scope) in missing.json()["detail"]["hint"]
        invalid = await client.request(method, path, headers=bearer(api_key("nobody")))
        assert invalid.status_code == 401, (method, path)
        assert invalid.json()["detail"]["error"] == "the API key is not valid"
        for other in set(SCOPES) - {scope}:
            wrong = await client.request(method, path, headers=bearer(api_key(other)))
            assert wrong.status_code == 403, (method, path, other, wrong.text)
            assert wrong.json()["detail"]["error"] == f"API key {other!r} lacks scope {scope!r}"
            assert api_key(other) not in wrong.text
    for path in OPEN_PATHS:
        assert (await client.get(path)).status_code == 200, path


async def test_the_openapi_schema_shows_each_routes_scope(keyed: Harness) -> None:
    schema = (await keyed.client.get("/openapi.json")).json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    for method, path, scope in scoped_routes(keyed.app):
        template = next(p for p in schema["paths"] if p.format(**PATH_VALUES) == path)
        operation = schema["paths"][template][method.lower()]
        assert operation["security"] == [{"bearer": [scope]}, {"apiKey": [scope]}], path


async def test_each_scope_does_its_work(keyed: Harness) -> None:
    async with keyed_client(keyed, bearer(api_key("admin"))) as admin:
        await upload_credit_reference(admin)
        assert (await admin.post("/v1/models/credit/runs")).status_code == 200
    # X-API-Key is accepted as well as a bearer token
    async with keyed_client(keyed, {"X-API-Key": api_key("ingest")}) as ingest:
        events = credit_events(3, seed=5)
        assert (await ingest.post("/v1/models/credit/events", json=events)).status_code == 202
        labels = [{"event_id": events[0]["event_id"], "label": 1}]
        assert (await ingest.post("/v1/models/credit/labels", json=labels)).status_code == 202
        kpis = [{"name": "approvals", "value": 3}]
        assert (await ingest.post("/v1/models/credit/kpis", json=kpis)).status_code == 202
        assert (await ingest.post("/v1/cloudevents", content=b"{}")).status_code == 400
    async with keyed_client(keyed, bearer(api_key("read"))) as read:
        for path in ("/v1/models", "/v1/models/credit", "/v1/models/credit/runs", "/metrics"):
            assert (await read.get(path)).status_code == 200, path


async def test_two_keys_are_live_at_once_for_rotation(redis_url: str, key_prefix: str) -> None:
    both = keyed_settings(redis_url, key_prefix, {"old": ["read", "admin"], "new": ["read"]})
    async for harness in start_harness(both):
        for name in ("old", "new"):
            answer = await harness.client.get("/v1/models", headers=bearer(api_key(name)))
            assert answer.status_code == 200, name
    rotated = keyed_settings(redis_url, key_prefix, {"new": ["read"]})
    async for harness in start_harness(rotated):
        old = await harness.client.get("/v1/models", headers=bearer(api_key("old")))
        assert old.status_code == 401
        new = await harness.client.get("/v1/models", headers=bearer(api_key("new")))
        assert new.status_code == 200


def test_only_hashes_of_keys_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from_env, from_file = api_key("env"), api_key("file")
    monkeypatch.setenv(
        "DRIFTMON_API_KEYS",
        orjson.dumps([{"name": "e", "key": from_env, "scopes": ["read"]}]).decode(),
    )
    secret_file = tmp_path / "api-keys.json"
    secret_file.write_bytes(orjson.dumps([{"name": "f", "key": from_file, "scopes": ["admin"]}]))
    monkeypatch.setenv("DRIFTMON_API_KEYS_FILE", str(secret_file))
    monkeypatch.setenv("DRIFTMON_METRICS_TOKEN", TOKEN)
    settings = Settings()
    assert [key.sha256 for key in settings.api_keys] == [
        key_digest(from_env),
        key_digest(from_file),
    ]
    held = [repr(settings), settings.model_dump_json(), str(settings.model_dump())]
    held += [repr(value) for value in vars(auth).values()]
    for secret in (from_env, from_file, TOKEN):
        assert not any(secret in text for text in held)


def test_invalid_keys_are_refused_without_echoing_them(tmp_path: Path) -> None:
    secret = api_key("typo")
    with pytest.raises(ValidationError) as short:
        Settings(api_keys=[{"name": "x", "key": "too-short", "scopes": ["read"]}])
    assert "16 characters" in str(short.value)
    assert "too-short" not in str(short.value)
    with pytest.raises(ValidationError) as scope:
        Settings(api_keys=[{"name": "x", "key": secret, "scopes": ["reed"]}])
    assert secret not in str(scope.value)
    broken = tmp_path / "keys.json"
    broken.write_text(f'[{{"name": "x", "key": "{secret}", "scopes": []}}]')
    with pytest.raises(ValidationError) as from_file:
        Settings(api_keys_file=broken)
    assert str(broken) in str(from_file.value)
    assert secret not in str(from_file.value)


async def test_metrics_take_the_token_or_a_read_key(redis_url: str, key_prefix: str) -> None:
    keys = {"reader": ["read"], "writer": ["ingest"]}
    settings = keyed_settings(redis_url, key_prefix, keys, metrics_token=TOKEN)
    async for harness in start_harness(settings):
        client = harness.client
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=bearer(TOKEN))).status_code == 200
        assert (await client.get("/metrics", headers=bearer(api_key("reader")))).status_code == 200
        assert (await client.get("/metrics", headers=bearer(api_key("writer")))).status_code == 403
        assert (await client.get("/v1/models", headers=bearer(TOKEN))).status_code == 401
    token_only = harness_settings(redis_url, key_prefix, metrics_token=TOKEN)
    async for harness in start_harness(token_only):
        assert (await harness.client.get("/metrics")).status_code == 401
        assert (await harness.client.get("/metrics", headers=bearer(TOKEN))).status_code == 200
        assert (await harness.client.get("/v1/models")).status_code == 200  # anonymous API


def test_binding_beyond_loopback_needs_keys_or_consent() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert Settings(host=host).binding_refusal() is None, host
    refusal = Settings(host="0.0.0.0").binding_refusal()
    assert refusal is not None
    assert "DRIFTMON_API_KEYS" in refusal
    assert "DRIFTMON_ALLOW_ANONYMOUS" in refusal
    assert Settings(host="0.0.0.0", allow_anonymous=True).binding_refusal() is None
    keys = [{"name": "k", "key": api_key("k"), "scopes": ["read"]}]
    assert Settings(host="0.0.0.0", api_keys=keys).binding_refusal() is None


def test_serve_on_all_interfaces_without_keys_exits_2(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DRIFTMON_")}
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0",
         "--data-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "refusing to serve on 0.0.0.0 without API keys" in done.stderr
    assert "DRIFTMON_ALLOW_ANONYMOUS=true" in done.stderr
    assert not list(tmp_path.iterdir()), "nothing started"


def test_start_up_says_that_the_api_is_open(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service.cli"):
        log_access(Settings(host="127.0.0.1"))
    assert "every route is open" in caplog.text
    assert "DRIFTMON_API_KEYS" in caplog.text


async def test_delete_removes_every_key_metric_and_job_of_the_model(
    harness: Harness, key_prefix: str
) -> None:
    client = harness.client
    for model in ("credit", "other"):
        await upload_credit_reference(client, model)
        events = credit_events(120, seed=7, prefix=model)
        assert (await client.post(f"/v1/models/{model}/events", json=events)).status_code == 202
    await client.post("/v1/models/credit/events", json=[{"features": {"age": "forty"}}])
    await client.post("/v1/models/credit/kpis", json=[{"name": "approvals", "value": 1}])
    await client.post("/v1/models/credit/labels", json=[{"event_id": "credit-7-0", "label": 1}])
    assert (await client.post("/v1/models/credit/runs")).status_code == 200
    before = await _keys(harness, key_prefix)
    assert len([key for key in before if "{credit}" in key]) >= 8
    assert "credit" in _models_in_scrape((await client.get("/metrics")).text)

    assert (await client.delete("/v1/models/credit")).status_code == 204
    after = await _keys(harness, key_prefix)

    def of_credit(key: str) -> bool:  # its own keys, and its alert states beside the others'
        alert_keys = {f"{key_prefix}{{alerts}}:{kind}:credit" for kind in ("states", "judged")}
        return "{credit}" in key or key in alert_keys

    assert not [key for key in after if of_credit(key)]
    # other's keys untouched (the index of models with alert states may go with its last)
    alert_index = {f"{key_prefix}{{alerts}}:models"}
    assert after - alert_index == {key for key in before if not of_credit(key)} - alert_index
    assert await harness.services.stores.registry.names() == ["other"]
    assert harness.services.scheduler.jobs() == ["detect:other"]
    assert _models_in_scrape((await client.get("/metrics")).text) == {"other"}
    assert (await client.get("/v1/models/credit")).status_code == 404
    assert (await client.delete("/v1/models/credit")).status_code == 404


async def _keys(harness: Harness, key_prefix: str) -> set[str]:
    redis = harness.services.redis
    return {key.decode() async for key in redis.scan_iter(match=f"{key_prefix}*", count=500)}


def _models_in_scrape(text: str) -> set[str]:
    return {
        line.split('model="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if 'model="' in line
    }


async def test_a_model_beyond_the_cap_is_refused(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, max_models=2)
    async for harness in start_harness(settings):
        for model in ("a", "b"):
            await upload_credit_reference(harness.client, model)
        third = await _put_reference(harness, "c")
        assert third.status_code == 409
        assert third.json()["detail"]["setting"] == "DRIFTMON_MAX_MODELS"
        again = await upload_credit_reference(harness.client, "a")  # a new reference: fine
        assert again["created"] is False
        assert (await harness.client.delete("/v1/models/b")).status_code == 204
        assert (await _put_reference(harness, "c")).status_code == 201


async def test_concurrent_creations_do_not_pass_the_cap(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, max_models=1)
    async for harness in start_harness(settings):
        answers = await asyncio.gather(*(_put_reference(harness, name) for name in ("x", "y")))
        assert sorted(answer.status_code for answer in answers) == [201, 409]
        registry = harness.services.stores.registry
        schema, info = ModelSchema({"age": "numerical"}), ReferenceInfo("v1", 1, {}, 0.0)
        puts = [registry.put_reference(f"m{i}", schema, info, b"", max_models=5) for i in range(20)]
        outcomes = await asyncio.gather(*puts, return_exceptions=True)
        assert sum(outcome is True for outcome in outcomes) == 4  # 1 model existed
        assert sum(isinstance(outcome, ModelLimitError) for outcome in outcomes) == 16
        assert len(await registry.names()) == 5


async def _put_reference(harness: Harness, model: str) -> httpx.Response:
    return await harness.client.put(
        f"/v1/models/{model}/reference",
        params={"prediction": "prediction", "scores": "score"},
        content=credit_reference(200).to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
