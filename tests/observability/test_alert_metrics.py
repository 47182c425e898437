"""Counters that exist at 0 before their first increment, the delivery counters, and the
alert and outbox gauges read at scrape time; `promtool check metrics` on a scrape that
has every new family populated."""

from __future__ import annotations

import asyncio
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from core.results import RunResult
from service.metrics import Metrics
from service.metrics_counters import (
    CLOUDEVENT_OUTCOMES,
    DELIVERY_OUTCOMES,
    EVENT_OUTCOMES,
    REJECT_REASONS,
    RUN_STATUSES,
    RUN_TRIGGERS,
    STREAM_OUTCOMES,
)
from service.metrics_gauges import LatestRunsCollector, ModelSnapshot
from tests.data import credit_events
from tests.fixtures_app import (
    Harness,
    harness_settings,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)
from tests.observability.scrape import promtool

NOTIFICATIONS = "driftmon_alert_notifications_total"
ALERTS = "driftmon_alerts"


@dataclass(frozen=True)
class Alert:
    model: str
    rule: str
    column: str | None
    state: str


class FakeAlertStore:
    """Returns every alert whatever `states` asks: the gauge must filter them itself."""

    def __init__(self, alerts: Sequence[Alert]) -> None:
        self.alerts = list(alerts)

    async def list(
        self, model: str | None = None, states: Collection[str] | None = None
    ) -> list[Alert]:
        return [alert for alert in self.alerts if model is None or alert.model == model]


class FakeOutbox:
    def __init__(self, depth: int, oldest: float | None) -> None:
        self._depth = depth
        self._oldest = oldest

    async def depth(self) -> int:
        return self._depth

    async def oldest_created_at(self) -> float | None:
        return self._oldest


def series(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in samples
        if sample.name == name
    }


def registry_samples(metrics: Metrics) -> list[Sample]:
    """The samples of the metrics as they stand, without the /metrics route's refresh
    from the attached sources."""
    families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
    return [sample for family in families for sample in family.samples]


def alert_series(samples: list[Sample]) -> set[tuple[str, str, str, str]]:
    return {
        (s.labels["model"], s.labels["rule"], s.labels["column"], s.labels["state"])
        for s in samples
        if s.name == ALERTS and s.value == 1.0
    }


async def test_a_fresh_app_exports_counters_at_zero_before_their_first_increment(
    harness: Harness,
) -> None:
    metrics = harness.services.metrics
    fresh = await scrape_samples(harness.client)
    for half, outcomes in CLOUDEVENT_OUTCOMES.items():
        for outcome in outcomes:
            labels = {"half": half, "outcome": outcome}
            assert sample_value(fresh, "driftmon_cloudevents_total", **labels) == 0.0
    assert sample_value(fresh, "driftmon_run_sink_failures_total", sink="metrics") == 0.0
    assert sample_value(fresh, "driftmon_alert_outbox_depth") == 0.0
    assert sample_value(fresh, "driftmon_alert_outbox_oldest_age_seconds") == 0.0
    assert not [sample for sample in fresh if sample.name.endswith("_created")]

    # first use of a model and source: every outcome and reason appears, at 0 if unused
    await upload_credit_reference(harness.client)
    accepted = await harness.client.post("/v1/models/credit/events", json=credit_events(5, seed=1))
    assert accepted.status_code == 202, accepted.text
    metrics.count_stream("preds", "read", 3)
    metrics.declare_channels(["ops"])
    metrics.declare_sinks(["alerts"])
    samples = await scrape_samples(harness.client)
    key = {"model": "credit", "source": "http"}
    for outcome in EVENT_OUTCOMES:
        expected = 5.0 if outcome == "accepted" else 0.0
        assert sample_value(samples, "driftmon_events_total", **key, outcome=outcome) == expected
    for reason in REJECT_REASONS:
        value = sample_value(
            samples, "driftmon_events_rejected_by_reason_total", **key, reason=reason
        )
        assert value == 0.0
    for outcome in STREAM_OUTCOMES:
        expected = 3.0 if outcome == "read" else 0.0
        value = sample_value(
            samples, "driftmon_stream_entries_total", stream="preds", outcome=outcome
        )
        assert value == expected
    for outcome in DELIVERY_OUTCOMES:
        assert sample_value(samples, NOTIFICATIONS, channel="ops", outcome=outcome) == 0.0
    assert sample_value(samples, "driftmon_alert_delivery_seconds_count", channel="ops") == 0.0
    assert sample_value(samples, "driftmon_run_sink_failures_total", sink="alerts") == 0.0

    await harness.client.post("/v1/models/credit/runs")
    runs = series(await scrape_samples(harness.client), "driftmon_detection_runs_total")
    assert len(runs) == len(RUN_STATUSES) * len(RUN_TRIGGERS)
    assert sorted(runs.values()) == [0.0] * (len(runs) - 1) + [1.0]


