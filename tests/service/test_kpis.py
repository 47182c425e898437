"""Business KPIs over HTTP and the stream, compared per run against a baseline."""

from __future__ import annotations

from functools import partial

import orjson

from core.stores.kpis import KpiStore
from tests.collectors.test_stream import consumer_settings, eventually, register_credit_model
from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference


async def test_kpis_are_compared_with_their_baseline(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    now = harness.clock.now()
    window_seconds = harness.settings.window_seconds
    baseline = [
        {"name": "approval_rate", "value": 0.60, "timestamp": now - window_seconds - 3600 * h}
        for h in range(1, 5)
    ]
    recent = [
        {"name": "approval_rate", "value": 0.45, "timestamp": now - 60 * m} for m in range(1, 4)
    ]
    response = await harness.client.post("/v1/models/credit/kpis", json=baseline + recent)
    assert response.status_code == 202
    assert response.json()["accepted"] == 7
    await harness.client.post("/v1/models/credit/events", json=credit_events(200, seed=1))
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    approval = run["kpis"]["approval_rate"]
    assert approval["window"] == {"count": 3, "mean": 0.45, "last": 0.45}
    assert approval["baseline"]["count"] == 4
    assert abs(approval["relative_change"] - (-0.25)) < 1e-9
    scrape = (await harness.client.get("/metrics")).text
    change = sample(scrape, 'driftmon_kpi_relative_change{kpi="approval_rate",model="credit"}')
    assert abs(change - (-0.25)) < 1e-9
    assert 'driftmon_kpi_points_total{model="credit",source="http"} 7.0' in scrape


def sample(scrape: str, series: str) -> float:
    """The value of one series in a Prometheus exposition."""
    line = next(line for line in scrape.splitlines() if line.startswith(series + " "))
    return float(line.rsplit(" ", 1)[1])


async def test_bad_kpis_name_the_field(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    response = await harness.client.post(
        "/v1/models/credit/kpis",
        json=[{"name": "bad name!", "value": 1}, {"name": "ok", "value": "high"}],
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["name", "value"]
    unknown = await harness.client.post("/v1/models/ghost/kpis", json=[{"name": "a", "value": 1}])
    assert unknown.status_code == 404


async def test_distinct_kpi_names_are_capped(redis_url: str, key_prefix: str) -> None:
    async for harness in start_harness(harness_settings(redis_url, key_prefix, kpi_max_names=2)):
        await upload_credit_reference(harness.client)
        points = [{"name": name, "value": 1.0} for name in ("a", "b", "c", "a")]
        body = (await harness.client.post("/v1/models/credit/kpis", json=points)).json()
        assert body["accepted"] == 3
        assert body["errors"][0]["field"] == "name"
        assert "'c'" in body["errors"][0]["error"]


async def test_kpis_arrive_by_stream_too(redis_url: str, key_prefix: str) -> None:
    await register_credit_model(redis_url, key_prefix)
    async for harness in start_harness(consumer_settings(redis_url, key_prefix)):
        redis = harness.services.redis
        points = [{"name": "revenue_per_request", "value": 1.25}]
        await redis.xadd("preds", {"kpis": orjson.dumps(points)})
        await eventually(partial(kpi_names_are, harness, ["revenue_per_request"]))


async def kpi_names_are(harness: Harness, names: list[str]) -> bool:
    store: KpiStore = harness.services.stores.kpis
    return await store.names("credit") == names
