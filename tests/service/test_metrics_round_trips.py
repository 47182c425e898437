"""/metrics reads the latest runs in a bounded number of Redis round trips whatever the
number of models (service/metrics_latest.py), and its cache of decoded runs still
serves a run stored after the last scrape. Round trips are counted at the client: one
per command sent alone, one per pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio.connection import Connection

from core.results import ColumnResult, RunResult, WindowInfo
from service.labeling_agreements import LabelingAgreements
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)

COLUMNS = 25


class RoundTrips:
    """Counts what the app's Redis connections send: a command or a whole pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        send = Connection.send_packed_command

        async def counting(connection: Connection, *args: object, **kwargs: object) -> None:
            self.count += 1
            await send(connection, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Connection, "send_packed_command", counting)

    async def of_scrape(self, harness: Harness) -> int:
        before = self.count
        response = await harness.client.get("/metrics")
        assert response.status_code == 200, response.text
        return self.count - before


def run_of(model: str, serial: int, events: int) -> RunResult:
    columns = {
        f"num_{i:02d}": ColumnResult(kind="num", method="wasserstein", score=0.01 * i)
        for i in range(COLUMNS)
    }
    return RunResult(
        run_id=f"{model}-run-{serial}",
        model=model,
        status="ok",
        started_at=datetime.now(UTC).isoformat(),
        window=WindowInfo(events=events),
        columns=columns,
    )


@pytest.fixture
async def fleet(redis_url: str, key_prefix: str) -> AsyncIterator[Harness]:
    async for harness in start_harness(harness_settings(redis_url, key_prefix)):
        yield harness


async def seed(harness: Harness, models: range) -> None:
    for index in models:
        model = f"m{index:03d}"
        await upload_credit_reference(harness.client, model)
        await harness.services.stores.runs.save(run_of(model, 0, 1000 + index))


async def warm_scrape_trips(harness: Harness, trips: RoundTrips) -> int:
    await trips.of_scrape(harness)  # the first scrape reads and decodes everything
    return await trips.of_scrape(harness)


async def test_scrape_round_trips_do_not_grow_with_the_models(
    fleet: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = RoundTrips(monkeypatch)
    await seed(fleet, range(5))
    few = await warm_scrape_trips(fleet, trips)
    fleet.services.metrics.attach_labeling_sources(None)
    few_without_labeling = await warm_scrape_trips(fleet, trips)

    await seed(fleet, range(5, 50))
    without_labeling = await warm_scrape_trips(fleet, trips)
    assert without_labeling == few_without_labeling
    # the label queue's counts are still one pipeline per model (LabelQueue.stats)
    stores = fleet.services.stores
    agreements = LabelingAgreements(stores.label_queue, stores.registry)
    fleet.services.metrics.attach_labeling_sources(agreements)
    many = await warm_scrape_trips(fleet, trips)
    assert many - few <= 50 - 5


async def test_a_run_stored_after_a_scrape_is_exported_by_the_next(fleet: Harness) -> None:
    await seed(fleet, range(3))
    first = await scrape_samples(fleet.client)
    assert sample_value(first, "driftmon_window_events", model="m001") == 1001.0

    await fleet.services.stores.runs.save(run_of("m001", 1, 4321))
    second = await scrape_samples(fleet.client)
    assert sample_value(second, "driftmon_window_events", model="m001") == 4321.0
    assert sample_value(second, "driftmon_window_events", model="m002") == 1002.0
