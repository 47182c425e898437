"""Delivery outcomes against real local receivers, and the dispatcher's retries, dead
letters and isolation of channels over an in-memory outbox."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate

import httpx
import pytest
from werkzeug import Request, Response

from alerts.channels import Channel
from alerts.channels.slack import SlackFormatter
from alerts.channels.webhook import WebhookFormatter
from alerts.delivery import DeliveryPolicy, HttpDelivery, HttpRequest, parse_retry_after
from alerts.dispatcher import Dispatcher, MetricOutcome
from alerts.dispatcher_settings import DispatcherSettings, backoff_seconds
from core.alert_config import SlackChannel, WebhookChannel
from core.alerts import Notification
from core.clock import ManualClock
from tests.alerts.test_channels import (  # the receivers and alert factories
    Receiver,
    client,
    make_notification,
    other_receiver,
    receiver,
    receivers,
)

__all__ = ["client", "other_receiver", "receiver", "receivers"]  # fixtures, used by name

# --- fakes -------------------------------------------------------------------------------


@dataclass
class Entry:
    notification: Notification
    due: float = 0.0
    leased_until: float = 0.0


@dataclass
class MemoryQueue:
    """The NotificationQueue protocol in memory: claim leases due entries in order."""

    entries: dict[str, Entry] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    retried: list[tuple[str, float, str]] = field(default_factory=list)
    dead: dict[str, str] = field(default_factory=dict)
    # every call, in order: ("complete" | "retry" | "dead_letter", id)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add(self, *notifications: Notification) -> None:
        for notification in notifications:
            self.entries[notification.id] = Entry(notification)

    async def claim(self, now: float, limit: int, lease_seconds: float) -> list[Notification]:
        claimed: list[Notification] = []
        for entry in self.entries.values():
            if len(claimed) < limit and entry.due <= now and entry.leased_until <= now:
                entry.leased_until = now + lease_seconds
                claimed.append(entry.notification)
        return claimed

    async def complete(self, notification_id: str) -> bool:
        del self.entries[notification_id]
        self.completed.append(notification_id)
        self.calls.append(("complete", notification_id))
        return True

    async def retry(self, notification_id: str, next_attempt_at: float, error: str) -> bool:
        entry = self.entries[notification_id]
        attempts = entry.notification.attempts + 1
        entry.notification = entry.notification.model_copy(
            update={"attempts": attempts, "last_error": error}
        )
        entry.due, entry.leased_until = next_attempt_at, 0.0
        self.retried.append((notification_id, next_attempt_at, error))
        self.calls.append(("retry", notification_id))
        return True

    async def dead_letter(self, notification_id: str, reason: str, now: float) -> bool:
        del self.entries[notification_id]
        self.dead[notification_id] = reason
        self.calls.append(("dead_letter", notification_id))
        return True


@dataclass
class Metrics:
    counts: Counter[tuple[str, MetricOutcome]] = field(default_factory=Counter)
    seconds: list[tuple[str, float]] = field(default_factory=list)

    def count_delivery(self, channel: str, outcome: MetricOutcome) -> None:
        self.counts[(channel, outcome)] += 1

    def observe_delivery_seconds(self, channel: str, seconds: float) -> None:
        self.seconds.append((channel, seconds))


class Highest:
    """A jitter source that always picks the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FAST = DispatcherSettings(
    concurrency=2,
    lease_seconds=30,
    poll_seconds=0.01,
    timeout_seconds=2,
    backoff_base_seconds=0.01,
    backoff_cap_seconds=0.05,
    max_age_seconds=3600,
)


def hook(name: str, url: str) -> WebhookFormatter:
    config = WebhookChannel(name=name, kind="webhook", url=url, secret_env="SECRET")
    return WebhookFormatter(config, {"SECRET": SECRET})


