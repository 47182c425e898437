"""Cold start: the detection pool is spawned and warm before /readyz says ready, so the
first run costs what later ones do."""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import Executor

import pytest

from service.executor import DETECTION_MODULES, detection_executor, warm_up
from service.state import PoolWarmup
from service.tasks import warming_detection_pool
from tests.fixtures_app import Harness


def loaded_modules() -> tuple[int, list[str]]:
    """Runs in a worker: its pid and which detection modules it has imported."""
    return os.getpid(), [module for module in DETECTION_MODULES if module in sys.modules]


async def test_every_worker_of_the_pool_has_the_detection_modules_after_warm_up() -> None:
    with detection_executor(2, pin=False) as executor:
        warm = await warm_up(executor, 2)
        assert len({worker.pid for worker in warm}) == 2, warm
        assert all(worker.modules_loaded for worker in warm), warm
        assert os.getpid() not in {worker.pid for worker in warm}
        loop = asyncio.get_running_loop()
        seen = await asyncio.gather(
            *(loop.run_in_executor(executor, loaded_modules) for _ in range(4))
        )
    assert {pid for pid, _ in seen} <= {worker.pid for worker in warm}, "no worker spawned late"
    assert all(modules == list(DETECTION_MODULES) for _, modules in seen), seen


class Stalled(Executor):
    """A pool whose tasks never start: the warm-up can only end by its timeout."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        from concurrent.futures import Future

        return Future()


async def test_readiness_waits_for_the_warm_up(harness: Harness) -> None:
    services = harness.services
    async with warming_detection_pool(services, Stalled(), 1, timeout_seconds=30) as warmup:
        warming = await harness.client.get("/readyz")
        assert warming.status_code == 503
        assert warming.json()["detection_pool"] == "warming"
        assert not warmup.finished
    services.pool_warmup = PoolWarmup(outcome="warm")
    services.pool_warmup.done.set()
    ready = await harness.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "redis": "ok"})


async def test_a_warm_up_past_its_timeout_lets_the_replica_be_ready(harness: Harness) -> None:
    async with warming_detection_pool(harness.services, Stalled(), 1, 0.05) as warmup:
        await warmup.done.wait()  # the timeout ends it: no wall-clock assertion here
        assert warmup.outcome == "timed out"
        assert (await harness.client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("workers", [0, 1])
async def test_the_warm_up_ends_warm_with_a_real_pool(harness: Harness, workers: int) -> None:
    with detection_executor(workers, pin=False) as executor:
        async with warming_detection_pool(harness.services, executor, workers, 300) as warmup:
            await warmup.done.wait()
    assert warmup.outcome == "warm"
