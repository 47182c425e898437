"""Alert states and silences on a real Redis: a state change and its notifications
commit together, blank states are not kept, a deleted model's alerts go, and silences
end, are capped and are deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from core.alerts import AlertEvent, AlertState, AlertStatus, Notification, Silence
from core.keys import Keys
from core.stores.alerts import AlertStore, Judgement, SilenceLimitError, StaleRunError
from core.stores.outbox import Outbox

NOW = 1_800_000_000.0
T0 = datetime.fromtimestamp(NOW, UTC)
SINCE = T0.isoformat()


@dataclass
class Fixture:
    alerts: AlertStore
    outbox: Outbox


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[Fixture]:
    redis = Redis.from_url(redis_url)
    keys = Keys(key_prefix)
    yield Fixture(AlertStore(redis, keys, max_silences=2), Outbox(redis, keys))
    await redis.aclose()


def state(
    model: str,
    rule: str,
    column: str | None = None,
    status: AlertStatus = "firing",
    bad_runs: int = 3,
) -> AlertState:
    return AlertState(
        model=model, rule=rule, column=column, state=status, bad_runs=bad_runs, since=SINCE
    )


def firing(alert: AlertState, order_key: str | None = None) -> Notification:
    event = AlertEvent(
        alert_id=alert.id,
        model=alert.model,
        rule=alert.rule,
        kind="column_drift",
        column=alert.column,
        severity=alert.severity,
        status="firing",
        transition="firing",
        run_id="r1",
        starts_at=SINCE,
    )
    return Notification(
        id=f"n-{alert.id}",
        channel="hook",
        channel_kind="webhook",
        order_key=order_key or f"hook/{alert.id}",
        created_at=NOW,
        events=[event],
    )


def silence(silence_id: str, model: str = "credit", ends_in: float = 3600.0) -> Silence:
    return Silence(
        id=silence_id,
        model=model,
        rule="drift",
        until=T0 + timedelta(seconds=ends_in),
        created_at=T0,
    )


async def test_a_commit_writes_the_states_and_their_notifications(store: Fixture) -> None:
    age = state("credit", "drift", "age")
    await store.alerts.commit([age], [firing(age)], store.outbox, now=NOW)
    assert await store.alerts.load("credit") == {"credit/drift/age": age}
    (claimed,) = await store.outbox.claim(NOW, limit=10, lease_seconds=30)
    assert claimed.id == "n-credit/drift/age"


async def test_a_commit_that_fails_writes_nothing(store: Fixture) -> None:
    age = state("credit", "drift", "age")
    with pytest.raises(ValueError, match="NUL"):
        await store.alerts.commit([age], [firing(age, order_key="a\0b")], store.outbox, now=NOW)
    assert await store.alerts.load("credit") == {}
    assert await store.outbox.depth() == 0


async def test_blank_states_are_deleted_not_stored(store: Fixture) -> None:
    age, income = state("credit", "drift", "age"), state("credit", "drift", "income")
    await store.alerts.commit([age, income], [], store.outbox, now=NOW)
    cleared = state("credit", "drift", "age", status="inactive", bad_runs=0)
    streak = state("credit", "drift", "zip", status="inactive", bad_runs=1)
    await store.alerts.commit([cleared, streak], [], store.outbox, now=NOW)
    assert set(await store.alerts.load("credit")) == {"credit/drift/income", "credit/drift/zip"}


async def test_list_covers_every_model_sorted_and_filters(store: Fixture) -> None:
    states = [
        state("zeta", "drift"),
        state("credit", "quality", "age", status="pending"),
        state("credit", "drift", "income", status="resolved", bad_runs=0),
        state("credit", "drift"),
    ]
    await store.alerts.commit(states, [], store.outbox, now=NOW)
    listed = [(s.model, s.rule, s.column) for s in await store.alerts.list()]
    assert listed == [
        ("credit", "drift", None),
        ("credit", "drift", "income"),
        ("credit", "quality", "age"),
        ("zeta", "drift", None),
    ]
    only_credit = await store.alerts.list(model="credit", states={"firing", "pending"})
    assert [s.id for s in only_credit] == ["credit/drift/", "credit/quality/age"]
    assert [s.id for s in await store.alerts.list(states=["firing"])] == [
        "credit/drift/",
        "zeta/drift/",
    ]
    assert await store.alerts.list(model="nobody") == []


async def test_forgetting_a_model_removes_its_alerts_and_silences_only(store: Fixture) -> None:
    await store.alerts.commit(
        [state("credit", "drift"), state("churn", "drift")], [], store.outbox, now=NOW
    )
    await store.alerts.add_silence(silence("s1", model="credit"))
    await store.alerts.add_silence(silence("s2", model="churn"))
    assert await store.alerts.forget_model("credit")
    assert await store.alerts.load("credit") == {}
    assert [s.model for s in await store.alerts.list()] == ["churn"]
    assert [s.id for s in await store.alerts.silences()] == ["s2"]
    assert not await store.alerts.forget_model("credit")


async def test_silences_are_listed_end_and_are_deleted(store: Fixture) -> None:
    short, long = silence("short", ends_in=60), silence("long", ends_in=3600)
    await store.alerts.add_silence(short)
    await store.alerts.add_silence(long)
    assert {s.id for s in await store.alerts.silences()} == {"short", "long"}
    assert await store.alerts.silences(now=T0 + timedelta(seconds=59)) == sorted(
        [short, long], key=lambda s: s.id
    )
    # ended at its `until`: pruned, not just hidden
    assert await store.alerts.silences(now=T0 + timedelta(seconds=60)) == [long]
    assert await store.alerts.silences() == [long]
    assert await store.alerts.delete_silence("long")
    assert not await store.alerts.delete_silence("long")
    assert await store.alerts.silences() == []


async def test_silences_are_capped(store: Fixture) -> None:
    await store.alerts.add_silence(silence("a"))
    await store.alerts.add_silence(silence("b", ends_in=60))
    with pytest.raises(SilenceLimitError, match="2 silences"):
        await store.alerts.add_silence(silence("c"))
    # replacing one is no new one
    await store.alerts.add_silence(silence("a", ends_in=7200))
    # one that ended by the new one's creation no longer counts
    later = silence("c").model_copy(update={"created_at": T0 + timedelta(seconds=60)})
    await store.alerts.add_silence(later)
    assert sorted(s.id for s in await store.alerts.silences()) == ["a", "c"]
    (replaced,) = [s for s in await store.alerts.silences() if s.id == "a"]
    assert replaced.until == T0 + timedelta(seconds=7200)


# --- judging: one model's alerts judged by one judge at a time, newest run last ------------


async def test_concurrent_judges_of_one_model_lose_no_update(store: Fixture) -> None:
    """Each judge counts one more bad run from what it loaded: concurrent judges that
    committed blindly would lose counts; WATCH makes the loser judge again."""

    def judged(run_at: float) -> Callable[[dict[str, AlertState]], Awaitable[Judgement]]:
        async def decide(states: dict[str, AlertState]) -> Judgement:
            before = states.get("m/drift/") or state("m", "drift", bad_runs=0)
            await asyncio.sleep(0.01)  # the others load the same states meanwhile
            return [before.model_copy(update={"bad_runs": before.bad_runs + 1})], []

        return decide

    await asyncio.gather(
        *(store.alerts.judge("m", NOW, judged(NOW), store.outbox, NOW) for _ in range(4))
    )
    assert (await store.alerts.load("m"))["m/drift/"].bad_runs == 4


async def test_a_run_older_than_the_last_judged_one_is_refused(store: Fixture) -> None:
    async def decide(states: dict[str, AlertState]) -> Judgement:
        return [state("m", "drift")], [firing(state("m", "drift"))]

    await store.alerts.judge("m", NOW + 60, decide, store.outbox, NOW)
    with pytest.raises(StaleRunError):
        await store.alerts.judge("m", NOW, decide, store.outbox, NOW)
    assert await store.outbox.depth() == 1  # the stale judgement enqueued nothing
    await store.alerts.judge("m", NOW + 60, decide, store.outbox, NOW)  # the same run: again
    await store.alerts.judge("other", NOW, decide, store.outbox, NOW)  # another model's clock
