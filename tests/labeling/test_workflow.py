"""The labeling workflow on a real Redis queue: claims hide the answer, K answers decide
and publish the final label before settling (also when annotations race the decision or
the process dies in between), settling prunes old done tasks, a tie goes
to an adjudicator, labels compare by the model's schema (gold ones too), the agreement
coefficient fits the annotators, and Label Studio's export comes back as annotations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from core.clock import ManualClock
from core.keys import Keys
from core.labeling import (
    Annotation,
    FlaggedSample,
    FlagReason,
    Label,
    LabelingConfig,
    LabelTask,
    TaskState,
)
from core.schema import ModelSchema
from core.stores.label_queue import LabelQueue
from core.stores.label_queue_errors import (
    AdjudicationPendingError,
    AlreadyAnnotatedError,
    TaskDoneError,
    UnknownTaskError,
)
from core.stores.label_queue_types import Retention, task_id_for
from core.stores.registry import ModelRegistry, ReferenceInfo
from labeling.agreement import agreement_of
from labeling.normalize import InvalidAnnotationError, normalize_label
from labeling.workflow import LabelingWorkflow

NOW = 1_800_000_000.0
MODEL = "credit"
SCHEMA = ModelSchema(
    features={"income": "numerical", "city": "categorical"},
    prediction="approved",
    prediction_kind="categorical",
    scores={"1": "score"},
    positive_class="1",
)
REGRESSOR = ModelSchema(
    features={"income": "numerical"}, prediction="price", prediction_kind="numerical"
)


@dataclass
class GroundTruthSpy:
    """Records what the workflow publishes (the label store's two writes)."""

    labels: list[tuple[str, dict[str, object], float]] = field(default_factory=list)
    marks: list[tuple[str, dict[str, bool], float]] = field(default_factory=list)

    async def put_labels(
        self,
        model: str,
        labels: dict[str, object],
        ttl_seconds: float,
        origins: dict[str, bool] | None = None,
    ) -> tuple[int, int]:
        self.labels.append((model, labels, ttl_seconds))
        if origins:
            self.marks.append((model, origins, ttl_seconds))
        return len(labels), 0


@dataclass
class Counted:
    outcomes: list[tuple[str, str]] = field(default_factory=list)

    def count_annotation(self, model: str, outcome: str) -> None:
        self.outcomes.append((model, outcome))


@dataclass
class Loop:
    workflow: LabelingWorkflow
    queue: LabelQueue
    truth: GroundTruthSpy
    counted: Counted
    clock: ManualClock
    config: LabelingConfig

    async def add(self, *samples: FlaggedSample, model: str = MODEL) -> list[str]:
        await self.queue.add(model, list(samples), "run-1", self.config, NOW)
        return [task_id_for(model, s.event_id) for s in samples]

    async def answer(
        self, task_id: str, annotator: str, label: Label | None, **extra: Any
    ) -> LabelTask:
        return await self.workflow.annotate(task_id, annotator, label, **extra)


def sample(
    event_id: str,
    priority: float = 1.0,
    reasons: list[FlagReason] | None = None,
    label: Label | None = None,
) -> FlaggedSample:
    return FlaggedSample(
        event_id=event_id,
        priority=priority,
        reasons=reasons or ["uncertainty"],
        details=["confidence 0.52 < 0.60"],
        timestamp=NOW - 100,
        features={"income": 52_000.0, "city": "Lyon"},
        prediction=1,
        scores={"1": 0.52},
        label=label,
    )


async def open_loop(
    redis: Redis, key_prefix: str, config: LabelingConfig, schema: ModelSchema = SCHEMA
) -> Loop:
    keys = Keys(key_prefix)
    clock = ManualClock(NOW)
    queue = LabelQueue(redis, keys, clock)
    registry = ModelRegistry(redis, keys, clock, schema_cache_seconds=0)
    for model in (MODEL, "other"):
        info = ReferenceInfo("v1", 10, schema.columns(), NOW)
        await registry.put_reference(model, schema, info, b"")
    truth, counted = GroundTruthSpy(), Counted()
    flow = LabelingWorkflow(queue, truth, registry, clock, lambda _: config, 86400.0, counted)
    return Loop(flow, queue, truth, counted, clock, config)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def pairs_config(**extra: Any) -> LabelingConfig:
    return LabelingConfig(annotations_required=2, annotations_by_reason={}, **extra)


async def test_claims_hide_gold_labels_and_ground_truth(redis: Redis, key_prefix: str) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config(gold_share=1.0, lease_seconds=30))
    (task_id,) = await loop.add(sample("e1", label=1))
    stored = await loop.queue.get(task_id)
    assert stored is not None
    assert (stored.gold_label, stored.sample.label) == (1, 1)

    claim = await loop.workflow.claim(MODEL, "alice", 5)
    assert [task.id for task in claim.tasks] == [task_id]
    (claimed,) = claim.tasks
    assert claimed.gold_label is None
    assert claimed.sample.label is None
    assert (claim.lease_seconds, claim.lease_until) == (30, NOW + 30)
    with pytest.raises(InvalidAnnotationError) as bad:
        await loop.workflow.claim(MODEL, "ali\nce", 5)
    assert bad.value.field == "annotator"


