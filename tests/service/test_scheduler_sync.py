"""Every replica schedules every model in the registry: models uploaded through another
replica are scheduled, models gone from the registry unscheduled, changed intervals
applied, within the sync interval."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial

from service.config import Settings
from service.scheduler import DetectionScheduler
from tests.collectors.test_stream import eventually
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference

GENEROUS_SECONDS = 30.0  # many sync intervals: the CI machine is shared and may be busy


def replica_settings(redis_url: str, key_prefix: str) -> Settings:
    return harness_settings(
        redis_url,
        key_prefix,
        scheduler_enabled=True,
        scheduler_sync_seconds=0.2,
        schedule_seconds=3600,  # no detection runs while the test looks at the jobs
    )


async def _scheduled(harness: Harness, model: str, expected: bool = True) -> bool:
    return (f"detect:{model}" in harness.services.scheduler.jobs()) == expected


async def test_a_model_uploaded_through_one_replica_is_scheduled_on_the_other(
    redis_url: str, key_prefix: str
) -> None:
    settings = replica_settings(redis_url, key_prefix)
    async for here in start_harness(settings):
        async for there in start_harness(settings):
            await upload_credit_reference(here.client)
            assert await _scheduled(here, "credit"), "the uploading replica schedules at once"
            await eventually(partial(_scheduled, there, "credit"), seconds=GENEROUS_SECONDS)


async def test_a_model_gone_from_the_registry_loses_its_job(
    redis_url: str, key_prefix: str
) -> None:
    settings = replica_settings(redis_url, key_prefix)
    async for harness in start_harness(settings):
        await upload_credit_reference(harness.client)
        assert await _scheduled(harness, "credit")
        await harness.services.redis.srem(harness.services.keys.models(), "credit")
        await eventually(
            partial(_scheduled, harness, "credit", expected=False), seconds=GENEROUS_SECONDS
        )


class Registry:
    """Intervals by model, as the scheduler reads them; tests change them."""

    def __init__(self, intervals: dict[str, float]) -> None:
        self.intervals = intervals

    async def __call__(self) -> Mapping[str, float]:
        return dict(self.intervals)


async def test_a_changed_interval_is_rescheduled() -> None:
    runs: list[str] = []

    async def run(model: str) -> None:
        runs.append(model)

    registry = Registry({"credit": 10 * 365 * 86400.0})  # no tick while the test runs
    scheduler = DetectionScheduler(run, registry, sync_seconds=0.1)
    scheduler.start()
    try:
        await scheduler.sync()
        assert scheduler.jobs() == ["detect:credit"]
        registry.intervals["credit"] = 0.1
        await eventually(lambda: _true(bool(runs)), seconds=GENEROUS_SECONDS)
    finally:
        scheduler.shutdown()


async def test_a_job_ensured_while_the_registry_is_read_is_kept() -> None:
    """An upload schedules its model at once; a sync that read the registry just before
    the upload does not take that job away."""
    scheduler: DetectionScheduler

    async def read_racing_an_upload() -> Mapping[str, float]:
        scheduler.ensure("credit", 3600)  # the upload, while the registry is read
        return {}

    async def run(model: str) -> None:
        return None

    scheduler = DetectionScheduler(run, read_racing_an_upload)
    await scheduler.sync()
    assert scheduler.jobs() == ["detect:credit"]


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