async def test_forget_model_drops_the_zeroed_series_and_they_come_back_at_zero(
    harness: Harness,
) -> None:
    metrics = harness.services.metrics
    metrics.count_events("credit", "http", "accepted", 2)
    metrics.count_events("fraud", "http", "accepted", 1)
    metrics.forget_model("credit")
    samples = await scrape_samples(harness.client)
    models = {s.labels.get("model") for s in samples if s.name == "driftmon_events_total"}
    assert models == {"fraud"}
    metrics.count_events("credit", "http", "duplicate", 1)
    samples = await scrape_samples(harness.client)
    key = {"model": "credit", "source": "http"}
    assert sample_value(samples, "driftmon_events_total", **key, outcome="accepted") == 0.0
    assert sample_value(samples, "driftmon_events_total", **key, outcome="duplicate") == 1.0
    reasons = {
        s.labels["reason"]
        for s in samples
        if s.name == "driftmon_events_rejected_by_reason_total" and s.labels["model"] == "credit"
    }
    assert reasons == set(REJECT_REASONS)


def test_delivery_counters_and_histogram() -> None:
    metrics = Metrics(CollectorRegistry(), "test")
    metrics.count_delivery("ops", "retried")
    metrics.count_delivery("ops", "delivered")
    metrics.observe_delivery_seconds("ops", 0.2)
    registry = metrics.registry
    for outcome in DELIVERY_OUTCOMES:
        expected = 1.0 if outcome in {"retried", "delivered"} else 0.0
        labels = {"channel": "ops", "outcome": outcome}
        assert registry.get_sample_value(NOTIFICATIONS, labels) == expected
    assert registry.get_sample_value("driftmon_alert_delivery_seconds_count", {"channel": "ops"})
    bucket = {"channel": "ops", "le": "0.25"}
    assert registry.get_sample_value("driftmon_alert_delivery_seconds_bucket", bucket) == 1.0


