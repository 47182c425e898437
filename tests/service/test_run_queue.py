"""Detection runs are bounded: concurrent manual runs of a model share one run, a flood
across models is refused with 429 and Retry-After beyond DRIFTMON_MAX_QUEUED_RUNS, and
scheduled runs skip a model already running and otherwise wait for a slot."""

from __future__ import annotations

import asyncio

import httpx

from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference

# generous: a hang fails here with a message, long before pytest's own timeout
NO_HANG_SECONDS = 150


async def with_events(harness: Harness, model: str) -> None:
    await upload_credit_reference(harness.client, model)
    response = await harness.client.post(
        f"/v1/models/{model}/events", json=credit_events(150, seed=len(model))
    )
    assert response.status_code == 202, response.text


async def post_runs(harness: Harness, models: list[str]) -> list[httpx.Response]:
    posts = (harness.client.post(f"/v1/models/{model}/runs") for model in models)
    return await asyncio.wait_for(asyncio.gather(*posts), NO_HANG_SECONDS)


async def test_concurrent_runs_of_one_model_share_one_run(harness: Harness) -> None:
    await with_events(harness, "credit")
    responses = await post_runs(harness, ["credit"] * 10)
    assert [response.status_code for response in responses] == [200] * 10
    run_ids = {response.json()["run_id"] for response in responses}
    assert len(run_ids) <= 2
    history = (await harness.client.get("/v1/models/credit/runs")).json()["runs"]
    assert len(history) == len(run_ids)
    assert harness.services.runner.in_flight() == []


async def test_a_flood_across_models_is_refused_beyond_the_bound(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, max_queued_runs=2)
    async for harness in start_harness(settings):
        models = [f"m{index}" for index in range(6)]
        for model in models:
            await with_events(harness, model)
        responses = await post_runs(harness, models * 2)
        refused = [response for response in responses if response.status_code == 429]
        accepted = [response for response in responses if response.status_code == 200]
        assert len(refused) + len(accepted) == len(responses)
        assert refused, "6 models at once with room for 2: some must wait"
        assert len({response.json()["run_id"] for response in accepted}) >= 2
        assert all(response.json()["status"] == "ok" for response in accepted)
        for response in refused:
            assert int(response.headers["retry-after"]) >= 1
            detail = response.json()["detail"]
            assert detail["setting"] == "DRIFTMON_MAX_QUEUED_RUNS"
            assert "2 detection runs" in detail["error"]
        # once the flood has drained, every model runs again
        for response in await post_runs(harness, models[:2]):
            assert response.status_code == 200, response.text
        assert harness.services.runner.in_flight() == []


async def test_a_tick_skips_a_model_that_is_running(harness: Harness) -> None:
    await with_events(harness, "credit")
    runner = harness.services.runner
    manual = asyncio.create_task(runner.run_manual("credit"))
    for _ in range(1000):  # the task registers once the model's schema is read
        if runner.in_flight():
            break
        await asyncio.sleep(0.01)
    assert runner.in_flight() == ["credit"]
    assert await runner.run_scheduled("credit") is None
    assert (await asyncio.wait_for(manual, NO_HANG_SECONDS)).status == "ok"
    # skipped before taking the tick's lease: the tick can still run (here or elsewhere)
    scheduled = await asyncio.wait_for(runner.run_scheduled("credit"), NO_HANG_SECONDS)
    assert scheduled is not None
    assert scheduled.trigger == "schedule"


async def test_scheduled_runs_wait_for_a_slot_rather_than_fail(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, max_queued_runs=1)
    async for harness in start_harness(settings):
        models = ["a1", "b2", "c3"]
        for model in models:
            await with_events(harness, model)
        ticks = (harness.services.runner.run_scheduled(model) for model in models)
        results = await asyncio.wait_for(asyncio.gather(*ticks), NO_HANG_SECONDS)
        assert [None if result is None else result.status for result in results] == ["ok"] * 3