async def test_k_answers_decide_and_the_final_label_is_published_once(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config())
    plain, drawn = await loop.add(sample("e1"), sample("e2", reasons=["random"]))

    first = await loop.answer(plain, "alice", 1)
    assert first.state == "open"
    assert loop.truth.labels == []
    # the number 1 and the text "1" are one class
    done = await loop.answer(plain, "bob", "1")
    assert (done.state, done.final_label, done.agreement) == ("done", "1", 1.0)
    assert loop.truth.labels == [(MODEL, {"e1": "1"}, 86400.0)]
    assert loop.truth.marks == [(MODEL, {"e1": False}, 86400.0)]
    with pytest.raises(TaskDoneError):
        await loop.answer(plain, "carol", 0)
    await loop.answer(drawn, "alice", 0)
    with pytest.raises(AlreadyAnnotatedError):
        await loop.answer(drawn, "alice", 0)

    await loop.answer(drawn, "bob", 0.0, comment="clearly not")
    assert loop.truth.labels[-1] == (MODEL, {"e2": "0"}, 86400.0)
    assert loop.truth.marks[-1] == (MODEL, {"e2": True}, 86400.0)  # the random share
    assert loop.counted.outcomes == [(MODEL, "labeled")] * 4


async def test_a_skip_frees_the_slot_and_decides_nothing(redis: Redis, key_prefix: str) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config())
    (task_id,) = await loop.add(sample("e1"))
    skipped = await loop.answer(task_id, "alice", None, skip=True)
    assert skipped.state == "open"
    assert skipped.annotations[0].label is None
    await loop.answer(task_id, "bob", 1)
    assert (await loop.answer(task_id, "carol", 1)).state == "done"
    assert loop.counted.outcomes == [(MODEL, "skipped"), (MODEL, "labeled"), (MODEL, "labeled")]


async def test_a_tie_goes_to_an_adjudicator_who_settles_it(redis: Redis, key_prefix: str) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config())
    (task_id,) = await loop.add(sample("e1"))
    await loop.answer(task_id, "alice", "approve")
    tied = await loop.answer(task_id, "bob", "deny")
    assert tied.state == "adjudication"
    assert loop.truth.labels == []
    with pytest.raises(AdjudicationPendingError):
        await loop.answer(task_id, "carol", "deny")
    assert (await loop.workflow.claim(MODEL, "dave", 5)).tasks == []
    claim = await loop.workflow.claim(MODEL, "dave", 5, adjudicator=True)
    assert [a.label for a in claim.tasks[0].annotations] == ["approve", "deny"]

    settled = await loop.answer(task_id, "dave", "deny", adjudicator=True)
    assert (settled.state, settled.final_label) == ("done", "deny")
    assert settled.agreement == pytest.approx(2 / 3)
    assert loop.truth.labels == [(MODEL, {"e1": "deny"}, 86400.0)]


class RacingQueue(LabelQueue):
    """A queue where something happens just before the first settle: another annotation
    lands, another call concludes the task, or the process dies (the hook raises)."""

    racer: Annotation | None = None
    before_settle: Callable[[], Awaitable[None]] | None = None
    settles: int = 0

    async def settle(
        self,
        task_id: str,
        state: TaskState,
        final_label: object,
        agreement: float | None,
        *,
        expected_annotations: int | None = None,
        retention: Retention | None = None,
    ) -> LabelTask:
        racer, self.racer = self.racer, None
        if racer is not None:
            await self.annotate(task_id, racer, NOW)
        hook, self.before_settle = self.before_settle, None
        if hook is not None:
            await hook()
        self.settles += 1
        return await super().settle(
            task_id,
            state,
            final_label,
            agreement,
            expected_annotations=expected_annotations,
            retention=retention,
        )