async def test_alert_and_outbox_gauges_are_read_from_their_sources(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(redis_url, key_prefix, metrics_max_columns=2)
    async for harness in start_harness(settings):
        metrics = harness.services.metrics
        now = harness.clock.now()
        store = FakeAlertStore(
            [
                Alert("credit", "drift", None, "firing"),
                Alert("credit", "age_drift", "age", "pending"),
                Alert("credit", "columns", "income", "firing"),
                Alert("credit", "columns", "region", "inactive"),
                Alert("fraud", "quality", "amount", "resolved"),
                Alert("fraud", "drift", None, "pending"),
            ]
        )
        metrics.attach_alert_sources(FakeOutbox(3, now - 120.0), store)
        await metrics.refresh_alerts(now)
        samples = await scrape_samples(harness.client)
        assert sample_value(samples, "driftmon_alert_outbox_depth") == 3.0
        assert sample_value(samples, "driftmon_alert_outbox_oldest_age_seconds") == 120.0
        # capped at 2 per model, firing first; inactive and resolved alerts have no series
        assert alert_series(samples) == {
            ("credit", "drift", "", "firing"),
            ("credit", "columns", "income", "firing"),
            ("fraud", "drift", "", "pending"),
        }
        store.alerts = [Alert("credit", "drift", None, "resolved")]
        metrics.attach_alert_sources(FakeOutbox(0, None), store)
        await metrics.refresh_alerts(now)
        samples = await scrape_samples(harness.client)
        assert alert_series(samples) == set()
        assert sample_value(samples, "driftmon_alert_outbox_depth") == 0.0
        assert sample_value(samples, "driftmon_alert_outbox_oldest_age_seconds") == 0.0


async def test_set_alert_states_replaces_the_series_of_one_model(harness: Harness) -> None:
    """What the alert sink pushes after a run, before any source is attached."""
    metrics = harness.services.metrics
    metrics.attach_alert_sources(None, None)
    metrics.set_alert_states(
        "credit",
        [("drift", None, "pending"), ("columns", "age", "firing"), ("x", None, "resolved")],
    )
    metrics.set_alert_states("fraud", [("drift", None, "firing")])
    assert alert_series(registry_samples(metrics)) == {
        ("credit", "drift", "", "pending"),
        ("credit", "columns", "age", "firing"),
        ("fraud", "drift", "", "firing"),
    }
    metrics.set_alert_states("credit", [("drift", None, "firing")])
    assert alert_series(registry_samples(metrics)) == {
        ("credit", "drift", "", "firing"),
        ("fraud", "drift", "", "firing"),
    }
    metrics.set_alert_states("credit", [])
    assert alert_series(registry_samples(metrics)) == {("fraud", "drift", "", "firing")}
    # an attached source is the truth at the next refresh: every model's alerts from Redis
    metrics.attach_alert_sources(None, FakeAlertStore([Alert("churn", "drift", None, "firing")]))
    await metrics.refresh_alerts(harness.clock.now())
    assert alert_series(registry_samples(metrics)) == {("churn", "drift", "", "firing")}


async def test_forget_model_drops_its_alert_series(harness: Harness) -> None:
    metrics = harness.services.metrics
    alerts = [Alert("credit", "drift", None, "firing"), Alert("fraud", "drift", None, "firing")]
    metrics.attach_alert_sources(None, FakeAlertStore(alerts))
    await metrics.refresh_alerts(harness.clock.now())
    metrics.forget_model("credit")
    assert alert_series(registry_samples(metrics)) == {("fraud", "drift", "", "firing")}


async def test_the_alert_store_and_the_outbox_are_sources(harness: Harness) -> None:
    """The real stores satisfy the Protocols (mypy checks the call) and read empty."""
    metrics = harness.services.metrics
    stores = harness.services.stores
    metrics.attach_alert_sources(stores.outbox, stores.alerts)
    await metrics.refresh_alerts(harness.clock.now())
    samples = await scrape_samples(harness.client)
    assert sample_value(samples, "driftmon_alert_outbox_depth") == 0.0
    assert alert_series(samples) == set()


def test_model_created_timestamp_for_every_model_with_one() -> None:
    collector = LatestRunsCollector(max_columns=10)
    collector.update(
        {
            "credit": ModelSnapshot(None, None, 300.0, created_at=1_700_000_000.0),
            "legacy": ModelSnapshot(None, None, 300.0),
        }
    )
    [created] = [
        family
        for family in collector.collect()
        if family.name == "driftmon_model_created_timestamp_seconds"
    ]
    assert [(s.labels, s.value) for s in created.samples] == [
        ({"model": "credit"}, 1_700_000_000.0)
    ]


async def test_promtool_accepts_a_scrape_with_every_alerting_family(harness: Harness) -> None:
    path = promtool()
    metrics = harness.services.metrics
    await upload_credit_reference(harness.client)
    await harness.client.post("/v1/models/credit/events", json=credit_events(300, seed=3))
    run: RunResult = RunResult.model_validate(
        (await harness.client.post("/v1/models/credit/runs")).json()
    )
    assert run.model == "credit"
    metrics.declare_channels(["ops", "pager"])
    metrics.count_delivery("ops", "dead_lettered")
    metrics.observe_delivery_seconds("ops", 1.5)
    now = harness.clock.now()
    alerts = FakeAlertStore([Alert("credit", "drift", None, "firing")])
    metrics.attach_alert_sources(FakeOutbox(1, now - 5.0), alerts)
    await metrics.refresh_alerts(now)
    scrape = (await harness.client.get("/metrics")).text
    for family in (
        NOTIFICATIONS,
        "driftmon_alert_delivery_seconds_bucket",
        "driftmon_alert_outbox_depth",
        "driftmon_alert_outbox_oldest_age_seconds",
        ALERTS,
    ):
        assert f"\n{family}{{" in scrape or f"\n{family} " in scrape, family
    checker = await asyncio.create_subprocess_exec(
        path, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await checker.communicate(scrape.encode())
    assert checker.returncode == 0, output.decode()
