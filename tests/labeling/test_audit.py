"""The annotator audit: agreement with the consensus by ISO week, and gold accuracy."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from core.labeling import Annotation, FlaggedSample, Label, LabelTask
from labeling.audit import audit, iso_week
from labeling.consensus import decide

# Monday 2027-01-04, the first day of ISO week 2027-W01
START = datetime(2027, 1, 4, 9, tzinfo=UTC).timestamp()
WEEK = 7 * 86400
CLASSES = ["cat", "dog", "bird", "fish"]


def settled(
    task_id: str, answers: dict[str, Label | None], at: float, gold: Label | None = None
) -> LabelTask:
    """A task with these answers (None: a skip), settled as the consensus decides."""
    sample = FlaggedSample(
        event_id=task_id, priority=1.0, reasons=["random"], timestamp=at, features={}
    )
    task = LabelTask(
        id=task_id,
        model="m",
        sample=sample,
        required=sum(label is not None for label in answers.values()),
        annotations=[
            Annotation(annotator=who, label=label, skip=label is None, at=at + i)
            for i, (who, label) in enumerate(answers.items())
        ],
        gold_label=gold,
        created_at=at,
        run_id="r",
    )
    decision = decide(task)
    return task.model_copy(
        update={
            "state": decision.state,
            "final_label": decision.final_label,
            "agreement": decision.agreement,
        }
    )


def test_iso_weeks() -> None:
    assert iso_week(START) == (2027, 1)
    assert iso_week(START - 86400) == (2026, 53)  # Sunday 2027-01-03


def test_an_annotator_who_turns_random_shows_falling_agreement() -> None:
    rng = random.Random(7)
    tasks = []
    for week in range(6):
        for n in range(40):
            truth = rng.choice(CLASSES)
            sloppy = rng.choice(CLASSES) if week >= 3 else truth
            at = START + week * WEEK + n * 3600
            answers: dict[str, Label | None] = {
                "ann": truth,
                "bob": truth,
                "cy": truth,
                "dee": sloppy,
            }
            tasks.append(settled(f"t{week}-{n}", answers, at))
    records = {record.annotator: record for record in audit(tasks)}
    assert sorted(records) == ["ann", "bob", "cy", "dee"]

    dee = records["dee"]
    assert [week.week for week in dee.weeks] == [f"2027-W0{w}" for w in range(1, 7)]
    assert dee.weeks[0].week_start == date(2027, 1, 4)
    early = [week.agreement for week in dee.weeks[:3]]
    late = [week.agreement for week in dee.weeks[3:]]
    assert early == [1.0, 1.0, 1.0]
    assert all(agreement is not None and agreement < 0.5 for agreement in late)
    assert all(week.compared == week.answers == 40 for week in dee.weeks)
    for name in ("ann", "bob", "cy"):
        assert all(week.agreement == 1.0 for week in records[name].weeks)
        assert records[name].agreement == 1.0
    assert dee.agreement is not None
    assert 0.5 < dee.agreement < 0.75
    assert dee.gold_accuracy is None


def test_gold_accuracy_skips_and_what_is_not_compared() -> None:
    tasks = [
        settled("g1", {"ann": "cat", "bob": "dog"}, START, gold="cat"),  # a tie: no consensus
        settled("g2", {"ann": "dog", "bob": "dog"}, START + WEEK, gold="cat"),
        settled("t1", {"ann": "cat"}, START),  # one answer: not compared
        settled("t2", {"ann": None, "bob": "cat", "cy": "cat"}, START),
    ]
    records = {record.annotator: record for record in audit(tasks)}
    ann = records["ann"]
    assert (ann.answers, ann.skips, ann.compared, ann.agreed) == (3, 1, 1, 1)
    assert (ann.gold_answered, ann.gold_correct) == (2, 1)
    assert ann.gold_accuracy == pytest.approx(0.5)
    first, second = ann.weeks
    assert (first.week, first.gold_accuracy, first.skips, first.compared) == ("2027-W01", 1.0, 1, 0)
    assert (second.week, second.gold_accuracy, second.agreement) == ("2027-W02", 0.0, 1.0)
    assert records["bob"].gold_accuracy == 0.0
    assert records["cy"].gold_answered == 0