def dispatcher(
    queue: MemoryQueue,
    channels: dict[str, Channel],
    client: httpx.AsyncClient,
    clock: ManualClock,
    settings: DispatcherSettings = FAST,
    metrics: Metrics | None = None,
) -> Dispatcher:
    return Dispatcher(
        queue, channels, client, clock, metrics or Metrics(), settings, random.Random(7)
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- one delivery ------------------------------------------------------------------------


def deliver_to(
    client: httpx.AsyncClient, *, timeout: float = 2, hosts: frozenset[str] | None = None
) -> HttpDelivery:
    return HttpDelivery(client, DeliveryPolicy(timeout, hosts, 600), ManualClock(time.time()))


def post(url: str) -> HttpRequest:
    return HttpRequest("POST", url, b"{}", {"content-type": "application/json"})


async def test_a_2xx_is_delivered(receiver: Receiver, client: httpx.AsyncClient) -> None:
    receiver.answer = lambda _: Response(status=204)
    result = await deliver_to(client).send(post(receiver.url()))
    assert (result.outcome, result.status) == ("delivered", 204)


@pytest.mark.parametrize(
    ("code", "headers", "outcome", "retry_after"),
    [
        (500, {}, "retry", None),
        (503, {"Retry-After": "12"}, "retry", 12.0),
        (429, {"Retry-After": "7"}, "retry", 7.0),
        (429, {"Retry-After": "86400"}, "retry", 600.0),  # capped by the policy
        (400, {}, "permanent", None),
        (404, {}, "permanent", None),
    ],
)
async def test_statuses_are_classified(
    receiver: Receiver,
    client: httpx.AsyncClient,
    code: int,
    headers: dict[str, str],
    outcome: str,
    retry_after: float | None,
) -> None:
    receiver.answer = lambda _: Response(f"answer {code}", status=code, headers=headers)
    result = await deliver_to(client).send(post(receiver.url()))
    assert (result.outcome, result.status, result.retry_after) == (outcome, code, retry_after)
    assert result.error == f"HTTP {code}: answer {code}"


async def test_retry_after_as_an_http_date(receiver: Receiver, client: httpx.AsyncClient) -> None:
    when = formatdate(time.time() + 120, usegmt=True)
    receiver.answer = lambda _: Response(status=503, headers={"Retry-After": when})
    result = await deliver_to(client).send(post(receiver.url()))
    assert result.retry_after is not None
    assert 100 <= result.retry_after <= 121


def test_parse_retry_after() -> None:
    assert parse_retry_after("30", 0) == 30
    assert parse_retry_after(formatdate(1_000_060, usegmt=True), 1_000_000) == 60
    assert parse_retry_after(formatdate(999_000, usegmt=True), 1_000_000) == 0
    for junk in (None, "", "soon", "-5", "1.5", "²"):
        assert parse_retry_after(junk, 0) is None


async def test_a_redirect_is_a_permanent_failure_and_not_followed(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    def answer(request: Request) -> Response:
        if request.path == "/moved":
            return Response(status=301, headers={"Location": "/elsewhere?token=s3cr3t"})
        return Response("ok")

    receiver.answer = answer
    result = await deliver_to(client).send(post(receiver.url("/moved")))
    assert (result.outcome, result.status) == ("permanent", 301)
    assert "not followed" in result.error
    assert "s3cr3t" not in result.error
    assert [got.path for got in receiver.received] == ["/moved"]


async def test_a_slow_receiver_times_out_as_a_retry(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    release = receiver.release

    def answer(_: Request) -> Response:
        release.wait(5)  # freed when the test ends
        return Response("late")

    receiver.answer = answer
    result = await deliver_to(client, timeout=0.2).send(post(receiver.url()))
    assert result.outcome == "retry"
    assert "timed out after 0.2s" in result.error


async def test_a_refused_connection_is_a_retry(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{closed_port()}/services/T0/B0/s3cr3t"
    result = await deliver_to(client).send(post(url))
    assert result.outcome == "retry"
    assert "ConnectError" in result.error
    assert "s3cr3t" not in result.error


async def test_the_policy_refuses_without_sending(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    delivery = deliver_to(client, hosts=frozenset({"hooks.example.com"}))
    result = await delivery.send(post(receiver.url()))
    assert (result.outcome, result.sent) == ("permanent", False)
    assert "not in the allowed hosts" in result.error
    other_scheme = await delivery.send(post("ftp://hooks.example.com/x"))
    assert (other_scheme.outcome, other_scheme.sent) == ("permanent", False)
    assert receiver.received == []
    allowed = deliver_to(client, hosts=frozenset({"127.0.0.1"}))
    assert (await allowed.send(post(receiver.url()))).outcome == "delivered"


# --- backoff -----------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped_with_retry_after_as_a_floor() -> None:
    settings = DispatcherSettings(backoff_base_seconds=1, backoff_cap_seconds=60)
    assert [backoff_seconds(n, settings, Highest(), None) for n in range(8)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert backoff_seconds(10_000, settings, Highest(), None) == 60
    assert backoff_seconds(0, settings, Highest(), 45) == 45
    rng = random.Random(1)
    delays = [backoff_seconds(5, settings, rng, None) for _ in range(200)]
    assert min(delays) >= 0
    assert max(delays) <= 32
    assert len({round(d, 6) for d in delays}) > 100  # spread out, not one value


# --- the dispatcher ----------------------------------------------------------------------


async def test_retry_after_sets_the_next_attempt(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.answer = lambda _: Response(status=429, headers={"Retry-After": "30"})
    queue, clock, metrics = MemoryQueue(), ManualClock(time.time()), Metrics()
    queue.add(make_notification("n1"))
    channels: dict[str, Channel] = {"hook": hook("hook", receiver.url())}
    now = clock.now()
    assert await dispatcher(queue, channels, client, clock, metrics=metrics).run_once() == 1

    ((notification_id, next_attempt_at, error),) = queue.retried
    assert notification_id == "n1"
    assert next_attempt_at >= now + 30
    assert error.startswith("HTTP 429")
    assert metrics.counts == Counter({("hook", "retried"): 1})
    assert [channel for channel, _ in metrics.seconds] == ["hook"]


async def test_a_4xx_is_dead_lettered_at_once_with_a_warning_that_hides_the_url(
    receiver: Receiver, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer = lambda _: Response("invalid_payload", status=400)
    url = receiver.url("/services/T0/B0/SuperSecretToken")
    config = SlackChannel(name="team", kind="slack", url_env="SLACK_URL")
    channels: dict[str, Channel] = {"team": SlackFormatter(config, {"SLACK_URL": url})}
    queue, clock, metrics = MemoryQueue(), ManualClock(time.time()), Metrics()
    queue.add(make_notification("n1", channel="team", kind="slack"))
    with caplog.at_level(logging.INFO, logger="alerts"):
        await dispatcher(queue, channels, client, clock, metrics=metrics).run_once()

    assert queue.dead == {"n1": "HTTP 400: invalid_payload"}
    assert queue.retried == []
    assert len(receiver.received) == 1
    assert metrics.counts == Counter({("team", "dead_lettered"): 1})
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "n1" in warning.getMessage()
    assert "team" in warning.getMessage()
    # our own records (httpx logs each request's full URL at INFO: the service keeps its
    # logger at WARNING; the receiver's werkzeug log is the receiver's)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("alerts")]
    assert ours
    assert not [message for message in ours if "SuperSecretToken" in message]


async def test_a_receiver_down_for_a_while_gets_each_notification_once(
    client: httpx.AsyncClient,
) -> None:
    down = Receiver(port=closed_port())  # refuses connections until started
    served = Counter[str]()

    def answer(request: Request) -> Response:
        served["requests"] += 1
        if served["requests"] <= 3:  # up, but still failing
            return Response(status=503)
        served[request.headers["webhook-id"]] += 1
        return Response(status=200)

    down.answer = answer
    queue, clock = MemoryQueue(), ManualClock(time.time())
    ids = [f"n{i}" for i in range(6)]
    queue.add(*(make_notification(i) for i in ids))
    channels: dict[str, Channel] = {"hook": hook("hook", down.url())}
    loop = dispatcher(queue, channels, client, clock)
    try:
        for round_ in range(30):
            if round_ == 2:
                down.start()
            await loop.run_once()
            if not queue.entries:
                break
            clock.advance(1)  # past every backoff (capped at 0.05 s)
    finally:
        down.stop()

    assert sorted(queue.completed) == ids
    assert queue.dead == {}
    assert all(served[i] == 1 for i in ids)  # dedupe by webhook-id: each delivered once
    assert {error.split(":")[0] for _, _, error in queue.retried} >= {"ConnectError", "HTTP 503"}
    assert {got.headers["Webhook-Id"] for got in down.received} == set(ids)


async def test_a_slow_channel_does_not_delay_another(
    receiver: Receiver, other_receiver: Receiver, client: httpx.AsyncClient
) -> None:
    release = receiver.release

    def stall(_: Request) -> Response:
        release.wait(5)  # past the timeout; freed when the test ends
        return Response("late")

    receiver.answer = stall
    channels: dict[str, Channel] = {
        "slow": hook("slow", receiver.url()),
        "fast": hook("fast", other_receiver.url()),
    }
    queue, clock = MemoryQueue(), ManualClock(time.time())
    # the slow channel's notifications come first and fill its every slot
    queue.add(
        make_notification("s1", channel="slow"),
        make_notification("s2", channel="slow"),
        make_notification("f1", channel="fast"),
        make_notification("f2", channel="fast"),
    )
    settings = DispatcherSettings(
        concurrency=2, lease_seconds=30, timeout_seconds=1.0, backoff_base_seconds=0.01
    )
    assert await dispatcher(queue, channels, client, clock, settings).run_once() == 4

    assert sorted(queue.completed) == ["f1", "f2"]
    assert sorted(notification_id for notification_id, _, _ in queue.retried) == ["s1", "s2"]
    # the fast channel's deliveries were done before the slow one's timed out
    settled = [notification_id for _, notification_id in queue.calls]
    assert max(settled.index("f1"), settled.index("f2")) < min(
        settled.index("s1"), settled.index("s2")
    )


async def test_dead_letter_after_the_max_age(receiver: Receiver, client: httpx.AsyncClient) -> None:
    receiver.answer = lambda _: Response(status=500)
    queue, clock, metrics = MemoryQueue(), ManualClock(time.time()), Metrics()
    settings = DispatcherSettings(
        lease_seconds=30, timeout_seconds=2, backoff_base_seconds=0.5, max_age_seconds=5
    )
    queue.add(make_notification("old", created_at=clock.now() - 6))
    queue.add(make_notification("young", created_at=clock.now()))
    loop = dispatcher(
        queue, {"hook": hook("hook", receiver.url())}, client, clock, settings, metrics
    )
    for _ in range(20):
        await loop.run_once()
        if not queue.entries:
            break
        clock.advance(1)

    assert queue.dead["old"].startswith("older than the max age of 5s after 0 attempts")
    assert "HTTP 500" in queue.dead["young"]
    assert {got.headers["Webhook-Id"] for got in receiver.received} == {"young"}
    assert metrics.counts[("hook", "retried")] >= 1
    assert metrics.counts[("hook", "dead_lettered")] == 2


async def test_an_unknown_channel_is_dead_lettered(client: httpx.AsyncClient) -> None:
    queue, metrics = MemoryQueue(), Metrics()
    queue.add(make_notification("n1", channel="removed"))
    await dispatcher(queue, {}, client, ManualClock(time.time()), metrics=metrics).run_once()
    assert queue.dead == {"n1": "the channel is no longer configured"}
    assert metrics.counts == Counter({("removed", "dead_lettered"): 1})


async def test_one_order_key_goes_out_in_order_and_waits_behind_a_failure(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    def answer(request: Request) -> Response:
        return Response(status=500 if request.headers["webhook-id"] == "b" else 200)

    receiver.answer = answer
    queue, clock = MemoryQueue(), ManualClock(time.time())
    queue.add(*(make_notification(i, order_key="fraud/age") for i in ("a", "b", "c")))
    await dispatcher(queue, {"hook": hook("hook", receiver.url())}, client, clock).run_once()

    assert [got.headers["Webhook-Id"] for got in receiver.received] == ["a", "b"]
    assert queue.completed == ["a"]
    (_, b_at, _), (c_id, c_at, c_error) = queue.retried
    assert (c_id, c_at, c_error) == ("c", b_at, "waiting behind b")


async def test_run_forever_sends_until_stopped(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    queue, stop = MemoryQueue(), asyncio.Event()
    queue.add(*(make_notification(f"n{i}") for i in range(5)))
    loop = dispatcher(
        queue, {"hook": hook("hook", receiver.url())}, client, ManualClock(time.time())
    )
    task = asyncio.create_task(loop.run_forever(stop))
    async with asyncio.timeout(10):
        while queue.entries:  # noqa: ASYNC110 - the fake outbox has no event to wait on
            await asyncio.sleep(0.01)
        stop.set()
        await task
    assert sorted(queue.completed) == [f"n{i}" for i in range(5)]


def test_settings_refuse_a_lease_shorter_than_a_request() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        DispatcherSettings(lease_seconds=5, timeout_seconds=10)


async def test_a_slack_channel_is_sent_at_most_about_once_a_second(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """Slack takes about one message a second per webhook: the dispatcher paces them
    (the gaps have a lower bound only: a busy machine can only widen them)."""
    arrivals: list[float] = []

    def timed(_: Request) -> Response:
        arrivals.append(time.monotonic())
        return Response("ok")

    receiver.answer = timed
    slack = SlackFormatter(SlackChannel(name="slack", kind="slack", url=receiver.url()), {})
    queue, clock = MemoryQueue(), ManualClock(time.time())
    queue.add(
        *(
            make_notification(f"m{i}", channel="slack", kind="slack", order_key=f"slack|{i}")
            for i in range(3)
        )
    )
    assert await dispatcher(queue, {"slack": slack}, client, clock).run_once() == 3
    assert sorted(queue.completed) == ["m0", "m1", "m2"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 2
    assert min(gaps) >= 0.9, gaps
