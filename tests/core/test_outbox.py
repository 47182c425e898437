"""The notification outbox on a real Redis: one at a time per order key, each claim
handed to one dispatcher, leases that end, dead letters, and nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.alerts import AlertEvent, Notification
from core.keys import Keys
from core.stores.outbox import Outbox

NOW = 1_800_000_000.0
LEASE = 30.0


def note(notification_id: str, order_key: str, created_at: float = NOW) -> Notification:
    event = AlertEvent(
        alert_id="credit/drift/",
        model="credit",
        rule="drift",
        kind="dataset_drift",
        severity="warning",
        status="firing",
        transition="firing",
        run_id="r1",
        starts_at="2027-01-15T08:00:00+00:00",
    )
    return Notification(
        id=notification_id,
        channel="hook",
        channel_kind="webhook",
        order_key=order_key,
        created_at=created_at,
        events=[event],
    )


def ids(notifications: list[Notification]) -> list[str]:
    return [notification.id for notification in notifications]


@pytest.fixture
async def outbox(redis_url: str, key_prefix: str) -> AsyncIterator[Outbox]:
    redis = Redis.from_url(redis_url)
    yield Outbox(redis, Keys(key_prefix), dead_letter_cap=3)
    await redis.aclose()


async def test_an_order_key_waits_for_its_retried_head_and_no_other(outbox: Outbox) -> None:
    await outbox.enqueue([note("a1", "A"), note("a2", "A"), note("b1", "B")], now=NOW)
    assert sorted(ids(await outbox.claim(NOW, limit=10, lease_seconds=LEASE))) == ["a1", "b1"]

    assert await outbox.retry("a1", next_attempt_at=NOW + 60, error="HTTP 503")
    assert await outbox.complete("b1")
    await outbox.enqueue([note("b2", "B")], now=NOW + 1)
    # a2 waits behind a1; B's next goes at once
    assert ids(await outbox.claim(NOW + 1, limit=10, lease_seconds=LEASE)) == ["b2"]
    assert await outbox.complete("b2")
    assert await outbox.claim(NOW + 59, limit=10, lease_seconds=LEASE) == []

    (retried,) = await outbox.claim(NOW + 60, limit=10, lease_seconds=LEASE)
    assert (retried.id, retried.attempts, retried.last_error) == ("a1", 1, "HTTP 503")
    assert retried.events == note("a1", "A").events
    assert await outbox.complete("a1")
    (after,) = await outbox.claim(NOW + 60, limit=10, lease_seconds=LEASE)
    assert (after.id, after.attempts, after.last_error) == ("a2", 0, None)


async def test_a_key_is_delivered_in_enqueue_order(outbox: Outbox) -> None:
    await outbox.enqueue([note(f"n{i}", "K") for i in range(12)], now=NOW)
    delivered = []
    for _ in range(12):
        (head,) = await outbox.claim(NOW, limit=10, lease_seconds=LEASE)
        delivered.append(head.id)
        await outbox.complete(head.id)
    assert delivered == [f"n{i}" for i in range(12)]
    assert await outbox.depth() == 0


async def test_two_dispatchers_never_get_the_same_notification(
    outbox: Outbox, redis_url: str, key_prefix: str
) -> None:
    await outbox.enqueue([note(f"n{i}", f"key{i % 150}") for i in range(300)], now=NOW)
    async with Redis.from_url(redis_url) as other_redis:
        other = Outbox(other_redis, Keys(key_prefix))
        claims = await asyncio.gather(
            *(box.claim(NOW, limit=7, lease_seconds=LEASE) for box in [outbox, other] * 15)
        )
    handed = [notification.id for claim in claims for notification in claim]
    # 150 keys: only their heads, each once
    assert len(handed) == len(set(handed)) == 150
    assert set(handed) == {f"n{i}" for i in range(150)}


async def test_a_lease_that_ends_without_an_outcome_is_claimed_again(outbox: Outbox) -> None:
    await outbox.enqueue([note("n1", "K")], now=NOW)
    assert ids(await outbox.claim(NOW, limit=1, lease_seconds=LEASE)) == ["n1"]
    # the dispatcher died mid-send: nobody else gets it while its lease runs
    assert await outbox.claim(NOW + LEASE - 1, limit=1, lease_seconds=LEASE) == []
    (again,) = await outbox.claim(NOW + LEASE, limit=1, lease_seconds=LEASE)
    assert (again.id, again.attempts) == ("n1", 0)
    assert await outbox.depth() == 1


async def test_enqueueing_an_id_twice_stores_it_once(outbox: Outbox) -> None:
    await outbox.enqueue([note("n1", "K"), note("n1", "K")], now=NOW)
    await outbox.enqueue([note("n1", "K"), note("n2", "K")], now=NOW)
    assert await outbox.depth() == 2
    assert ids(await outbox.claim(NOW, limit=10, lease_seconds=LEASE)) == ["n1"]
    await outbox.complete("n1")
    assert ids(await outbox.claim(NOW, limit=10, lease_seconds=LEASE)) == ["n2"]


async def test_a_dead_letter_promotes_the_next_and_the_dead_letters_are_capped(
    outbox: Outbox,
) -> None:
    await outbox.enqueue([note(f"n{i}", "K") for i in range(5)], now=NOW)
    for i in range(5):
        (head,) = await outbox.claim(NOW + i, limit=10, lease_seconds=LEASE)
        assert head.id == f"n{i}"
        await outbox.retry(head.id, next_attempt_at=NOW + i, error=f"timeout {i}")
        assert await outbox.dead_letter(head.id, reason="gave up", now=NOW + i)
    assert await outbox.depth() == 0
    letters = await outbox.dead_letters(limit=10)
    assert [letter.notification.id for letter in letters] == ["n4", "n3", "n2"]  # cap 3
    newest = letters[0]
    assert (newest.reason, newest.dead_at) == ("gave up", NOW + 4)
    assert (newest.notification.attempts, newest.notification.last_error) == (1, "timeout 4")
    assert not await outbox.dead_letter("n4", reason="again", now=NOW + 9)


async def test_depth_and_oldest_count_heads_and_waiting(outbox: Outbox) -> None:
    assert await outbox.depth() == 0
    assert await outbox.oldest_created_at() is None
    await outbox.enqueue(
        [note("a1", "A", NOW - 50.25), note("a2", "A", NOW - 10), note("b1", "B", NOW - 30)],
        now=NOW,
    )
    assert await outbox.depth() == 3
    assert await outbox.oldest_created_at() == NOW - 50.25
    await outbox.claim(NOW, limit=10, lease_seconds=LEASE)
    assert await outbox.depth() == 3  # leased is still pending
    await outbox.complete("a1")
    assert await outbox.depth() == 2
    assert await outbox.oldest_created_at() == NOW - 30


async def test_outcomes_of_unknown_notifications_change_nothing(outbox: Outbox) -> None:
    await outbox.enqueue([note("n1", "K")], now=NOW)
    assert not await outbox.complete("nope")
    assert not await outbox.retry("nope", next_attempt_at=NOW, error="x")
    assert await outbox.claim(NOW, limit=0, lease_seconds=LEASE) == []
    assert ids(await outbox.claim(NOW, limit=5, lease_seconds=LEASE)) == ["n1"]
    assert await outbox.complete("n1")
    assert not await outbox.complete("n1")  # a second dispatcher's late outcome


async def test_a_waiting_notification_is_not_made_due_by_a_retry(outbox: Outbox) -> None:
    await outbox.enqueue([note("a1", "A"), note("a2", "A")], now=NOW)
    assert await outbox.retry("a2", next_attempt_at=NOW, error="stray")
    assert ids(await outbox.claim(NOW, limit=10, lease_seconds=LEASE)) == ["a1"]


async def test_similar_order_keys_are_independent(outbox: Outbox) -> None:
    # one key a prefix of the other: the lexical ranges must not overlap
    await outbox.enqueue([note("a", "hook/m/r/"), note("b", "hook/m/r/x")], now=NOW)
    assert sorted(ids(await outbox.claim(NOW, limit=10, lease_seconds=LEASE))) == ["a", "b"]


async def test_an_order_key_with_a_nul_is_refused(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="NUL"):
        await outbox.enqueue([note("n1", "a\0b")], now=NOW)
    assert await outbox.depth() == 0