def racing(loop: Loop, key_prefix: str, redis: Redis) -> RacingQueue:
    queue = RacingQueue(redis, Keys(key_prefix), loop.clock)
    loop.workflow._queue = queue  # the same keys, racing
    return queue


async def test_a_decision_made_stale_by_a_new_annotation_is_made_again(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config())
    queue = racing(loop, key_prefix, redis)
    (task_id,) = await loop.add(sample("e1"))
    await loop.answer(task_id, "alice", "approve")
    queue.racer = Annotation(annotator="carol", label="deny", at=NOW)
    # bob's answer ties 1:1, but carol's lands first: 2:1 decides
    task = await loop.answer(task_id, "bob", "deny")
    assert (task.state, task.final_label) == ("done", "deny")
    assert len(task.annotations) == 3
    assert loop.truth.labels == [(MODEL, {"e1": "deny"}, 86400.0)]


async def test_the_ground_truth_is_written_before_the_task_is_settled(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, LabelingConfig(annotations_required=1))
    queue = racing(loop, key_prefix, redis)
    (task_id,) = await loop.add(sample("e1", reasons=["random"]))

    async def crash() -> None:
        raise ConnectionError("the process died before the settle")

    queue.before_settle = crash
    with pytest.raises(ConnectionError):
        await loop.answer(task_id, "alice", 1)
    # the label and its origin are in the store; the task is not settled
    assert loop.truth.labels == [(MODEL, {"e1": "1"}, 86400.0)]
    assert loop.truth.marks == [(MODEL, {"e1": True}, 86400.0)]
    left = await loop.queue.get(task_id)
    assert left is not None
    assert (left.state, len(left.annotations)) == ("open", 1)
    # the next call on the task writes the same label again, then settles it
    done = await loop.answer(task_id, "bob", 1)
    assert (done.state, done.final_label) == ("done", "1")
    assert loop.truth.labels == [(MODEL, {"e1": "1"}, 86400.0)] * 2
    assert loop.truth.marks == [(MODEL, {"e1": True}, 86400.0)] * 2


async def test_a_call_that_loses_the_settle_restores_the_settled_label(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, LabelingConfig(annotations_required=1))
    queue = racing(loop, key_prefix, redis)
    (task_id,) = await loop.add(sample("e1"))

    async def adjudicator_first() -> None:
        judged = await loop.answer(task_id, "judge", 0, adjudicator=True)
        assert (judged.state, judged.final_label) == ("done", "0")

    queue.before_settle = adjudicator_first
    # alice's answer decides "1" and is written; the adjudicator's "0" settles first
    task = await loop.answer(task_id, "alice", 1)
    assert (task.state, task.final_label) == ("done", "0")
    assert [labels for _, labels, _ in loop.truth.labels] == [{"e1": "1"}, {"e1": "0"}, {"e1": "0"}]


async def test_a_published_decision_turned_into_a_tie_awaits_the_adjudicator(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, LabelingConfig(annotations_required=1))
    queue = racing(loop, key_prefix, redis)
    (task_id,) = await loop.add(sample("e1"))
    queue.racer = Annotation(annotator="bob", label="0", at=NOW)
    task = await loop.answer(task_id, "alice", 1)
    # alice's "1" was written, then bob's "0" made it a tie
    assert task.state == "adjudication"
    assert loop.truth.labels == [(MODEL, {"e1": "1"}, 86400.0)]
    settled = await loop.answer(task_id, "judge", 0, adjudicator=True)
    assert (settled.state, settled.final_label) == ("done", "0")
    assert loop.truth.labels[-1] == (MODEL, {"e1": "0"}, 86400.0)


