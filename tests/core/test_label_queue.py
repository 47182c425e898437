"""The labeling queue on a real Redis: one task per event, a bound that evicts the lowest
priority, claims by priority with leases, at most K holders of a task across clients,
one annotation per annotator, adjudication, gold tasks kept hidden, stats, and done
tasks pruned past their retention (TTL and cap) with all they hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.clock import ManualClock
from core.keys import Keys
from core.labeling import Annotation, FlaggedSample, FlagReason, LabelingConfig, LabelTask
from core.redis_types import text
from core.stores.label_queue import PRUNE_BATCH, LabelQueue
from core.stores.label_queue_errors import (
    AdjudicationPendingError,
    AlreadyAnnotatedError,
    StaleTaskError,
    TaskDoneError,
    UnknownTaskError,
)
from core.stores.label_queue_types import Retention, task_id_for

NOW = 1_800_000_000.0
LEASE = 60.0
MODEL = "credit"


def sample(
    event_id: str,
    priority: float = 1.0,
    reasons: list[FlagReason] | None = None,
    label: str | None = None,
) -> FlaggedSample:
    return FlaggedSample(
        event_id=event_id,
        priority=priority,
        reasons=reasons or ["uncertainty"],
        details=["confidence 0.52 < 0.60"],
        timestamp=NOW - 100,
        features={"income": 52_000.0, "city": "Lyon"},
        prediction="approve",
        scores={"approve": 0.52, "deny": 0.48},
        label=label,
    )


def answer(annotator: str, label: str | None, at: float = NOW, **extra: bool) -> Annotation:
    return Annotation(annotator=annotator, label=label, at=at, **extra)


def ids(tasks: list[LabelTask]) -> list[str]:
    return [task.sample.event_id for task in tasks]


@pytest.fixture
async def queue(redis_url: str, key_prefix: str) -> AsyncIterator[LabelQueue]:
    redis = Redis.from_url(redis_url)
    yield LabelQueue(redis, Keys(key_prefix), ManualClock(NOW))
    await redis.aclose()


async def test_duplicate_event_ids_are_queued_once(queue: LabelQueue) -> None:
    config = LabelingConfig()
    first = await queue.add(MODEL, [sample("e1"), sample("e2"), sample("e1")], "r1", config, NOW)
    assert (first.queued, first.duplicates, first.evicted) == (2, 1, 0)
    second = await queue.add(MODEL, [sample("e2", priority=9), sample("e3")], "r2", config, NOW)
    assert (second.queued, second.duplicates) == (1, 1)
    task = await queue.get(task_id_for(MODEL, "e2"))
    assert task is not None
    assert (task.run_id, task.sample.priority, task.state) == ("r1", 1.0, "open")  # not merged
    # a labelled (done) event is a duplicate too
    await queue.annotate(task.id, answer("ann", "deny"), NOW)
    await queue.settle(task.id, "done", "deny", 1.0)
    assert (await queue.add(MODEL, [sample("e2")], "r3", config, NOW)).duplicates == 1
    # another model's event of the same id is another task
    assert (await queue.add("other", [sample("e2")], "r3", config, NOW)).queued == 1


async def test_the_bound_evicts_the_lowest_priority_and_counts(queue: LabelQueue) -> None:
    config = LabelingConfig(queue_max=3)
    added = await queue.add(
        MODEL, [sample(f"e{p}", priority=p) for p in (5, 1, 4, 2, 3)], "r1", config, NOW
    )
    assert (added.queued, added.evicted) == (3, 2)
    assert ids(await queue.tasks(MODEL, "open")) == ["e5", "e4", "e3"]
    # a task someone holds stays although it is the lowest; the next lowest goes
    (held,) = await queue.claim(MODEL, "ann", 1, LEASE, NOW)
    assert held.sample.event_id == "e5"
    low = await queue.add(MODEL, [sample("e0", priority=0)], "r2", config, NOW)
    assert (low.queued, low.evicted) == (0, 1)  # the new one itself did not fit
    higher = await queue.add(MODEL, [sample("e9", priority=9)], "r2", config, NOW)
    assert (higher.queued, higher.evicted) == (1, 1)
    assert ids(await queue.tasks(MODEL, "open")) == ["e9", "e5", "e4"]
    stats = await queue.stats(MODEL)
    assert (stats.open, stats.claimed, stats.evicted_total) == (3, 1, 4)
    assert stats.by_reason == {"uncertainty": 3}
    # an evicted task is gone and frees its event id
    assert await queue.get(task_id_for(MODEL, "e3")) is None
    assert (await queue.add(MODEL, [sample("e3", priority=8)], "r3", config, NOW)).queued == 1


async def test_claims_go_by_priority_and_each_annotator_gets_a_task_once(
    queue: LabelQueue,
) -> None:
    config = LabelingConfig(annotations_required=2)
    await queue.add(MODEL, [sample(f"e{p}", priority=p) for p in (2, 7, 5, 1)], "r1", config, NOW)
    assert ids(await queue.claim(MODEL, "ann", 2, LEASE, NOW)) == ["e7", "e5"]
    # neither again while held, nor after it answered or skipped them
    assert ids(await queue.claim(MODEL, "ann", 1, LEASE, NOW)) == ["e2"]
    await queue.annotate(task_id_for(MODEL, "e7"), answer("ann", "deny"), NOW)
    await queue.annotate(task_id_for(MODEL, "e5"), answer("ann", None, skip=True), NOW)
    assert ids(await queue.claim(MODEL, "ann", 5, LEASE, NOW + 2 * LEASE)) == ["e2", "e1"]
    # another annotator gets them all by priority (K=2: one slot is left on each)
    assert ids(await queue.claim(MODEL, "bob", 9, LEASE, NOW)) == ["e7", "e5", "e2", "e1"]


async def test_a_claim_hides_the_answer(queue: LabelQueue) -> None:
    config = LabelingConfig(gold_share=1.0, annotations_required=2)
    await queue.add(
        MODEL, [sample("e1", label="deny", reasons=["production_error"])], "r", config, NOW
    )
    task_id = task_id_for(MODEL, "e1")
    await queue.annotate(task_id, answer("ann", "approve"), NOW)
    (claimed,) = await queue.claim(MODEL, "bob", 1, LEASE, NOW)
    assert (claimed.gold_label, claimed.sample.label, claimed.annotations) == (None, None, [])
    stored = await queue.get(task_id)
    assert stored is not None
    assert (stored.gold_label, stored.sample.label) == ("deny", "deny")
    assert [a.annotator for a in stored.annotations] == ["ann"]


async def test_gold_tasks_make_their_share_of_samples_with_ground_truth(
    queue: LabelQueue,
) -> None:
    config = LabelingConfig(gold_share=0.25)
    samples = [sample(f"e{i}", label="deny" if i % 2 else None) for i in range(40)]
    await queue.add(MODEL, samples, "r1", config, NOW)
    tasks = await queue.tasks(MODEL, limit=100)
    gold = [task for task in tasks if task.gold_label is not None]
    assert len(gold) == 10
    assert all(task.sample.label == "deny" for task in gold)
    # the same samples decide the same way
    again = LabelingConfig(gold_share=0.25)
    await queue.forget_model(MODEL)
    await queue.add(MODEL, samples, "r1", again, NOW)
    regold = [t.id for t in await queue.tasks(MODEL, limit=100) if t.gold_label is not None]
    assert sorted(regold) == sorted(task.id for task in gold)


async def test_an_ended_lease_frees_its_slot(queue: LabelQueue) -> None:
    await queue.add(MODEL, [sample("e1")], "r1", LabelingConfig(), NOW)
    assert ids(await queue.claim(MODEL, "ann", 1, LEASE, NOW)) == ["e1"]
    assert await queue.claim(MODEL, "bob", 1, LEASE, NOW + LEASE - 1) == []
    assert (await queue.stats(MODEL)).claimed == 1
    assert ids(await queue.claim(MODEL, "bob", 1, LEASE, NOW + LEASE)) == ["e1"]
    # the first one's late answer is still taken (it was not answered meanwhile)
    task = await queue.annotate(task_id_for(MODEL, "e1"), answer("ann", "deny"), NOW + LEASE)
    assert [a.annotator for a in task.annotations] == ["ann"]


async def test_at_most_k_annotators_hold_a_task_across_clients(
    queue: LabelQueue, redis_url: str, key_prefix: str
) -> None:
    config = LabelingConfig(annotations_by_reason={"drift_region": 3})
    await queue.add(MODEL, [sample("e1", reasons=["drift_region"])], "r1", config, NOW)
    async with Redis.from_url(redis_url) as other_redis:
        other = LabelQueue(other_redis, Keys(key_prefix), ManualClock(NOW))
        claims = await asyncio.gather(
            *(
                store.claim(MODEL, f"ann{i}", 1, LEASE, NOW)
                for i, store in enumerate([queue, other] * 10)
            )
        )
    assert sum(len(claim) for claim in claims) == 3
    task_id = task_id_for(MODEL, "e1")
    holders = [f"ann{i}" for i, claim in enumerate(claims) if claim]
    # one answers, one skips: the skip frees a slot, the answer keeps its own
    await queue.annotate(task_id, answer(holders[0], "deny"), NOW)
    await queue.annotate(task_id, answer(holders[1], None, skip=True), NOW)
    newcomers = [await queue.claim(MODEL, f"new{i}", 1, LEASE, NOW) for i in range(3)]
    assert [len(claim) for claim in newcomers] == [1, 0, 0]
    assert await queue.claim(MODEL, holders[1], 1, LEASE, NOW + 10 * LEASE) == []


async def test_an_annotator_answers_a_task_once(queue: LabelQueue) -> None:
    await queue.add(MODEL, [sample("e1")], "r1", LabelingConfig(annotations_required=3), NOW)
    task_id = task_id_for(MODEL, "e1")
    await queue.annotate(task_id, answer("ann", "deny"), NOW)
    with pytest.raises(AlreadyAnnotatedError):
        await queue.annotate(task_id, answer("ann", "approve"), NOW)
    await queue.annotate(task_id, answer("bob", None, skip=True), NOW)
    with pytest.raises(AlreadyAnnotatedError):
        await queue.annotate(task_id, answer("bob", "deny"), NOW)
    with pytest.raises(UnknownTaskError):
        await queue.annotate(task_id_for(MODEL, "nope"), answer("ann", "deny"), NOW)
    with pytest.raises(UnknownTaskError):
        await queue.annotate("not a task id", answer("ann", "deny"), NOW)
    with pytest.raises(ValueError, match="label"):
        await queue.annotate(task_id, answer("cy", None), NOW)
    task = await queue.get(task_id)
    assert task is not None
    assert [(a.annotator, a.label, a.skip) for a in task.annotations] == [
        ("ann", "deny", False),
        ("bob", None, True),
    ]


async def test_adjudication_flow(queue: LabelQueue) -> None:
    config = LabelingConfig(annotations_required=2)
    await queue.add(MODEL, [sample("e1", priority=3), sample("e2", priority=1)], "r", config, NOW)
    task_id = task_id_for(MODEL, "e1")
    await queue.annotate(task_id, answer("ann", "deny"), NOW)
    task = await queue.annotate(task_id, answer("bob", "approve", at=NOW + 1), NOW + 1)
    assert len(task.annotations) == 2
    # the caller decided on one annotation: stale
    with pytest.raises(StaleTaskError):
        await queue.settle(task_id, "adjudication", None, None, expected_annotations=1)
    task = await queue.settle(task_id, "adjudication", None, None, expected_annotations=2)
    assert task.state == "adjudication"
    assert ids(await queue.tasks(MODEL, "adjudication")) == ["e1"]
    assert (await queue.stats(MODEL)).adjudication == 1

    # annotators no longer get it nor may answer it; an adjudicator does, with the answers
    assert ids(await queue.claim(MODEL, "cy", 5, LEASE, NOW)) == ["e2"]
    with pytest.raises(AdjudicationPendingError):
        await queue.annotate(task_id, answer("dee", "deny"), NOW)
    assert await queue.claim(MODEL, "ann", 5, LEASE, NOW, adjudicator=True) == []  # answered
    (claimed,) = await queue.claim(MODEL, "judge", 5, LEASE, NOW, adjudicator=True)
    assert [a.label for a in claimed.annotations] == ["deny", "approve"]
    assert await queue.claim(MODEL, "judge2", 5, LEASE, NOW, adjudicator=True) == []

    task = await queue.annotate(task_id, answer("judge", "deny", adjudicator=True), NOW + 2)
    assert task.annotations[-1].adjudicator
    done = await queue.settle(task_id, "done", "deny", 2 / 3)
    assert (done.state, done.final_label, done.agreement) == ("done", "deny", 2 / 3)
    with pytest.raises(TaskDoneError):
        await queue.annotate(task_id, answer("late", "approve", adjudicator=True), NOW)
    with pytest.raises(TaskDoneError):
        await queue.settle(task_id, "done", "approve", 1.0)
    stats = await queue.stats(MODEL)
    assert (stats.open, stats.adjudication, stats.done, stats.claimed) == (1, 0, 1, 1)
    assert stats.by_reason == {"uncertainty": 1}
    assert ids(await queue.tasks(MODEL)) == ["e2", "e1"]


async def test_annotations_since_and_forget(queue: LabelQueue) -> None:
    await queue.add(MODEL, [sample("e1"), sample("e2"), sample("e3")], "r1", LabelingConfig(), NOW)
    await queue.annotate(task_id_for(MODEL, "e1"), answer("ann", "deny", at=NOW), NOW)
    await queue.annotate(task_id_for(MODEL, "e2"), answer("ann", "deny", at=NOW + 100), NOW)
    assert ids(await queue.annotations(MODEL)) == ["e1", "e2"]
    assert ids(await queue.annotations(MODEL, since=NOW + 50)) == ["e2"]
    assert await queue.forget_model(MODEL)
    assert await queue.tasks(MODEL) == []
    assert await queue.get(task_id_for(MODEL, "e1")) is None
    assert not await queue.forget_model(MODEL)


async def settle_all(
    queue: LabelQueue, clock: ManualClock, event_ids: list[str], retention: Retention | None
) -> None:
    """Annotate and settle each event's task as done, a second apart, oldest first."""
    for event_id in event_ids:
        task_id = task_id_for(MODEL, event_id)
        await queue.annotate(task_id, answer("ann", "deny"), clock.now())
        await queue.settle(task_id, "done", "deny", 1.0, retention=retention)
        clock.advance(1)


