"""The outbox's consumer: claims due notifications, sends each to its channel, and
completes, retries (exponential backoff, full jitter, Retry-After honoured) or
dead-letters it.

Channels never wait on each other: each channel has its own `concurrency` slots, and a
request costs at most `timeout_seconds`, so a dead receiver only slows its own
notifications. Notifications of one order key go out one at a time, in claim order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping
from typing import Literal, NamedTuple, Protocol

import httpx

from alerts.channels import Channel
from alerts.delivery import DeliveryPolicy, DeliveryResult, HttpDelivery
from alerts.dispatcher_settings import DispatcherSettings, RandomSource, backoff_seconds
from core.alerts import Notification
from core.clock import Clock

log = logging.getLogger(__name__)

MetricOutcome = Literal["delivered", "retried", "dead_lettered", "failed"]


class NotificationQueue(Protocol):
    """The outbox as the dispatcher sees it (core/stores/outbox.py implements it)."""

    async def claim(self, now: float, limit: int, lease_seconds: float) -> list[Notification]:
        """Up to `limit` notifications due at `now`, leased for `lease_seconds`: a lease
        that runs out (a crashed replica) makes them claimable again. Several of one
        order key come in enqueue order."""
        ...

    async def complete(self, notification_id: str) -> bool: ...

    async def retry(self, notification_id: str, next_attempt_at: float, error: str) -> bool:
        """Releases the lease until `next_attempt_at`; increments `attempts`."""
        ...

    async def dead_letter(self, notification_id: str, reason: str, now: float) -> bool: ...


class DeliveryMetrics(Protocol):
    def count_delivery(self, channel: str, outcome: MetricOutcome) -> None:
        """failed: the dispatcher itself failed (a bug, the outbox unreachable); the
        notification's lease runs out and it is claimed again."""
        ...

    def observe_delivery_seconds(self, channel: str, seconds: float) -> None:
        """How long one request took, for every request that went out."""
        ...


class Settled(NamedTuple):
    outcome: MetricOutcome
    next_attempt_at: float | None = None


