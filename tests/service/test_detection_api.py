"""Detection through the running app: late labels, intake rejects in data quality,
errors that do not stop anything, one run per tick across replicas, a process pool."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd

from core.clock import ManualClock
from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference


def labeled_reference_csv(rows: int = 3000, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows).round()
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    frame = pd.DataFrame(
        {
            "age": age,
            "income": rng.normal(50_000, 10_000, rows),
            "region": rng.choice(["EU", "US", "APAC"], rows, p=[0.5, 0.3, 0.2]),
            "prediction": (score > 0.5).astype(int),
            "score": score,
            "label": (score > 0.5).astype(int),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


async def test_late_labels_give_performance(harness: Harness) -> None:
    response = await harness.client.put(
        "/v1/models/credit/reference",
        params={"prediction": "prediction", "scores": "score", "label": "label"},
        content=labeled_reference_csv(),
    )
    assert response.status_code == 201
    events = credit_events(400, seed=11)
    await harness.client.post("/v1/models/credit/events", json=events)
    before = (await harness.client.post("/v1/models/credit/runs")).json()
    assert before["performance"]["status"] == "insufficient_labels"
    assert before["performance"]["label_coverage"] == 0.0
    # ground truth arrives later for 300 events: half of them contradict the model
    labels = [
        {
            "event_id": event["event_id"],
            "label": event["prediction"] if i % 2 else 1 - int(str(event["prediction"])),
        }
        for i, event in enumerate(events[:300])
    ]
    stored = await harness.client.post("/v1/models/credit/labels", json=labels)
    assert stored.json()["accepted"] == 300
    after = (await harness.client.post("/v1/models/credit/runs")).json()
    performance = after["performance"]
    assert performance["status"] == "ok"
    assert performance["label_coverage"] == 0.75
    assert abs(performance["window"]["accuracy"] - 0.5) < 0.01
    assert performance["reference"]["accuracy"] == 1.0
    assert performance["drop"]["accuracy"] > 0.45
    scrape = (await harness.client.get("/metrics")).text
    assert 'driftmon_label_coverage_ratio{model="credit"} 0.75' in scrape
    assert 'driftmon_model_quality{dataset="window",metric="accuracy",model="credit"} 0.5' in scrape


async def test_intake_rejects_show_up_in_data_quality(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    events = credit_events(300, seed=12)
    events[0]["features"] = {"age": "forty"}
    events[1]["features"] = {"shoe_size": 44}
    events[2]["features"] = {"region": "MARS", "age": 40.0, "income": 5.0}
    await harness.client.post("/v1/models/credit/events", json=events)
    run = (await harness.client.post("/v1/models/credit/runs")).json()
    quality = run["data_quality"]
    checks = {(f["column"], f["check"]) for f in quality["findings"]}
    assert ("age", "type_mismatch") in checks
    assert ("shoe_size", "new_column") in checks
    assert quality["columns"]["region"]["unseen_categories"] == {"MARS": 1}
    scrape = (await harness.client.get("/metrics")).text
    assert 'driftmon_column_type_mismatches{column="age",model="credit"} 1.0' in scrape
    assert 'check="new_column"' in scrape
    assert "shoe_size" not in scrape


async def test_a_failing_run_is_an_error_and_the_next_one_recovers(harness: Harness) -> None:
    # a reference of its own: workers cache decoded references by version
    response = await harness.client.put(
        "/v1/models/credit/reference?prediction=prediction&scores=score",
        content=labeled_reference_csv(rows=2345, seed=99),
    )
    await harness.client.post("/v1/models/credit/events", json=credit_events(300, seed=13))
    services = harness.services
    key = services.keys.reference_data("credit", response.json()["version"])
    good = await services.redis.get(key)
    assert good is not None
    await services.redis.set(key, b"not parquet")
    broken = (await harness.client.post("/v1/models/credit/runs")).json()
    assert broken["status"] == "error"
    assert broken["error"]
    await services.redis.set(key, good)
    healed = (await harness.client.post("/v1/models/credit/runs")).json()
    assert healed["status"] == "ok"
    scrape = (await harness.client.get("/metrics")).text
    assert (
        'driftmon_detection_runs_total{model="credit",status="error",trigger="manual"} 1.0'
        in scrape
    )
    assert 'driftmon_last_run_status{model="credit",status="ok"} 1.0' in scrape


async def test_one_replica_runs_each_tick(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, schedule_seconds=60)
    async for first in start_harness(settings):
        async for second in start_harness(settings):
            second.clock.advance(first.clock.now() - second.clock.now())
            await upload_credit_reference(first.client)
            await first.client.post("/v1/models/credit/events", json=credit_events(200, seed=14))
            runners = [first.services.runner, second.services.runner]
            results = await asyncio.gather(
                *(runner.run_scheduled("credit") for runner in runners * 3)
            )
            assert sum(result is not None for result in results) == 1
            for harness in (first, second):
                harness.clock.advance(60)
            results = await asyncio.gather(*(runner.run_scheduled("credit") for runner in runners))
            assert sum(result is not None for result in results) == 1
            history = (await first.client.get("/v1/models/credit/runs")).json()["runs"]
            assert [run["trigger"] for run in history] == ["schedule", "schedule"]


class WallClock(ManualClock):
    """Real time: the scheduler fires on it, so ticks must follow it too."""

    def now(self) -> float:
        return time.time()


async def test_two_scheduled_replicas_do_not_double_run(redis_url: str, key_prefix: str) -> None:
    # a run takes 0.3-0.7 s here; a tick shorter than that makes the schedulers skip
    # ticks (one run at a time per replica), and then too few runs remain to judge
    interval = 1.0
    settings = harness_settings(
        redis_url, key_prefix, scheduler_enabled=True, schedule_seconds=interval
    )
    async for first in start_harness(settings, WallClock()):
        await upload_credit_reference(first.client)
        await first.client.post("/v1/models/credit/events", json=credit_events(200, seed=15))
        async for _second in start_harness(settings, WallClock()):
            history = await runs_once_there_are(first.client, 4, seconds=120)
            await asyncio.sleep(2 * interval)  # more ticks while both replicas run
        history = (await first.client.get("/v1/models/credit/runs?limit=100")).json()["runs"]
    ticks = [round(pd.Timestamp(run["started_at"]).timestamp() / interval) for run in history]
    assert len(ticks) >= 4
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {sorted(ticks)}"


async def runs_once_there_are(
    client: httpx.AsyncClient, count: int, seconds: float
) -> list[dict[str, Any]]:
    """The run history once it holds `count` runs, polled within a wall-clock bound."""
    deadline = time.monotonic() + seconds
    while True:
        runs: list[dict[str, object]] = (
            await client.get("/v1/models/credit/runs?limit=100")
        ).json()["runs"]
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.2)


async def test_detection_in_a_worker_process(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, detection_workers=1)
    async for harness in start_harness(settings):
        await upload_credit_reference(harness.client)
        await harness.client.post(
            "/v1/models/credit/events", json=credit_events(300, seed=16, age_shift=10)
        )
        run = (await harness.client.post("/v1/models/credit/runs")).json()
        assert run["status"] == "ok", run.get("error")
        assert run["columns"]["age"]["drifted"] is True
        report = await harness.client.get(f"/v1/models/credit/runs/{run['run_id']}/report")
        assert report.status_code == 200