async def test_settling_prunes_done_tasks_past_the_retention(redis: Redis, key_prefix: str) -> None:
    loop = await open_loop(redis, key_prefix, LabelingConfig(done_max=2))
    task_ids = await loop.add(*(sample(f"e{i}") for i in range(4)))
    for task_id in task_ids:
        assert (await loop.answer(task_id, "alice", 1)).state == "done"
        loop.clock.advance(1)
    kept = await loop.queue.tasks(MODEL, "done")
    assert [task.sample.event_id for task in kept] == ["e3", "e2"]
    assert (await loop.queue.stats(MODEL)).pruned_total == 2
    # past the label TTL (86400 s here), the next settle prunes the old ones too
    (late,) = await loop.add(sample("e9"))
    loop.clock.advance(86400 + 10)
    await loop.answer(late, "alice", 1)
    assert [t.sample.event_id for t in await loop.queue.tasks(MODEL, "done")] == ["e9"]


async def test_racing_annotations_settle_and_publish_the_final_label(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, LabelingConfig(annotations_required=3))
    (task_id,) = await loop.add(sample("e1"))

    async def one(name: str) -> str:
        try:
            return (await loop.answer(task_id, name, "1")).state
        except TaskDoneError:
            return "refused"

    outcomes = await asyncio.gather(*(one(f"annotator{i}") for i in range(12)))
    assert "done" in outcomes
    final = await loop.queue.get(task_id)
    assert final is not None
    assert final.state == "done"
    # each call that decided wrote the label before settling; the same label, idempotent
    assert loop.truth.labels
    assert set(map(str, loop.truth.labels)) == {str((MODEL, {"e1": "1"}, 86400.0))}


async def test_annotations_are_checked_before_the_queue_sees_them(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config())
    (task_id,) = await loop.add(sample("e1"))
    for annotator in ("", "x" * 129, "tab\there", "nul\x00", "c1\x85", "line\n", "\u2028"):
        with pytest.raises(InvalidAnnotationError) as bad:
            await loop.answer(task_id, annotator, 1)
        assert bad.value.field == "annotator"
    with pytest.raises(InvalidAnnotationError) as missing:
        await loop.answer(task_id, "alice", None)
    assert missing.value.field == "label"
    with pytest.raises(InvalidAnnotationError):
        await loop.answer(task_id, "alice", "x" * 257)
    with pytest.raises(UnknownTaskError):
        await loop.answer(task_id_for(MODEL, "nope"), "alice", 1)
    with pytest.raises(UnknownTaskError):
        await loop.answer("nomodel~" + "0" * 32, "alice", 1)
    assert (await loop.queue.get(task_id)).annotations == []  # type: ignore[union-attr]
    assert loop.counted.outcomes == []
    assert normalize_label(1.0, SCHEMA, "label") == "1"
    assert normalize_label(True, SCHEMA, "label") == "True"
    assert normalize_label("3.5", REGRESSOR, "label") == 3.5
    for unusable in ("cheap", True, float("inf")):
        with pytest.raises(InvalidAnnotationError):
            normalize_label(unusable, REGRESSOR, "label")


async def test_gold_answers_are_audited_as_classes(redis: Redis, key_prefix: str) -> None:
    loop = await open_loop(redis, key_prefix, pairs_config(gold_share=1.0))
    right, wrong = await loop.add(sample("e1", label=1), sample("e2", label=0))
    await loop.answer(right, "alice", "1")  # text against the gold number 1
    await loop.answer(wrong, "alice", 1)
    await loop.answer(right, "bob", 1)
    report = await loop.workflow.annotators(MODEL)
    alice = next(a for a in report.annotators if a.audit.annotator == "alice")
    assert (alice.audit.gold_answered, alice.audit.gold_correct) == (2, 1)
    assert alice.audit.gold_accuracy == 0.5
    assert [week.answers for week in alice.audit.weeks] == [2]


def task(number: int, *votes: tuple[str, Label], state: TaskState = "open") -> LabelTask:
    return LabelTask(
        id=f"{MODEL}~{number:032x}",
        model=MODEL,
        sample=sample(f"e{number}"),
        required=len(votes),
        state=state,
        annotations=[Annotation(annotator=who, label=label, at=NOW) for who, label in votes],
        created_at=NOW,
        run_id="r",
    )


