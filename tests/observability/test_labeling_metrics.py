"""The labeling gauges read at scrape time: the label queue's tasks by state and each
annotator's agreement with the consensus over the last 7 days, capped per model; from a
constructed source, and from the app's own label queue after annotations through the API;
`promtool check metrics` on a scrape with both families populated."""

from __future__ import annotations

import asyncio
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from alerts.rules_labeling import AnnotatorAgreement
from service.metrics import Metrics
from service.metrics_labeling import AGREEMENT_WINDOW_SECONDS
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)
from tests.observability.scrape import promtool
from tests.service.alert_fixtures import WINDOW_EVENTS, drifted_events

AGREEMENT = "driftmon_labeling_annotator_agreement"
QUEUE = "driftmon_labeling_queue_tasks"
NOW = 1_800_000_000.0
# quotes, a backslash and non-ASCII: the API lets them through, the exposition escapes them
ODD_NAME = 'Zoë "Z" O\\Neil'


@dataclass(frozen=True)
class Counts:
    open: int = 0
    claimed: int = 0
    adjudication: int = 0
    done: int = 0


class FakeSource:
    def __init__(self) -> None:
        self.queues: dict[str, Counts] = {}
        self.found: dict[str, list[AnnotatorAgreement]] = {}
        self.since: list[float] = []

    async def queue_stats(self, model: str) -> Counts:
        return self.queues.get(model, Counts())

    async def agreements(self, model: str, since: float) -> Sequence[AnnotatorAgreement]:
        self.since.append(since)
        return self.found.get(model, [])


def samples_of(metrics: Metrics) -> list[Sample]:
    families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
    return [sample for family in families for sample in family.samples]


def series(samples: list[Sample], name: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["model"], s.labels.get("annotator") or s.labels["state"]): s.value
        for s in samples
        if s.name == name
    }


async def test_the_gauges_are_read_from_the_source_and_capped_per_model() -> None:
    metrics = Metrics(CollectorRegistry(), "test", max_columns=2)
    assert series(samples_of(metrics), AGREEMENT) == {}
    source = FakeSource()
    source.queues = {"credit": Counts(open=7, claimed=2, adjudication=1, done=12)}
    source.found = {
        "credit": [
            AnnotatorAgreement("alice", 20, 19),
            AnnotatorAgreement("bob", 10, 6),
            AnnotatorAgreement("carol", 4, 3),
            AnnotatorAgreement("dave", 0, 0),  # nothing compared: no series
        ],
        "fraud": [AnnotatorAgreement(ODD_NAME, 8, 8)],
    }
    metrics.attach_labeling_sources(source)
    await metrics.refresh_labeling(NOW, ["credit", "fraud", "churn"])
    assert source.since == [NOW - AGREEMENT_WINDOW_SECONDS] * 3
    samples = samples_of(metrics)
    # lowest agreement first within the cap of 2 per model
    assert series(samples, AGREEMENT) == {
        ("credit", "bob"): 0.6,
        ("credit", "carol"): 0.75,
        ("fraud", ODD_NAME): 1.0,
    }
    # models without a task have no queue series
    assert series(samples, QUEUE) == {
        ("credit", "open"): 7.0,
        ("credit", "claimed"): 2.0,
        ("credit", "adjudication"): 1.0,
        ("credit", "done"): 12.0,
    }
    # a model left out of the refresh (deleted) loses its series
    await metrics.refresh_labeling(NOW, ["fraud"])
    samples = samples_of(metrics)
    assert series(samples, AGREEMENT) == {("fraud", ODD_NAME): 1.0}
    assert series(samples, QUEUE) == {}


async def annotated(harness: Harness) -> None:
    """A drifted run queues tasks; three annotators answer 3 of them (K=3), bob against
    the other two, and an odd-named one labels with the majority."""
    client = harness.client
    await upload_credit_reference(client)
    posted = await client.post("/v1/models/credit/events", json=drifted_events(50))
    assert posted.status_code == 202, posted.text
    assert (await client.post("/v1/models/credit/runs")).json()["status"] == "ok"
    tasks = await harness.services.stores.label_queue.tasks("credit", "open", 3)
    for task in tasks:
        for annotator, label in (("alice", "1"), (ODD_NAME, "1"), ("bob", "0")):
            body = {"annotator": annotator, "label": label}
            answer = await client.post(f"/v1/labeling/tasks/{task.id}/annotations", json=body)
            assert answer.status_code == 201, answer.text


async def test_a_scrape_of_the_app_has_both_families_and_promtool_accepts_it(
    redis_url: str, key_prefix: str
) -> None:
    path = promtool()
    settings = harness_settings(
        redis_url,
        key_prefix,
        labeling={"annotations_required": 3, "annotations_by_reason": {}},
        window_max_events=WINDOW_EVENTS,
        multivariate_enabled=False,
    )
    async for harness in start_harness(settings):
        fresh = (await harness.client.get("/metrics")).text
        for family in (AGREEMENT, QUEUE):
            assert f"# TYPE {family} gauge" in fresh
        await annotated(harness)
        stats = (await harness.client.get("/v1/labeling/credit/stats")).json()
        samples = await scrape_samples(harness.client)
        assert series(samples, AGREEMENT) == {
            ("credit", "alice"): 1.0,
            ("credit", ODD_NAME): 1.0,
            ("credit", "bob"): 0.0,
        }
        for state in ("open", "adjudication", "done"):
            assert sample_value(samples, QUEUE, model="credit", state=state) == stats[state]
        assert stats["done"] == 3
        # a week later, the agreement is out of its window; the queue is not
        harness.clock.advance(AGREEMENT_WINDOW_SECONDS + 1)
        later = await scrape_samples(harness.client)
        assert series(later, AGREEMENT) == {}
        assert sample_value(later, QUEUE, model="credit", state="done") == 3.0

        harness.clock.advance(-AGREEMENT_WINDOW_SECONDS - 1)
        scrape = (await harness.client.get("/metrics")).text
        for family in (AGREEMENT, QUEUE):
            assert f"\n{family}{{" in scrape, family
        checker = await asyncio.create_subprocess_exec(
            path, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await checker.communicate(scrape.encode())
        assert checker.returncode == 0, output.decode()
