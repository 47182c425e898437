"""Delivery through the running app: the real outbox in the test Redis, the app's own
dispatcher and real local receivers. Receivers dedupe on webhook-id as the README tells
them to; what they acknowledged is what counts."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from core.alerts import AlertState
from service.launch import free_port
from tests.data import credit_events
from tests.fixtures_app import (
    Harness,
    sample_value,
    scrape_samples,
    start_harness,
    upload_credit_reference,
)
from tests.service.alert_fixtures import (
    AGE_ALERT,
    CLEAN_SEEDS,
    DATASET_ALERT,
    DATASET_RULE,
    MODEL,
    RULES,
    Receiver,
    WallClock,
    alert_settings,
    calm,
    check_once_per_id,
    deduped,
    drained,
    drift,
    drifted_events,
    post_events,
    receiver,
    transitions,
    until,
    verified,
    webhook_channel,
    webhook_secret,
)

__all__ = ["receiver", "webhook_secret"]  # fixtures, used by name

BOTH = {DATASET_ALERT: ["firing", "resolved"], AGE_ALERT: ["firing", "resolved"]}


async def retried(app: Harness, least: int) -> None:
    """Once at least `least` attempts of the webhook channel were retried."""

    async def enough() -> bool:
        samples = await scrape_samples(app.client)
        labels = {"channel": "team-webhook", "outcome": "retried"}
        value = sample_value(samples, "driftmon_alert_notifications_total", **labels)
        return (value or 0) >= least

    await until(enough, f"{least} attempts retried")


async def test_failing_receiver_gets_everything_once_in_order_after_it_recovers(
    redis_url: str, key_prefix: str, receiver: Receiver, webhook_secret: str
) -> None:
    receiver.script(*[(500, {})] * 5)
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(receiver)], RULES)
    async for app in start_harness(settings, WallClock()):
        await drift(app, reference=True)
        await calm(app)
        await until(lambda: transitions(receiver) == BOTH, f"{BOTH} acknowledged")
        await drained(app)

    check_once_per_id(receiver)
    assert len(deduped(receiver)) == 4
    # the five scripted failures, then one acknowledged request per notification
    assert [r.status for r in receiver.received()] == [500] * 5 + [200] * 4
    # a retry carries the same id and body (signed anew)
    failed = {r.id: r.body for r in receiver.received() if not r.acked}
    for acked in receiver.acked():
        assert failed.get(acked.id, acked.body) == acked.body
    for webhook_id, payload in deduped(receiver):
        data = payload["data"]
        assert payload["type"] == f"driftmon.alert.{data['status']}"
        assert data["model"] == MODEL
        assert data["transition"] == data["status"]
        assert data["report_url"].startswith("https://driftmon.example.com/v1/models/credit/")
        assert webhook_id.startswith("msg_")


async def test_retry_after_of_a_429_is_honoured(
    redis_url: str, key_prefix: str, receiver: Receiver, webhook_secret: str
) -> None:
    receiver.script((429, {"Retry-After": "1"}))
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(receiver)])
    async for app in start_harness(settings, WallClock()):
        await drift(app, reference=True)
        await until(lambda: len(receiver.acked()) == 1, "the retry acknowledged")
        await drained(app)

    first, second = receiver.received()
    assert (first.status, second.status) == (429, 200)
    assert first.id == second.id
    # without Retry-After the backoff (base 0.01 s) would retry within a few ms
    assert 0.5 <= second.at - first.at < 30, second.at - first.at
    assert verified(second)["data"]["alert_id"] == DATASET_ALERT


async def test_a_receiver_that_was_down_gets_everything_when_it_comes_up(
    redis_url: str, key_prefix: str, webhook_secret: str
) -> None:
    late = Receiver(port=free_port())  # not started: connections are refused
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(late)], RULES)
    try:
        async for app in start_harness(settings, WallClock()):
            await drift(app, reference=True)
            await calm(app)
            await retried(app, 3)
            assert await app.services.stores.outbox.depth() == 4
            late.start()
            await until(lambda: transitions(late) == BOTH, f"{BOTH} acknowledged")
            await drained(app)
        check_once_per_id(late)
        assert all(r.acked for r in late.received())  # nothing got through while down
    finally:
        late.stop()


async def test_a_restarted_app_sends_what_the_stopped_one_left_pending(
    redis_url: str, key_prefix: str, receiver: Receiver, webhook_secret: str
) -> None:
    receiver.status = 500
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(receiver)], RULES)
    async for first in start_harness(settings, WallClock()):
        await drift(first, reference=True)
        await until(lambda: len(receiver.received()) >= 4, "failed attempts of both alerts")
        assert await first.services.stores.outbox.depth() == 2
    pending = {r.id for r in receiver.received()}
    assert len(pending) == 2
    assert not receiver.acked()

    receiver.status = 200
    async for second in start_harness(settings, WallClock()):
        await until(lambda: len(receiver.acked()) >= 2, "both notifications acknowledged")
        await drained(second)
        # it also goes on judging where the first left off: a clean run resolves
        await calm(second)
        await until(lambda: transitions(receiver) == BOTH, f"{BOTH} acknowledged")
    check_once_per_id(receiver)
    firing = {webhook_id for webhook_id, p in deduped(receiver) if p["data"]["status"] == "firing"}
    assert firing == pending


async def test_two_replicas_under_their_schedulers_notify_each_transition_once(
    redis_url: str, key_prefix: str, receiver: Receiver, webhook_secret: str
) -> None:
    settings = alert_settings(
        redis_url,
        key_prefix,
        [webhook_channel(receiver)],
        RULES,
        scheduler_enabled=True,
        schedule_seconds=1.0,
        scheduler_sync_seconds=0.5,
    )
    async for first in start_harness(settings, WallClock()):
        await upload_credit_reference(first.client)
        await post_events(first.client, drifted_events(60))
        async for _second in start_harness(settings, WallClock()):
            await until(
                lambda: set(transitions(receiver)) == {DATASET_ALERT, AGE_ALERT}, "both firing"
            )
            await more_runs(first, 2)
            await post_events(first.client, _clean(CLEAN_SEEDS[1]))
            await until(lambda: transitions(receiver) == BOTH, f"{BOTH} acknowledged")
            await more_runs(first, 2)
            await drained(first)
            history = await _history(first)

    check_once_per_id(receiver)
    assert transitions(receiver) == BOTH
    per_transition = Counter(
        (p["data"]["alert_id"], p["data"]["transition"]) for _, p in deduped(receiver)
    )
    assert set(per_transition.values()) == {1}, per_transition
    triggers = Counter(run["trigger"] for run in history)
    assert triggers["schedule"] >= 4, triggers
    assert triggers["manual"] == 0, triggers


def _clean(seed: int) -> list[dict[str, object]]:
    return credit_events(500, seed, prefix=f"clean{seed}")


async def _history(app: Harness) -> list[dict[str, Any]]:
    response = await app.client.get(f"/v1/models/{MODEL}/runs", params={"limit": 200})
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


async def more_runs(app: Harness, count: int) -> None:
    """Once `count` more runs are in the history."""
    await runs_stored(app, len(await _history(app)) + count)


async def test_slack_gets_block_kit_and_alertmanager_gets_firing_alerts_on_every_run(
    redis_url: str, key_prefix: str, receiver: Receiver
) -> None:
    channels: list[dict[str, object]] = [
        {"name": "oncall-slack", "kind": "slack", "url": receiver.url("/slack/T0/B0/secret")},
        {"name": "alertmanager", "kind": "alertmanager", "url": receiver.url("/")},
    ]
    slack_path, am_path = "/slack/T0/B0/secret", "/api/v2/alerts"
    settings = alert_settings(redis_url, key_prefix, channels)
    async for app in start_harness(settings, WallClock()):
        run = await drift(app, reference=True)
        await until(lambda: len(receiver.acked(am_path)) == 1, "alertmanager's first post")
        await until(lambda: len(receiver.acked(slack_path)) == 1, "slack's message")

        (message,) = [r.json() for r in receiver.acked(slack_path)]
        assert isinstance(message["text"], str)
        assert DATASET_RULE in message["text"]
        kinds = [block["type"] for block in message["blocks"]]
        assert kinds[0] == "header"
        assert "section" in kinds
        assert kinds[-1] == "context"
        assert run["run_id"] in message["blocks"][-1]["elements"][0]["text"]
        (alert,) = receiver.acked(am_path)[0].json()
        assert alert["labels"]["alertname"] == DATASET_RULE
        assert alert["labels"]["model"] == MODEL
        assert alert["startsAt"] < alert["endsAt"]

        await drift(app, seed=62)  # still firing: no transition
        await until(lambda: len(receiver.acked(am_path)) == 2, "alertmanager's re-send")
        await drained(app)
        assert len(receiver.acked(slack_path)) == 1
        (again,) = receiver.acked(am_path)[1].json()
        assert again["labels"] == alert["labels"]
        assert again["startsAt"] == alert["startsAt"]
        assert again["endsAt"] >= alert["endsAt"]

        await calm(app, CLEAN_SEEDS[2])
        await until(lambda: len(receiver.acked(am_path)) == 3, "alertmanager's resolution")
        await until(lambda: len(receiver.acked(slack_path)) == 2, "slack's resolution")
        (resolved,) = receiver.acked(am_path)[2].json()
        assert resolved["labels"] == alert["labels"]
        assert resolved["endsAt"] < again["endsAt"]
        assert "Resolved" in receiver.acked(slack_path)[1].json()["text"]


async def test_an_older_run_judged_after_a_newer_one_does_not_fire_again(
    redis_url: str,
    key_prefix: str,
    receiver: Receiver,
    webhook_secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replicas run one tick each, but a slow run of tick t can end after the run of
    tick t+1 on another replica (with the domain classifier on, the replicas above took
    1.5 s a run on 1 s ticks). Here the older run is held between reading its window and
    being judged; a newer run on a clean window resolves the alert meanwhile."""
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(receiver)], RULES[:1])
    async for old in start_harness(settings, WallClock()):
        async for new in start_harness(settings, WallClock()):
            await drift(old, reference=True)
            await until(lambda: DATASET_ALERT in transitions(receiver), "the firing")
            judging = hold_judging(old, monkeypatch)
            await post_events(old.client, drifted_events(70))
            stored = len(await _history(old)) + 1
            slow = asyncio.create_task(old.services.runner.run_manual(MODEL))
            await runs_stored(old, stored)  # a run is stored before its sinks judge it
            await calm(new, CLEAN_SEEDS[1])
            judging.set()
            await slow
            await drained(new)
            states = {
                a["rule"]: a["state"] for a in (await new.client.get("/v1/alerts")).json()["alerts"]
            }
    assert transitions(receiver) == {DATASET_ALERT: ["firing", "resolved"]}
    assert states == {DATASET_RULE: "resolved"}


def hold_judging(app: Harness, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The app's alert sink waits, before it loads the states, until the event is set."""
    judging = asyncio.Event()
    load = app.services.stores.alerts.load

    async def held_load(model: str) -> dict[str, AlertState]:
        await judging.wait()
        return await load(model)

    monkeypatch.setattr(app.services.stores.alerts, "load", held_load)
    return judging


async def runs_stored(app: Harness, count: int) -> None:
    async def enough() -> bool:
        return len(await _history(app)) >= count

    await until(enough, f"{count} runs stored", every=0.1)
