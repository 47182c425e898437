"""Fixtures that run the app in-process against the test Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from core.clock import ManualClock
from service.app import create_app
from service.config import Settings
from service.state import Services, services_of_app
from tests.data import credit_reference


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    clock: ManualClock
    settings: Settings

    @property
    def services(self) -> Services:
        return services_of_app(self.app)


def harness_settings(redis_url: str, key_prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "key_prefix": key_prefix,
        "detection_workers": 0,
        "scheduler_enabled": False,
        "min_window_events": 100,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def start_harness(
    settings: Settings, clock: ManualClock | None = None
) -> AsyncIterator[Harness]:
    """The app with its lifespan running. The clock is manual unless one is given; a
    ManualClock subclass that reads real time serves tests that need the scheduler's."""
    clock = clock or ManualClock(start=time.time())
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://driftmon") as client:
            yield Harness(app, client, clock, settings)


@pytest.fixture
async def harness(redis_url: str, key_prefix: str) -> AsyncIterator[Harness]:
    async for running in start_harness(harness_settings(redis_url, key_prefix)):
        yield running


async def upload_credit_reference(
    client: httpx.AsyncClient, model: str = "credit"
) -> dict[str, object]:
    body = credit_reference().to_csv(index=False).encode()
    response = await client.put(
        f"/v1/models/{model}/reference",
        params={"prediction": "prediction", "scores": "score"},
        content=body,
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


async def scrape_samples(client: httpx.AsyncClient) -> list[Sample]:
    """Every sample of /metrics, parsed as Prometheus parses the text format."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    families = text_string_to_metric_families(response.text)
    return [sample for family in families for sample in family.samples]


def sample_value(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    """The value of the sample with this name and exactly these labels, if exported."""
    for sample in samples:
        if sample.name == name and sample.labels == labels:
            return float(sample.value)
    return None


# ---------------------------------------------------------------------------------------------
# API keys: settings with keys, and clients that send one
# ---------------------------------------------------------------------------------------------


def api_key(name: str) -> str:
    """The plaintext of the test key called `name` (16 characters or more, as required)."""
    return f"test-key-{name}-0123456789abcdef"


def keyed_settings(
    redis_url: str, key_prefix: str, keys: dict[str, list[str]], **overrides: object
) -> Settings:
    """harness_settings with API keys: {name: scopes}, each key being `api_key(name)`."""
    api_keys = [
        {"name": name, "key": api_key(name), "scopes": scopes} for name, scopes in keys.items()
    ]
    return harness_settings(redis_url, key_prefix, api_keys=api_keys, **overrides)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keyed_client(harness: Harness, headers: dict[str, str]) -> httpx.AsyncClient:
    """Another client of the harness's app that sends these headers (use `async with`)."""
    transport = httpx.ASGITransport(app=harness.app)
    return httpx.AsyncClient(transport=transport, base_url="http://driftmon", headers=headers)
