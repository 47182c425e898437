"""GET /v1/models/{model}/runs/{run_id}/plot.png: the drift history up to a run, as the
plotting module draws it, under the report's scope; clear 404s and bounded `last`."""

from __future__ import annotations

import io

from PIL import Image

from core.results import RunResult
from service.plots import drift_history_png
from service.routes_runs import plot_title, runs_up_to
from tests.data import credit_events
from tests.fixtures_app import (
    Harness,
    api_key,
    bearer,
    keyed_client,
    keyed_settings,
    start_harness,
    upload_credit_reference,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stub_run(run_id: str) -> RunResult:
    return RunResult(run_id=run_id, model="m", status="ok", started_at="2026-01-01T00:00:00Z")


def test_runs_up_to_a_run_are_the_last_n_oldest_first() -> None:
    newest_first = [stub_run(f"r{i}") for i in (5, 4, 3, 2, 1)]
    assert [run.run_id for run in runs_up_to(newest_first, "r3", 2)] == ["r2", "r3"]
    assert [run.run_id for run in runs_up_to(newest_first, "r2", 30)] == ["r1", "r2"]
    assert [run.run_id for run in runs_up_to(newest_first, "r5", 1)] == ["r5"]
    assert runs_up_to(newest_first, "r9", 30) == []


async def three_runs(harness: Harness) -> list[RunResult]:
    """Three runs a minute apart, oldest first, the later two after an age shift."""
    await upload_credit_reference(harness.client)
    runs = []
    for seed, shift in ((31, 0.0), (32, 15.0), (33, 15.0)):
        harness.clock.advance(60)  # runs are ordered by their start
        events = credit_events(150, seed=seed, age_shift=shift)
        assert (await harness.client.post("/v1/models/credit/events", json=events)).is_success
        answer = await harness.client.post("/v1/models/credit/runs")
        runs.append(RunResult.model_validate(answer.json()))
    return runs


async def test_the_plot_draws_the_runs_up_to_the_one_asked(harness: Harness) -> None:
    first, second, third = await three_runs(harness)
    response = await harness.client.get(
        f"/v1/models/credit/runs/{second.run_id}/plot.png", params={"last": 2}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    width, height = Image.open(io.BytesIO(response.content)).size
    assert width > 300
    assert height > 200
    # the same picture as the plotting module draws of those two runs, and no other
    runs = [first, second]
    assert response.content == drift_history_png(runs, title=plot_title("credit", runs))
    everything = [first, second, third]
    assert response.content != drift_history_png(everything, title=plot_title("credit", runs))
    default = await harness.client.get(f"/v1/models/credit/runs/{third.run_id}/plot.png")
    assert default.content == drift_history_png(everything, title=plot_title("credit", everything))


async def test_unknown_model_run_and_bad_last_are_clear_errors(harness: Harness) -> None:
    (run,) = (await three_runs(harness))[:1]
    ghost = await harness.client.get(f"/v1/models/ghost/runs/{run.run_id}/plot.png")
    assert ghost.status_code == 404
    assert "ghost" in ghost.json()["detail"]["error"]
    missing = await harness.client.get("/v1/models/credit/runs/1-nope/plot.png")
    assert missing.status_code == 404
    assert missing.json()["detail"]["error"] == "run '1-nope' of 'credit' not found"
    for last in (0, 201, "many"):
        bad = await harness.client.get(
            f"/v1/models/credit/runs/{run.run_id}/plot.png", params={"last": last}
        )
        assert bad.status_code == 422, last
        assert bad.json()["detail"][0]["loc"] == ["query", "last"]


async def test_the_plot_needs_the_reports_read_scope(redis_url: str, key_prefix: str) -> None:
    keys = {"admin": ["admin"], "ingest": ["ingest"], "read": ["read"]}
    async for harness in start_harness(keyed_settings(redis_url, key_prefix, keys)):
        async with keyed_client(harness, bearer(api_key("admin"))) as admin:
            await upload_credit_reference(admin)
            async with keyed_client(harness, bearer(api_key("ingest"))) as ingest:
                events = credit_events(120, seed=34)
                assert (await ingest.post("/v1/models/credit/events", json=events)).is_success
            run_id = (await admin.post("/v1/models/credit/runs")).json()["run_id"]
        path = f"/v1/models/credit/runs/{run_id}/plot.png"
        for key, status in ((None, 401), ("ingest", 403), ("read", 200)):
            async with keyed_client(harness, bearer(api_key(key)) if key else {}) as client:
                response = await client.get(path)
            assert response.status_code == status, (key, response.text)
        assert response.content.startswith(PNG_SIGNATURE)
