"""The annotator-agreement rule: its configuration, its verdict per annotator (bad, good,
unknown with too few compared answers or without labeling activity), capped worst first;
through the alerts sink on the test Redis with a constructed provider (one annotator's
falling agreement fires, recovers and resolves; no provider or a failing one leaves the
rule unknown and the other rules judged); and end to end in the app, from annotations
through the API to a firing alert."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis

from alerts.evaluate import RunContext, evaluate
from alerts.lifecycle import LifecyclePolicy
from alerts.notify import Links
from alerts.rules_labeling import DAY_SECONDS, AgreementsByWindow, AnnotatorAgreement
from alerts.sink import AlertSink, AlertSinkParts, AnnotatorAgreements, ModelAlerting
from core.alert_config import (
    AlertChannel,
    AlertRule,
    AnnotatorAgreementRule,
    default_rules,
)
from core.alerts import Observation
from core.clock import ManualClock
from core.keys import Keys
from core.results import RunResult
from core.stores import StoreLimits, Stores
from tests.fixtures_app import harness_settings, start_harness, upload_credit_reference
from tests.service.alert_fixtures import WINDOW_EVENTS, drifted_events

NOW = 1_800_000_000.0
HOUR = 3600.0
CONTEXT = RunContext(now=NOW, schedule_seconds=HOUR)
RULE = TypeAdapter[AlertRule](AlertRule)
MODEL = "credit"


def agreement_rule(**fields: object) -> AnnotatorAgreementRule:
    rule = RULE.validate_python({"name": "annotators", "kind": "annotator_agreement", **fields})
    assert isinstance(rule, AnnotatorAgreementRule)
    return rule


def run(
    status: str = "ok", run_id: str = "r1", at: float = NOW, extra: dict[str, object] | None = None
) -> RunResult:
    started = datetime.fromtimestamp(at, UTC).isoformat()
    return RunResult.model_validate(
        {"run_id": run_id, "model": MODEL, "status": status, "started_at": started} | (extra or {})
    )


def observe(
    rule: AlertRule,
    agreements: AgreementsByWindow | None,
    context: RunContext = CONTEXT,
    result: RunResult | None = None,
) -> list[Observation]:
    pairs = evaluate([rule], result or run(), context, agreements)
    return [pair.observation for pair in pairs]


def verdicts(observations: list[Observation]) -> dict[str | None, str]:
    return {o.column: o.verdict for o in observations}


def week(*found: AnnotatorAgreement) -> AgreementsByWindow:
    return {7.0: list(found)}


# --- configuration --------------------------------------------------------------------------


def test_the_rule_has_defaults_and_is_not_a_default_rule() -> None:
    rule = agreement_rule()
    assert (rule.below, rule.min_compared, rule.window_days) == (0.7, 20, 7.0)
    assert agreement_rule(below=1).below == 1.0
    assert not [r for r in default_rules() if r.kind == "annotator_agreement"]


@pytest.mark.parametrize(
    "fields",
    [{"below": 0}, {"below": 1.2}, {"min_compared": 0}, {"window_days": 0}, {"level": 0.5}],
)
def test_a_bad_rule_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        agreement_rule(**fields)


# --- evaluation -----------------------------------------------------------------------------


def test_one_verdict_per_annotator_with_enough_compared_answers() -> None:
    observations = observe(
        agreement_rule(),
        week(
            AnnotatorAgreement("alice", 50, 46),
            AnnotatorAgreement("bob", 40, 24),  # 60%
            AnnotatorAgreement("carol", 20, 14),  # 70%: not below
            AnnotatorAgreement("dave", 19, 0),  # too few
        ),
    )
    assert verdicts(observations) == {
        "alice": "good",
        "bob": "bad",
        "carol": "good",
        "dave": "unknown",
    }
    bob = next(o for o in observations if o.column == "bob")
    assert bob.summary == (
        "annotator bob agrees with the consensus on 60% of 40 compared answers (below 70%)"
    )
    assert (bob.value, bob.threshold) == (0.6, 0.7)
    carol = next(o for o in observations if o.column == "carol")
    assert "at or above 70%" in carol.summary
    dave = next(o for o in observations if o.column == "dave")
    assert dave.summary == (
        "annotator dave: 19 answers compared with a consensus in the last 7 days (fewer than 20)"
    )


def test_a_rounded_share_never_reads_as_the_level() -> None:
    [only] = observe(agreement_rule(min_compared=1), week(AnnotatorAgreement("bob", 1000, 698)))
    assert only.verdict == "bad"
    assert "69.8% of 1000 compared answers (below 70%)" in only.summary


def test_without_labeling_activity_the_rule_observes_nothing() -> None:
    rule = agreement_rule()
    inactive: list[AgreementsByWindow] = [{7.0: []}, {7.0: [AnnotatorAgreement("alice", 0, 0)]}]
    for agreements in inactive:
        assert observe(rule, agreements) == []
    # not read (no provider, or another window): unknown
    unread: list[AgreementsByWindow | None] = [None, {30.0: [AnnotatorAgreement("bob", 40, 0)]}]
    for unknown in unread:
        [only] = observe(rule, unknown)
        assert (only.column, only.verdict) == (None, "unknown")


def test_an_alerting_annotator_without_answers_in_the_window_is_good() -> None:
    """Nothing left to hold against them: the alert can resolve (unknown would keep it
    firing for as long as they do not label)."""
    rule = agreement_rule()
    context = RunContext(NOW, HOUR, alerting_columns={rule.name: frozenset({"bob"})})
    observations = observe(rule, week(AnnotatorAgreement("alice", 30, 30)), context)
    assert verdicts(observations) == {"alice": "good", "bob": "good"}
    assert verdicts(observe(rule, week(), context)) == {"bob": "good"}
    # the labeling loop not read: unknown, the alert stays as it is
    assert verdicts(observe(rule, None, context)) == {None: "unknown", "bob": "unknown"}


def test_bad_annotators_are_capped_worst_first_and_alerting_ones_kept() -> None:
    rule = agreement_rule(min_compared=10)
    found = week(
        AnnotatorAgreement("a", 10, 6),
        AnnotatorAgreement("b", 10, 2),
        AnnotatorAgreement("c", 10, 4),
        AnnotatorAgreement("d", 10, 5),
        AnnotatorAgreement("e", 10, 10),
        AnnotatorAgreement("f", 5, 0),
    )
    capped = observe(rule, found, RunContext(NOW, HOUR, max_columns=2))
    assert [(o.column, o.verdict) for o in capped] == [
        ("b", "bad"),
        ("c", "bad"),
        ("e", "good"),
        ("f", "unknown"),
    ]
    alerting = RunContext(NOW, HOUR, max_columns=2, alerting_columns={rule.name: frozenset("a")})
    assert [o.column for o in observe(rule, found, alerting) if o.verdict == "bad"] == ["b", "a"]


def test_the_rule_is_judged_on_runs_that_are_not_ok() -> None:
    result = run("insufficient_data")
    [bob] = observe(agreement_rule(), week(AnnotatorAgreement("bob", 40, 4)), result=result)
    assert (bob.column, bob.verdict) == ("bob", "bad")


def test_each_rule_reads_its_own_window() -> None:
    week_rule = agreement_rule()
    month_rule = RULE.validate_python(
        {"name": "annotators-30d", "kind": "annotator_agreement", "window_days": 30}
    )
    agreements = {
        7.0: [AnnotatorAgreement("bob", 40, 10)],
        30.0: [AnnotatorAgreement("bob", 200, 180)],
    }
    pairs = evaluate([week_rule, month_rule], run(), CONTEXT, agreements)
    assert {(p.rule.name, p.observation.verdict) for p in pairs} == {
        ("annotators", "bad"),
        ("annotators-30d", "good"),
    }


# --- through the sink -----------------------------------------------------------------------


class Provider:
    """A constructed labeling loop: per model, the annotators it answers with; records
    the windows it was asked for."""

    def __init__(self) -> None:
        self.found: dict[str, list[AnnotatorAgreement]] = {}
        self.asked: list[tuple[str, float]] = []
        self.fails = False

    async def agreements(self, model: str, since: float) -> Sequence[AnnotatorAgreement]:
        self.asked.append((model, since))
        if self.fails:
            raise ConnectionError("the label queue is away")
        return self.found.get(model, [])


class Gauges:
    def __init__(self) -> None:
        self.states: dict[str, list[tuple[str, str | None, str]]] = {}

    def set_alert_states(self, model: str, states: Sequence[tuple[str, str | None, str]]) -> None:
        self.states[model] = list(states)


CHANNEL = TypeAdapter[AlertChannel](AlertChannel).validate_python(
    {"name": "team", "kind": "webhook", "url": "https://hooks.example.com/x", "secret_env": "X"}
)
SINK_RULES: list[AlertRule] = [
    agreement_rule(min_compared=20),
    RULE.validate_python({"name": "inputs-drifted", "kind": "dataset_drift"}),
]


@pytest.fixture
async def stores(redis_url: str, key_prefix: str) -> AsyncIterator[Stores]:
    redis = Redis.from_url(redis_url)
    yield Stores.open(redis, Keys(key_prefix), ManualClock(NOW), StoreLimits(), holder="test")
    await redis.aclose()


def sink(stores: Stores, clock: ManualClock, agreements: AnnotatorAgreements | None) -> AlertSink:
    parts = AlertSinkParts(
        states=stores.alerts,
        outbox=stores.outbox,
        runs=stores.runs,
        models=stores.registry,
        gauges=Gauges(),
        agreements=agreements,
    )
    return AlertSink(
        parts,
        lambda model: ModelAlerting(SINK_RULES, HOUR),
        [CHANNEL],
        LifecyclePolicy(fire_after=2, resolve_after=1),
        Links("https://driftmon.example.com"),
        clock,
    )


async def states_of(stores: Stores) -> dict[str, str]:
    return {state.id: state.state for state in await stores.alerts.list(MODEL)}


async def test_one_annotators_falling_agreement_fires_through_the_sink(stores: Stores) -> None:
    clock = ManualClock(NOW)
    provider = Provider()
    alerts = sink(stores, clock, provider)
    provider.found[MODEL] = [AnnotatorAgreement("alice", 60, 57), AnnotatorAgreement("bob", 40, 36)]

    async def publish(index: int, status: str = "ok") -> None:
        clock.advance(HOUR)
        await alerts.publish(run(status, f"r{index}", clock.now()), None)

    await publish(1)
    assert await states_of(stores) == {}
    assert provider.asked == [(MODEL, clock.now() - 7 * DAY_SECONDS)]
    # bob's agreement falls: pending, then firing on the second bad run (fire_after 2)
    provider.found[MODEL] = [AnnotatorAgreement("alice", 60, 57), AnnotatorAgreement("bob", 40, 24)]
    await publish(2)
    assert await states_of(stores) == {f"{MODEL}/annotators/bob": "pending"}
    await publish(3, status="insufficient_data")  # judged whatever the run's status
    assert await states_of(stores) == {f"{MODEL}/annotators/bob": "firing"}
    [notification] = await stores.outbox.claim(clock.now(), 10, 60.0)
    [event] = notification.events
    assert (event.kind, event.column, event.transition) == ("annotator_agreement", "bob", "firing")
    assert event.summary == (
        "annotator bob agrees with the consensus on 60% of 40 compared answers (below 70%)"
    )
    # too few compared answers: unknown, the alert stays as it is
    provider.found[MODEL] = [AnnotatorAgreement("bob", 5, 5)]
    await publish(4)
    assert await states_of(stores) == {f"{MODEL}/annotators/bob": "firing"}
    # then none at all: good (nothing is left against bob), so it resolves
    provider.found[MODEL] = []
    await publish(5)
    assert await states_of(stores) == {f"{MODEL}/annotators/bob": "resolved"}
    # bob labels badly again: a new episode
    provider.found[MODEL] = [AnnotatorAgreement("bob", 45, 20)]
    await publish(6)
    await publish(7)
    assert await states_of(stores) == {f"{MODEL}/annotators/bob": "firing"}


async def test_without_a_provider_or_when_it_fails_the_other_rules_are_judged(
    stores: Stores,
) -> None:
    clock = ManualClock(NOW)
    provider = Provider()
    provider.fails = True
    drifted: dict[str, object] = {
        "dataset_drift": True,
        "drifted_share": 0.5,
        "drift_share_threshold": 0.3,
    }
    for index, agreements in enumerate([provider, None, provider]):
        clock.advance(HOUR)
        result = run("ok", f"r{index}", clock.now(), drifted)
        await sink(stores, clock, agreements).publish(result, None)
    assert await states_of(stores) == {f"{MODEL}/inputs-drifted/": "firing"}
    assert len(provider.asked) == 2


# --- end to end: the app's wiring reads the labeling audit ------------------------------------


async def test_annotations_through_the_api_fire_the_annotator_alert(
    redis_url: str, key_prefix: str
) -> None:
    settings = harness_settings(
        redis_url,
        key_prefix,
        labeling={"annotations_required": 3, "annotations_by_reason": {}},
        alert_rules=[
            {"name": "annotators", "kind": "annotator_agreement", "min_compared": 4},
        ],
        alert_fire_after=1,
        window_max_events=WINDOW_EVENTS,
        multivariate_enabled=False,
    )
    async for harness in start_harness(settings):
        client = harness.client
        await upload_credit_reference(client)
        posted = await client.post(f"/v1/models/{MODEL}/events", json=drifted_events(50))
        assert posted.status_code == 202, posted.text
        assert (await client.post(f"/v1/models/{MODEL}/runs")).json()["status"] == "ok"
        assert await annotator_alerts(client) == []
        tasks = await harness.services.stores.label_queue.tasks(MODEL, "open", 4)
        assert len(tasks) == 4
        for task in tasks:
            for annotator, label in (("alice", "1"), ("carol", "1"), ("bob", "0")):
                body = {"annotator": annotator, "label": label}
                answer = await client.post(f"/v1/labeling/tasks/{task.id}/annotations", json=body)
                assert answer.status_code == 201, answer.text
            assert answer.json()["state"] == "done"
        harness.clock.advance(60.0)
        assert (await client.post(f"/v1/models/{MODEL}/runs")).json()["status"] == "ok"
        [bob] = await annotator_alerts(client)
        assert (bob["column"], bob["state"], bob["value"]) == ("bob", "firing", 0.0)
        assert bob["summary"] == (
            "annotator bob agrees with the consensus on 0% of 4 compared answers (below 70%)"
        )


async def annotator_alerts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/alerts", params={"model": MODEL})
    assert response.status_code == 200, response.text
    return [a for a in response.json()["alerts"] if a["rule"] == "annotators"]
