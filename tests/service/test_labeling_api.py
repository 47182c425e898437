"""The labeling API through the running app on the test Redis: a drifted run queues
tasks; claims come by priority with leases (two apps never hand a K=1 task out twice);
two answers decide, a tie goes to an adjudicator, and the final label is ground truth
for the next run; the stats and the labelers' audit; the Label Studio and Parquet
exports and the Label Studio import."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pyarrow.parquet as pq
import pytest

from core.clock import ManualClock
from labeling.dataset import content_hash
from service.config import Settings
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)
from tests.service.alert_fixtures import WINDOW_EVENTS, drifted_events

MODEL = "credit"


def labeling_settings(redis_url: str, key_prefix: str, **labeling: object) -> Settings:
    """K answers a task whatever its reasons (K=1 unless told), a run of 500 events."""
    config: dict[str, object] = {"annotations_required": 1, "annotations_by_reason": {}}
    config.update(labeling)
    return harness_settings(
        redis_url,
        key_prefix,
        labeling=config,
        window_max_events=WINDOW_EVENTS,
        multivariate_enabled=False,  # most of a run's time, and nothing here reads it
    )


@asynccontextmanager
async def running(settings: Settings, clock: ManualClock | None = None) -> AsyncIterator[Harness]:
    """start_harness as a context manager: two apps at once, stopped in order."""
    # an async generator: closed at once on a failure, not whenever it is collected
    harnesses = cast(AsyncGenerator[Harness, None], start_harness(settings, clock))
    harness = await anext(harnesses)
    try:
        yield harness
    except BaseException:
        await harnesses.aclose()
        raise
    await anext(harnesses, None)


async def run_now(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(f"/v1/models/{MODEL}/runs")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "ok", run.get("error")
    return run


async def drifted_run(harness: Harness) -> dict[str, Any]:
    """A reference, a drifted window and its run: the run queues flagged samples."""
    await upload_credit_reference(harness.client)
    posted = await harness.client.post(f"/v1/models/{MODEL}/events", json=drifted_events(50))
    assert posted.status_code == 202, posted.text
    run = await run_now(harness.client)
    assert run["dataset_drift"] is True
    stats = await get_json(harness.client, f"/v1/labeling/{MODEL}/stats")
    assert stats["open"] >= 20, stats
    return run


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def claim(
    client: httpx.AsyncClient, annotator: str, limit: int = 10, **params: Any
) -> list[dict[str, Any]]:
    answer = await get_json(
        client, f"/v1/labeling/{MODEL}/tasks", annotator=annotator, limit=limit, **params
    )
    tasks: list[dict[str, Any]] = answer["tasks"]
    return tasks


async def annotate(client: httpx.AsyncClient, task_id: str, body: Any) -> httpx.Response:
    path = f"/v1/labeling/tasks/{task_id}/annotations"
    if isinstance(body, bytes):
        return await client.post(path, content=body, headers={"content-type": "application/json"})
    return await client.post(path, json=body)


async def answered(
    client: httpx.AsyncClient, task_id: str, annotator: str, label: object, **extra: object
) -> dict[str, Any]:
    response = await annotate(client, task_id, {"annotator": annotator, "label": label, **extra})
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    detail: dict[str, Any] = response.json()["detail"]
    return detail


async def test_claims_come_by_priority_without_the_answer_and_leases_expire(
    redis_url: str, key_prefix: str
) -> None:
    settings = labeling_settings(redis_url, key_prefix, lease_seconds=120)
    async with running(settings) as harness:
        client = harness.client
        await drifted_run(harness)
        queue = harness.services.stores.label_queue
        top = await queue.tasks(MODEL, "open", 5)
        claimed = await claim(client, "alice", 5)
        assert [task["id"] for task in claimed] == [task.id for task in top]
        priorities = [task["priority"] for task in claimed]
        assert priorities == sorted(priorities, reverse=True)
        for task in claimed:
            assert not {"label", "gold_label", "final_label", "agreement"} & set(task)
            assert task["annotations"] == []
            assert task["reasons"]
            assert set(task["features"]) == {"age", "income", "region"}

        # K=1: alice holds her five, bob gets the next ones
        (bobs,) = await claim(client, "bob", 1)
        assert bobs["id"] not in {task["id"] for task in claimed}
        assert bobs["priority"] <= priorities[-1]
        # the leases run out: alice's first task is the first again, for carol
        harness.clock.advance(121)
        (carols,) = await claim(client, "carol", 1)
        assert carols["id"] == claimed[0]["id"]

        for params in ({"limit": 0}, {"limit": 101}, {"annotator": ""}, {"annotator": "a\x01"}):
            query: dict[str, Any] = {"annotator": "dave", "limit": 1, **params}
            response = await client.get(f"/v1/labeling/{MODEL}/tasks", params=query)
            assert response.status_code == 422, (params, response.text)
        missing = await client.get(f"/v1/labeling/{MODEL}/tasks", params={"limit": 1})
        assert missing.status_code == 422
        unknown = await client.get("/v1/labeling/nobody/tasks", params={"annotator": "dave"})
        assert "PUT /v1/models/nobody/reference" in error(unknown, 404)["hint"]


async def test_two_answers_decide_a_tie_is_adjudicated_and_labels_become_ground_truth(
    redis_url: str, key_prefix: str
) -> None:
    settings = labeling_settings(redis_url, key_prefix, annotations_required=2)
    async with running(settings) as harness:
        client = harness.client
        first = await drifted_run(harness)
        assert first["performance"]["labeled_events"] == 0

        alices = await claim(client, "alice", 4)
        bobs = await claim(client, "bob", 4)
        assert [t["id"] for t in bobs] == [t["id"] for t in alices]  # K=2: both get them
        assert all(t["required"] == 2 for t in alices)
        carols = await claim(client, "carol", 4)  # both slots of those four are held
        assert not {t["id"] for t in carols} & {t["id"] for t in alices}
        ids = [task["id"] for task in alices]
        events = [task["event_id"] for task in alices]

        votes = [(1, 1), (1, 0), (0, "0"), ("1", 1)]
        for task_id, (alice, bob) in zip(ids, votes, strict=True):
            assert (await answered(client, task_id, "alice", alice))["state"] == "open"
            await answered(client, task_id, "bob", bob)

        # the tie waits for an adjudicator
        tied = error(await annotate(client, ids[1], {"annotator": "carol", "label": 0}), 409)
        assert "adjudicator" in tied["hint"]
        assert await claim(client, "dave", 10, adjudicator=False) != []  # other open tasks
        (adjudication,) = await claim(client, "dave", 10, adjudicator=True)
        assert adjudication["id"] == ids[1]
        assert sorted(a["label"] for a in adjudication["annotations"]) == ["0", "1"]
        settled = await answered(client, ids[1], "dave", 0, adjudicator=True, comment="checked")
        assert (settled["state"], settled["final_label"]) == ("done", "0")
        assert settled["agreement"] == pytest.approx(2 / 3)

        again = error(await annotate(client, ids[0], {"annotator": "alice", "label": 1}), 409)
        assert "done" in again["error"]
        (fresh,) = await claim(client, "erin", 1)
        twice = {"annotator": "erin", "label": 1}
        assert (await annotate(client, fresh["id"], twice)).status_code == 201  # 1 of K=2
        assert "once" in error(await annotate(client, fresh["id"], twice), 409)["hint"]

        # bodies are checked, field by field
        for body, field in [
            ({"label": 1}, "annotator"),
            ({"annotator": "", "label": 1}, "annotator"),
            ({"annotator": "x" * 129, "label": 1}, "annotator"),
            ({"annotator": "erin"}, "label"),
            ({"annotator": "erin", "label": [1]}, "label"),
            ({"annotator": "erin", "label": 1, "colour": "red"}, "colour"),
            ({"annotator": "erin", "label": 1, "comment": "x" * 2001}, "comment"),
        ]:
            assert error(await annotate(client, ids[3], body), 422)["field"] == field, body
        assert error(await annotate(client, ids[3], b'{"annotator": '), 400)["field"] == "body"
        unknown = await annotate(client, f"{MODEL}~{'0' * 32}", twice)
        assert error(unknown, 404)["error"].startswith("no task")
        assert (await annotate(client, "not-a-task", twice)).status_code == 404

        # the final labels are the events' ground truth: the next run sees them
        store = harness.services.stores.labels
        assert await store.labels_for(MODEL, events) == ["1", "0", "0", "1"]
        second = await run_now(client)
        performance = second["performance"]
        assert performance["labeled_events"] == 4
        assert performance["labels_from_queue"] == 4

        stats = await get_json(client, f"/v1/labeling/{MODEL}/stats")
        assert stats["done"] == 4
        assert stats["adjudication"] == 0
        assert stats["kappa_method"] == "cohen"
        assert stats["kappa"] == pytest.approx(0.5)
        assert stats["disagreement_rate"] == pytest.approx(0.25)

        for since, annotated in ((0, 5), (harness.clock.now() + 1, 0)):
            found = await get_json(client, f"/v1/labeling/{MODEL}/stats", since=since)
            assert found["annotated_tasks"] == annotated
        for unusable in ("nan", "inf", -1):
            bad = await client.get(f"/v1/labeling/{MODEL}/stats", params={"since": unusable})
            assert bad.status_code == 422, unusable
        samples = await scrape_samples(client)
        metric = "driftmon_labeling_annotations_total"
        assert sample_value(samples, metric, model=MODEL, outcome="labeled") == 4 + 4 + 1 + 1
        assert sample_value(samples, metric, model=MODEL, outcome="skipped") == 0

        audit = await get_json(client, f"/v1/labeling/{MODEL}/annotators")
        by_name = {a["annotator"]: a for a in audit["annotators"]}
        assert set(by_name) == {"alice", "bob", "erin"}  # dave adjudicated: no audit
        alice, bob = by_name["alice"], by_name["bob"]
        assert (alice["compared"], alice["agreed"], alice["agreement"]) == (4, 3, 0.75)
        assert (bob["compared"], bob["agreed"], bob["agreement"]) == (4, 4, 1.0)
        assert alice["kappa"] == pytest.approx(0.5)
        assert bob["kappa"] == pytest.approx(1.0)
        (week,) = alice["weeks"]
        year, number, _ = datetime.fromtimestamp(harness.clock.now(), UTC).isocalendar()
        assert week["week"] == f"{year}-W{number:02d}"
        assert (week["answers"], week["agreement"]) == (4, 0.75)
        assert audit["kappa_method"] == "cohen"


async def test_two_apps_never_hand_a_task_to_more_annotators_than_it_needs(
    redis_url: str, key_prefix: str
) -> None:
    settings = labeling_settings(redis_url, key_prefix)  # K=1
    async with running(settings) as first, running(settings) as second:
        await drifted_run(first)
        open_tasks = (await get_json(second.client, f"/v1/labeling/{MODEL}/stats"))["open"]
        clients = [first.client, second.client]
        claims = await asyncio.gather(
            *(claim(clients[i % 2], f"annotator{i}", 7) for i in range(12))
        )
        handed = [task["id"] for tasks in claims for task in tasks]
        assert len(handed) == len(set(handed)), "a K=1 task went to two annotators"
        assert len(handed) == min(open_tasks, 12 * 7)
        stats = await get_json(first.client, f"/v1/labeling/{MODEL}/stats")
        assert stats["claimed"] == len(handed)


def labelstudio_answer(email: str, label: str | None) -> dict[str, Any]:
    """An annotation as Label Studio's JSON export has it; None: cancelled (a skip)."""
    result = [
        {
            "id": "r1",
            "from_name": "label",
            "to_name": "features",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
    return {
        "id": 1,
        "completed_by": {"id": 3, "email": email},
        "was_cancelled": label is None,
        "created_at": "2027-03-01T09:30:00.000000Z",
        "updated_at": "2027-03-01T09:31:00.000000Z",
        "result": [] if label is None else result,
    }


async def test_label_studio_round_trip_and_the_parquet_dataset(
    redis_url: str, key_prefix: str
) -> None:
    settings = labeling_settings(redis_url, key_prefix)  # K=1
    async with running(settings) as harness:
        client = harness.client
        await drifted_run(harness)
        open_tasks = (await get_json(client, f"/v1/labeling/{MODEL}/stats"))["open"]
        exported = await get_json(client, f"/v1/labeling/{MODEL}/export", format="labelstudio")
        assert exported["label_config"].startswith("<View>")
        assert 'value="1"' in exported["label_config"]
        tasks = exported["tasks"]
        assert len(tasks) == open_tasks
        assert all(set(task) == {"data", "predictions", "meta"} for task in tasks)
        # no production errors without ground truth
        errors = await get_json(
            client, f"/v1/labeling/{MODEL}/export", format="labelstudio", errors_only="true"
        )
        assert errors["tasks"] == []

        # people label three tasks in Label Studio: one as the model did, one not, one skip
        chosen = tasks[:3]
        predictions = [t["predictions"][0]["result"][0]["value"]["choices"][0] for t in chosen]
        other = "0" if predictions[1] == "1" else "1"
        answers = [
            labelstudio_answer("ann@example.com", predictions[0]),
            labelstudio_answer("ann@example.com", other),
            labelstudio_answer("ann@example.com", None),
        ]
        export = [
            {"id": i + 1, "data": task["data"], "annotations": [answer]}
            for i, (task, answer) in enumerate(zip(chosen, answers, strict=True))
        ]
        assert all(set(t["data"]["features"]) == {"age", "income", "region"} for t in chosen)
        response = await client.post(f"/v1/labeling/{MODEL}/import", json=export)
        assert response.status_code == 200, response.text
        imported = response.json()
        assert (imported["received"], imported["imported"]) == (3, 3)
        assert [r["state"] for r in imported["results"]] == ["done", "done", "open"]
        replay = (await client.post(f"/v1/labeling/{MODEL}/import", json=export)).json()
        assert [r["outcome"] for r in replay["results"]] == ["done", "done", "duplicate"]
        stats = await get_json(client, f"/v1/labeling/{MODEL}/stats")
        assert (stats["done"], stats["open"]) == (2, open_tasks - 2)
        broken = await client.post(f"/v1/labeling/{MODEL}/import", json=[{"data": {}}])
        assert "driftmon_task_id" in error(broken, 422)["field"]
        assert (
            error(await client.post(f"/v1/labeling/{MODEL}/import", content=b"[{"), 400)["field"]
            == "body"
        )
        unknown = await client.post("/v1/labeling/nobody/import", json=export)
        assert unknown.status_code == 404

        # the done tasks as a dataset: Parquet, its manifest, and the errors alone
        parquet = await client.get(f"/v1/labeling/{MODEL}/export", params={"format": "parquet"})
        assert parquet.status_code == 200, parquet.text
        assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(parquet.content))
        assert table.num_rows == 2
        assert sorted(table.column("__label").to_pylist()) == sorted([predictions[0], other])
        manifest = await get_json(client, f"/v1/labeling/{MODEL}/export", format="manifest")
        assert manifest["rows"] == 2
        assert manifest["errors"] == 1
        assert manifest["content_hash"] == parquet.headers["x-dataset-content-hash"]
        assert content_hash(parquet.content) == manifest["content_hash"]
        errors_only = await client.get(
            f"/v1/labeling/{MODEL}/export", params={"format": "parquet", "errors_only": "true"}
        )
        assert pq.read_table(io.BytesIO(errors_only.content)).num_rows == 1
        assert errors_only.headers["x-dataset-content-hash"] != manifest["content_hash"]
        unknown_export = await client.get("/v1/labeling/nobody/export")
        assert unknown_export.status_code == 404