async def stored_fields(redis: Redis, key_prefix: str, task_id: str) -> list[str]:
    """The model's keys that still mention the task (or its annotator entries)."""
    keys = Keys(key_prefix)
    found = []
    for name in ("tasks", "meta", "gold", "annotations", "progress", "holders", "outcomes"):
        key = getattr(keys, f"label_{name}")(MODEL)
        if await redis.hexists(key, task_id):
            found.append(name)
    for name in ("open", "adjudication", "done", "touched"):
        key = getattr(keys, f"label_{name}")(MODEL)
        if await redis.zscore(key, task_id) is not None:
            found.append(name)
    annotators = await redis.hkeys(keys.label_annotators(MODEL))
    if any(text(field).startswith(task_id) for field in annotators):
        found.append("annotators")
    if task_id.encode() in await redis.hvals(keys.label_events(MODEL)):
        found.append("events")
    return found


async def test_settling_prunes_the_oldest_done_tasks_beyond_the_cap(
    redis_url: str, key_prefix: str
) -> None:
    clock = ManualClock(NOW)
    async with Redis.from_url(redis_url) as redis:
        queue = LabelQueue(redis, Keys(key_prefix), clock)
        config = LabelingConfig(gold_share=1.0)
        samples = [sample(f"e{i}", label="deny") for i in range(5)]
        await queue.add(MODEL, samples, "r1", config, NOW)
        await settle_all(queue, clock, [f"e{i}" for i in range(5)], Retention(3600, 3))
        assert ids(await queue.tasks(MODEL, "done")) == ["e4", "e3", "e2"]
        stats = await queue.stats(MODEL)
        assert (stats.done, stats.pruned_total, stats.evicted_total) == (3, 2, 0)
        assert ids(await queue.annotations(MODEL)) == ["e2", "e3", "e4"]
        # a pruned task leaves nothing behind: its event may be queued again, and its
        # annotator may answer the new task
        gone = task_id_for(MODEL, "e0")
        assert await stored_fields(redis, key_prefix, gone) == []
        assert await queue.get(gone) is None
        assert "events" in await stored_fields(redis, key_prefix, task_id_for(MODEL, "e2"))
        again = await queue.add(
            MODEL, [sample("e0", label="deny"), sample("e2")], "r2", config, NOW
        )
        assert (again.queued, again.duplicates) == (1, 1)
        assert ids(await queue.claim(MODEL, "ann", 5, LEASE, clock.now())) == ["e0"]
        # the gold counter went down with the pruned gold tasks: the new one is gold
        readded = await queue.get(gone)
        assert readded is not None
        assert readded.gold_label == "deny"