def test_cohen_for_two_annotators_and_fleiss_for_more() -> None:
    two = [
        task(1, ("alice", "1"), ("bob", "1")),
        task(2, ("alice", "1"), ("bob", "0")),
        task(3, ("alice", "0"), ("bob", "0")),
        task(4, ("alice", "1"), ("bob", "1")),
        task(5, ("alice", "0")),  # one answer: no pair
    ]
    pair = agreement_of(two)
    assert (pair.kappa_method, pair.annotators, pair.tasks) == ("cohen", 2, 5)
    assert pair.kappa == pytest.approx(0.5)
    assert pair.disagreement_rate == pytest.approx(0.25)

    three = [
        task(1, ("a", "1"), ("b", "1"), ("c", "1")),
        task(2, ("a", "0"), ("b", "0"), ("c", "0")),
        task(3, ("a", "1"), ("b", "0"), ("c", "1")),
    ]
    group = agreement_of(three)
    assert group.kappa_method == "fleiss"
    assert group.kappa is not None
    assert 0 < group.kappa < 1
    # more annotators, two answers a task: Fleiss over the pairs
    rotating = [
        task(1, ("a", "1"), ("b", "1")),
        task(2, ("b", "0"), ("c", "0")),
        task(3, ("a", "1"), ("c", "0")),
    ]
    assert agreement_of(rotating).kappa_method == "fleiss"
    assert agreement_of(rotating).kappa is not None
    assert agreement_of([task(1, ("a", "1"))]).kappa_method is None


def labelstudio_export(
    exported: list[dict[str, Any]], answers: list[list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """What Label Studio's JSON export gives for the exported tasks, answered so."""
    return [
        {"id": index + 1, "data": item["data"], "annotations": given}
        for index, (item, given) in enumerate(zip(exported, answers, strict=True))
    ]


def choice(email: str, label: str, cancelled: bool = False) -> dict[str, Any]:
    return {
        "completed_by": {"id": 7, "email": email},
        "was_cancelled": cancelled,
        "created_at": "2027-01-05T10:00:00Z",
        "result": [] if cancelled else [
            {"from_name": "label", "to_name": "features", "type": "choices",
             "value": {"choices": [label]}}
        ],
    }  # fmt: skip


async def test_a_label_studio_export_comes_back_as_annotations(
    redis: Redis, key_prefix: str
) -> None:
    loop = await open_loop(redis, key_prefix, LabelingConfig(annotations_by_reason={}))
    await loop.add(sample("e1", 3.0), sample("e2", 2.0, ["production_error"]), sample("e3", 1.0))
    (other,) = await loop.add(sample("o1"), model="other")
    export = await loop.workflow.export_labelstudio(MODEL, 10)
    assert '<Choice value="1" />' in export.label_config
    assert [t["data"]["event_id"] for t in export.tasks] == ["e1", "e2", "e3"]
    errors = await loop.workflow.export_labelstudio(MODEL, 10, errors_only=True)
    assert [t["data"]["event_id"] for t in errors.tasks] == ["e2"]

    exported = labelstudio_export(
        export.tasks,
        [
            [choice("ann@example.com", "1"), choice("bob@example.com", "0")],
            [choice("ann@example.com", "0", cancelled=True)],
            [choice("bad\nname", "1")],
        ],
    )
    exported.append({"data": {"driftmon_task_id": other}, "annotations": [choice("a@b.c", "1")]})
    results = await loop.workflow.import_labelstudio(MODEL, exported)
    assert [(r.index, r.outcome, r.state) for r in results] == [
        (0, "imported", "done"),
        (1, "done", None),  # K=1: the first answer decided
        (2, "imported", "open"),  # a skip
        (3, "invalid", None),
        (4, "unknown_task", None),
    ]
    done = await loop.queue.get(export.tasks[0]["data"]["driftmon_task_id"])
    assert done is not None
    assert done.annotations[0].annotator == "ann@example.com"
    assert done.annotations[0].at == datetime(2027, 1, 5, 10, tzinfo=UTC).timestamp()
    assert loop.truth.labels == [(MODEL, {"e1": "1"}, 86400.0)]
    again = await loop.workflow.import_labelstudio(MODEL, exported[:2])
    assert [r.outcome for r in again] == ["done", "done", "duplicate"]
    with pytest.raises(ValueError, match=r"tasks\[0\]\.data"):
        await loop.workflow.import_labelstudio(MODEL, [{"data": "nope"}])
