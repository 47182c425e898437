"""Consensus by majority with ties to adjudication, and agreement statistics checked
against textbook values."""

from __future__ import annotations

import pytest

from core.labeling import Annotation, FlaggedSample, Label, LabelTask, TaskState
from labeling.consensus import (
    Decision,
    cohen_kappa,
    decide,
    disagreement_rate,
    fleiss_kappa,
    pairs_between,
)

NOW = 1_800_000_000.0


def task(
    labels: list[Label | None],
    required: int = 3,
    state: TaskState = "open",
    adjudicated: Label | None = None,
    task_id: str = "m~t",
) -> LabelTask:
    """None in `labels` is a skip."""
    annotations = [
        Annotation(annotator=f"a{i}", label=label, skip=label is None, at=NOW + i)
        for i, label in enumerate(labels)
    ]
    if adjudicated is not None:
        annotations.append(
            Annotation(annotator="judge", label=adjudicated, adjudicator=True, at=NOW + 99)
        )
    sample = FlaggedSample(
        event_id=task_id, priority=1.0, reasons=["random"], timestamp=NOW, features={}
    )
    return LabelTask(
        id=task_id,
        model="m",
        sample=sample,
        required=required,
        state=state,
        annotations=annotations,
        created_at=NOW,
        run_id="r",
    )


def test_the_majority_decides_once_k_answers_are_in() -> None:
    assert decide(task(["deny", "deny"])) == Decision("open")
    # skips count toward nothing
    assert decide(task(["deny", None, "deny"])) == Decision("open")
    assert decide(task(["deny", None, "approve", "deny"])) == Decision("done", "deny", 2 / 3)
    assert decide(task(["x"], required=1)) == Decision("done", "x", 1.0)
    # the most frequent wins without a strict majority
    assert decide(task(["a", "a", "b", "c"], required=4)) == Decision("done", "a", 0.5)


def test_a_tie_goes_to_adjudication_and_an_adjudicator_settles_it() -> None:
    assert decide(task(["deny", "approve"], required=2)) == Decision("adjudication")
    assert decide(task(["a", "b", "c"])) == Decision("adjudication")
    waiting = task(["deny", "approve"], required=2, state="adjudication")
    assert decide(waiting) == Decision("adjudication")
    settled = task(["deny", "approve"], required=2, state="adjudication", adjudicated="approve")
    assert decide(settled) == Decision("done", "approve", 2 / 3)
    # an adjudicator overrules even a majority
    assert decide(task(["a", "a", "a"], adjudicated="b")) == Decision("done", "b", 0.25)


def test_labels_compare_by_value_within_a_kind() -> None:
    assert decide(task([1, 1.0, 2])) == Decision("done", 1, 2 / 3)
    assert decide(task([True, 1, 1])) == Decision("done", 1, 2 / 3)


def test_cohen_kappa_of_a_textbook_table() -> None:
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15; po .7, pe .5
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    # a second one: 45 / 15 / 25 / 15 of 100, kappa 0.1304
    other = (
        [("yes", "yes")] * 45 + [("yes", "no")] * 15 + [("no", "yes")] * 25 + [("no", "no")] * 15
    )
    assert cohen_kappa(other) == pytest.approx(0.1304, abs=1e-4)
    assert cohen_kappa([("yes", "yes")]) is None
    assert cohen_kappa([("yes", "yes")] * 5) is None  # one category


def test_cohen_kappa_pairs_two_annotators_on_common_tasks() -> None:
    tasks = [
        task(["a", "a", "b"], task_id="t1"),
        task(["b", "b", None], task_id="t2"),  # a2 skipped
        task(["a", "b"], task_id="t3"),
    ]
    assert pairs_between(tasks, "a0", "a1") == [("a", "a"), ("b", "b"), ("a", "b")]
    assert pairs_between(tasks, "a0", "a2") == [("a", "b")]


def test_fleiss_kappa_of_fleiss_example() -> None:
    # the classic 10 subjects x 14 raters x 5 categories table: kappa 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    tasks = [
        task(
            [f"c{category}" for category, count in enumerate(row) for _ in range(count)],
            required=14,
            task_id=f"t{i}",
        )
        for i, row in enumerate(table)
    ]
    assert fleiss_kappa(tasks) == pytest.approx(0.20993, abs=1e-5)
    # tasks with another number of raters are left out
    extra = [task(["c0", "c0", "c1"], task_id="odd")]
    assert fleiss_kappa(tasks + extra) == pytest.approx(0.20993, abs=1e-5)
    assert fleiss_kappa(tasks[:1]) is None
    assert fleiss_kappa([task(["a", "a", "a"]), task(["a", "a", "a"])]) is None
    assert fleiss_kappa([task(["a", "b"]), task(["a", "a"])]) is None  # two raters


def test_fleiss_kappa_of_perfect_agreement() -> None:
    assert fleiss_kappa([task(["a", "a", "a"]), task(["b", "b", "b"])]) == pytest.approx(1.0)


def test_disagreement_rate() -> None:
    tasks = [task(["a", "a"]), task(["a", "b"]), task(["a", None]), task(["b", "b", "b"])]
    assert disagreement_rate(tasks) == pytest.approx(1 / 3)
    assert disagreement_rate([task(["a"])]) is None