async def test_done_tasks_past_the_ttl_go_a_batch_at_a_time(
    redis_url: str, key_prefix: str
) -> None:
    clock = ManualClock(NOW)
    async with Redis.from_url(redis_url) as redis:
        queue = LabelQueue(redis, Keys(key_prefix), clock)
        events = [f"e{i}" for i in range(PRUNE_BATCH + 20)]
        await queue.add(MODEL, [sample(e) for e in events], "r1", LabelingConfig(), NOW)
        await settle_all(queue, clock, events, None)  # no retention given: nothing pruned
        assert (await queue.stats(MODEL)).done == len(events)
        # settled before now - TTL: the first ten (one a second from NOW)
        keep = Retention(seconds=clock.now() - (NOW + 10), max_done=1000)
        assert await queue.prune(MODEL, keep, clock.now()) == 10
        assert await queue.prune(MODEL, keep, clock.now()) == 0
        assert ids(await queue.tasks(MODEL, "done", limit=1000))[-1] == "e10"
        # beyond the cap: at most PRUNE_BATCH per call, oldest first
        tight = Retention(seconds=86400, max_done=1)
        assert await queue.prune(MODEL, tight, clock.now()) == PRUNE_BATCH
        assert await queue.prune(MODEL, tight, clock.now()) == 9
        assert await queue.prune(MODEL, tight, clock.now()) == 0
        assert ids(await queue.tasks(MODEL, "done")) == [events[-1]]
        # a settle to adjudication prunes nothing; open tasks are never pruned
        await queue.add(MODEL, [sample("x"), sample("y")], "r2", LabelingConfig(), NOW)
        await queue.annotate(task_id_for(MODEL, "x"), answer("ann", "deny"), NOW)
        await queue.settle(task_id_for(MODEL, "x"), "adjudication", None, None, retention=tight)
        assert await queue.prune(MODEL, Retention(0, 1), clock.now() + 10) == 1
        stats = await queue.stats(MODEL)
        assert (stats.open, stats.adjudication, stats.done) == (1, 1, 0)
        assert stats.pruned_total == len(events)