class Dispatcher:
    def __init__(
        self,
        queue: NotificationQueue,
        channels: Mapping[str, Channel],
        client: httpx.AsyncClient,
        clock: Clock,
        metrics: DeliveryMetrics,
        settings: DispatcherSettings,
        rng: RandomSource | None = None,
    ) -> None:
        self._queue = queue
        self._channels = channels
        self._clock = clock
        self._metrics = metrics
        self._settings = settings
        self._rng: RandomSource = rng if rng is not None else random.Random()
        policy = DeliveryPolicy(
            timeout_seconds=settings.timeout_seconds,
            allowed_hosts=settings.allowed_hosts,
            max_retry_after_seconds=settings.max_retry_after_seconds,
        )
        self._delivery = HttpDelivery(client, policy, clock)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_turn: dict[str, float] = {}  # monotonic time of a paced channel's next send

    async def run_once(self) -> int:
        """Claims one batch and settles every notification in it; returns how many."""
        batch = await self._claim(self._settings.batch_size)
        await asyncio.gather(*(self._send_in_order(group) for group in _by_order_key(batch)))
        return len(batch)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: keeps up to `batch_size` notifications in flight, claiming
        more as soon as some settle, so that a channel that is slow or paced (Slack)
        holds up only its own notifications; polls every `poll_seconds` when none are
        due (or the outbox is unreachable). Sends still in flight when it is cancelled
        are claimed again after their lease."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                room = self._settings.batch_size - len(in_flight)
                claimed = await self._claim_quietly(room) if room > 0 else []
                for group in _by_order_key(claimed):
                    task = asyncio.create_task(self._send_in_order(group))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if claimed and len(claimed) == room:
                    continue  # a full claim: more may be due at once
                await _first_of(in_flight, stop, self._settings.poll_seconds)
            # stopping: the sends under way finish (each within its timeout) unless the
            # caller cancels this first
            await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            for task in in_flight:
                task.cancel()

    async def _claim(self, limit: int) -> list[Notification]:
        settings = self._settings
        return await self._queue.claim(self._clock.now(), limit, settings.lease_seconds)

    async def _claim_quietly(self, limit: int) -> list[Notification]:
        try:
            return await self._claim(limit)
        except Exception:
            log.exception("alert dispatcher: claiming notifications failed")
            return []

    async def _send_in_order(self, group: list[Notification]) -> None:
        settling = 0
        try:
            for settling, notification in enumerate(group):
                if not await self._settled_in_turn(group, settling, notification):
                    return
        except asyncio.CancelledError:
            # stopped before these went out: they are due again at once, for whichever
            # dispatcher claims them, instead of after their lease
            await asyncio.shield(self._release(group[settling:]))
            raise

    async def _release(self, unsent: list[Notification]) -> None:
        for notification in unsent:
            with contextlib.suppress(Exception):
                await self._queue.retry(notification.id, self._clock.now(), "dispatcher stopped")

    async def _settled_in_turn(
        self, group: list[Notification], index: int, notification: Notification
    ) -> bool:
        """Sends one of a group; False when the rest of the group must wait for it."""
        settled = await self._handle(notification)
        if settled.outcome in ("delivered", "dead_lettered"):
            return True
        # the later ones must not overtake it: they wait for its next attempt (or, when
        # it failed outright, for the leases to run out)
        if settled.next_attempt_at is not None:
            for later in group[index + 1 :]:
                await self._queue.retry(
                    later.id, settled.next_attempt_at, f"waiting behind {notification.id}"
                )
        return False

    async def _handle(self, notification: Notification) -> Settled:
        try:
            return await self._attempt(notification)
        except Exception:
            log.exception(
                "alert notification %s to channel %s: delivery failed unexpectedly",
                notification.id,
                notification.channel,
            )
            self._metrics.count_delivery(notification.channel, "failed")
            return Settled("failed")

    async def _attempt(self, notification: Notification) -> Settled:
        channel = self._channels.get(notification.channel)
        if channel is None:
            return await self._give_up(notification, "the channel is no longer configured")
        async with self._slot(notification.channel):
            if channel.min_interval_seconds > 0:
                await self._paced(notification.channel, channel.min_interval_seconds)
            # read inside the slot: the signature's timestamp is the time it goes out
            now = self._clock.now()
            if now - notification.created_at > self._settings.max_age_seconds:
                return await self._give_up(notification, self._expired(notification))
            request = channel.request(notification, now)
            # durations on the monotonic clock; the injected clock is wall time
            started = time.perf_counter()
            result = await self._delivery.send(request)
            if result.sent:
                elapsed = time.perf_counter() - started
                self._metrics.observe_delivery_seconds(notification.channel, elapsed)
        return await self._settle(notification, result, now)

    async def _settle(
        self, notification: Notification, result: DeliveryResult, now: float
    ) -> Settled:
        if result.outcome == "delivered":
            await self._queue.complete(notification.id)
            self._metrics.count_delivery(notification.channel, "delivered")
            return Settled("delivered")
        if result.outcome == "permanent":
            return await self._give_up(notification, result.error)
        delay = backoff_seconds(
            notification.attempts, self._settings, self._rng, result.retry_after
        )
        next_attempt_at = now + delay
        if next_attempt_at - notification.created_at > self._settings.max_age_seconds:
            # a retry after the max age would only be dead-lettered then
            reason = f"{result.error}; the next attempt would pass the max age"
            return await self._give_up(notification, reason)
        await self._queue.retry(notification.id, next_attempt_at, result.error)
        self._metrics.count_delivery(notification.channel, "retried")
        log.info(
            "alert notification %s to channel %s: retry in %.1fs after %s",
            notification.id,
            notification.channel,
            delay,
            result.error,
        )
        return Settled("retried", next_attempt_at)

    async def _give_up(self, notification: Notification, reason: str) -> Settled:
        await self._queue.dead_letter(notification.id, reason, self._clock.now())
        self._metrics.count_delivery(notification.channel, "dead_lettered")
        # reasons come from delivery.py, which never repeats a URL's path or query
        log.warning(
            "alert notification %s to channel %s dead-lettered: %s",
            notification.id,
            notification.channel,
            reason,
        )
        return Settled("dead_lettered")

    def _expired(self, notification: Notification) -> str:
        return (
            f"older than the max age of {self._settings.max_age_seconds:g}s after "
            f"{notification.attempts} attempts; last error: {notification.last_error or 'none'}"
        )

    async def _paced(self, channel: str, interval: float) -> None:
        """Waits for this send's turn: sends to one channel at least `interval` apart.
        The turn is reserved before the wait, so concurrent senders queue up in order."""
        now = time.monotonic()
        turn = max(self._next_turn.get(channel, 0.0), now)
        self._next_turn[channel] = turn + interval
        if turn > now:
            await asyncio.sleep(turn - now)

    def _slot(self, channel: str) -> asyncio.Semaphore:
        slot = self._slots.get(channel)
        if slot is None:
            slot = self._slots[channel] = asyncio.Semaphore(self._settings.concurrency)
        return slot


def _by_order_key(batch: list[Notification]) -> list[list[Notification]]:
    """The batch in groups that go out one at a time, in claim (enqueue) order."""
    groups: dict[str, list[Notification]] = {}
    for notification in batch:
        groups.setdefault(notification.order_key, []).append(notification)
    return list(groups.values())


async def _first_of(in_flight: set[asyncio.Task[None]], stop: asyncio.Event, poll: float) -> None:
    """Returns when a send settles, `stop` is set, or `poll` seconds passed."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({*in_flight, stopping}, timeout=poll, return_when=FIRST_COMPLETED)
    finally:
        stopping.cancel()
