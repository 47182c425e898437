"""Scrape-time gauges: drift streaks, schedule, the per-model column cap, consistency
across replicas, and models that disappear."""

from __future__ import annotations

from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference


def sample(scrape: str, series: str) -> float | None:
    for line in scrape.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def drifted_run(harness: Harness, seed: int) -> dict[str, object]:
    events = credit_events(300, seed=seed, age_shift=15, prefix=f"d{seed}")
    await harness.client.post("/v1/models/credit/events", json=events)
    harness.clock.advance(1)
    result: dict[str, object] = (await harness.client.post("/v1/models/credit/runs")).json()
    return result


async def test_drift_streak_counts_consecutive_drifted_runs(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, drift_share=0.3)
    async for harness in start_harness(settings):
        await upload_credit_reference(harness.client)
        streaks = []
        for seed in (1, 2, 3):
            streaks.append((await drifted_run(harness, seed))["dataset_drift_streak"])
        assert streaks == [1, 2, 3]
        scrape = (await harness.client.get("/metrics")).text
        assert sample(scrape, 'driftmon_dataset_drift_streak_runs{model="credit"}') == 3
        assert sample(scrape, 'driftmon_schedule_interval_seconds{model="credit"}') == 300
        span = sample(scrape, 'driftmon_window_span_seconds{model="credit"}')
        assert span is not None
        assert span >= 2
        harness.clock.advance(2 * settings.window_seconds)
        calm = credit_events(300, seed=9, prefix="calm")
        await harness.client.post("/v1/models/credit/events", json=calm)
        reset = (await harness.client.post("/v1/models/credit/runs")).json()
        assert reset["dataset_drift"] is False
        assert reset["dataset_drift_streak"] == 0


async def test_per_model_column_cap(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, metrics_max_columns=1)
    async for harness in start_harness(settings):
        await upload_credit_reference(harness.client)
        await drifted_run(harness, 4)
        scrape = (await harness.client.get("/metrics")).text
        exported = [
            line for line in scrape.splitlines() if line.startswith("driftmon_column_drifted{")
        ]
        assert exported == ['driftmon_column_drifted{column="age",model="credit"} 1.0']
        assert sample(scrape, 'driftmon_unexported_columns{model="credit"}') == 2


async def test_replicas_serve_the_same_gauges_and_forget_deleted_models(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix)
    async for first in start_harness(settings):
        async for second in start_harness(settings):
            await upload_credit_reference(first.client)
            await drifted_run(first, 5)
            one = (await first.client.get("/metrics")).text
            two = (await second.client.get("/metrics")).text
            series = 'driftmon_column_drift_score{column="age",method="wasserstein",model="credit"}'
            assert sample(one, series) is not None
            assert sample(one, series) == sample(two, series)
            redis = second.services.redis
            await redis.srem(second.services.keys.models(), "credit")
            gone = (await second.client.get("/metrics")).text
            assert sample(gone, series) is None


async def test_latest_report_link(harness: Harness) -> None:
    missing = await harness.client.get("/v1/models/credit/runs/latest/report")
    assert missing.status_code == 404
    await upload_credit_reference(harness.client)
    await drifted_run(harness, 6)
    report = await harness.client.get("/v1/models/credit/runs/latest/report")
    assert report.status_code == 200
    assert "<html" in report.text.lower()


async def test_process_metrics_are_exported(harness: Harness) -> None:
    scrape = (await harness.client.get("/metrics")).text
    assert "process_resident_memory_bytes" in scrape
    assert 'driftmon_build_info{version="' in scrape
