"""What a task's annotations decide, and how much annotators agree. Pure: no I/O.

A task is decided once K non-skip annotations (adjudicators' aside) are in: the one
most frequent label wins; a tie for the most frequent sends it to adjudication. An
adjudicator's annotation settles a task at any time: its label wins (the newest, if
more than one). Labels compare by value within a kind: 1 and 1.0 are one label, True
and 1 are not.

Agreement statistics return None when they cannot be computed: too few tasks, or one
category only (kappa is 0/0)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats import inter_rater  # type: ignore[import-untyped]

from core.labeling import Annotation, Label, LabelTask, TaskState

LabelKey = tuple[str, str | float | bool]


@dataclass(frozen=True)
class Decision:
    state: TaskState
    final_label: Label | None = None
    # share of the non-skip annotations (an adjudicator's too) equal to the final label
    agreement: float | None = None


def label_key(label: Label | None) -> LabelKey:
    """Labels as compared: numbers by value, booleans and text apart from them."""
    if isinstance(label, bool):
        return ("bool", label)
    if isinstance(label, int | float):
        return ("number", float(label))
    return ("text", str(label))


def answers(task: LabelTask) -> list[Annotation]:
    """The non-skip annotations of annotators (adjudicators' left out), oldest first."""
    return [a for a in task.annotations if not a.skip and not a.adjudicator]


def decide(task: LabelTask) -> Decision:
    """The task's outcome from its annotations: "done" with a final label, "adjudication"
    on a tie, or its state as it is while fewer than K answers are in."""
    if task.state == "done":
        return Decision("done", task.final_label, task.agreement)
    labelled = [a for a in task.annotations if not a.skip]
    adjudications = [a for a in labelled if a.adjudicator]
    if adjudications:
        final = max(adjudications, key=lambda a: a.at).label
        return Decision("done", final, _agreement(labelled, final))
    votes = answers(task)
    if len(votes) < task.required:
        return Decision(task.state)
    ranked = Counter(label_key(a.label) for a in votes).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return Decision("adjudication")
    winner = ranked[0][0]
    final = next(a.label for a in votes if label_key(a.label) == winner)
    return Decision("done", final, _agreement(labelled, final))


def _agreement(labelled: Sequence[Annotation], final: Label | None) -> float:
    key = label_key(final)
    return sum(label_key(a.label) == key for a in labelled) / len(labelled)


def pairs_between(
    tasks: Iterable[LabelTask], first: str, second: str
) -> list[tuple[Label | None, Label | None]]:
    """(first's label, second's label) on each task both answered (no skip)."""
    pairs = []
    for task in tasks:
        by_annotator = {a.annotator: a.label for a in answers(task)}
        if first in by_annotator and second in by_annotator:
            pairs.append((by_annotator[first], by_annotator[second]))
    return pairs


def cohen_kappa(pairs: Sequence[tuple[Label | None, Label | None]]) -> float | None:
    """Cohen's kappa of two annotators from their labels on common tasks (scikit-learn);
    None for fewer than two tasks or a single category."""
    if len(pairs) < 2:
        return None
    codes = _codes(key for pair in pairs for key in map(label_key, pair))
    if len(codes) < 2:
        return None
    first = [codes[label_key(a)] for a, _ in pairs]
    second = [codes[label_key(b)] for _, b in pairs]
    return _finite(float(cohen_kappa_score(first, second)))


def fleiss_kappa(tasks: Iterable[LabelTask], raters: int | None = None) -> float | None:
    """Fleiss' kappa (statsmodels) over the tasks with `raters` answers each (by default
    the most common number of answers above two; a tie goes to the larger). None for
    fewer than two such tasks or a single category."""
    rows = [[label_key(a.label) for a in answers(task)] for task in tasks]
    if raters is None:
        sizes = Counter(len(row) for row in rows if len(row) > 2)
        if not sizes:
            return None
        raters = max(sizes, key=lambda size: (sizes[size], size))
    rows = [row for row in rows if len(row) == raters]
    if len(rows) < 2:
        return None
    codes = _codes(key for row in rows for key in row)
    if len(codes) < 2:
        return None
    data = np.array([[codes[key] for key in row] for row in rows])
    table, _ = inter_rater.aggregate_raters(data, n_cat=len(codes))
    return _finite(float(inter_rater.fleiss_kappa(table, method="fleiss")))


def disagreement_rate(tasks: Iterable[LabelTask]) -> float | None:
    """The share of tasks with two or more answers whose answers are not unanimous; None
    without such tasks."""
    answered = 0
    split = 0
    for task in tasks:
        keys = [label_key(a.label) for a in answers(task)]
        if len(keys) >= 2:
            answered += 1
            split += len(set(keys)) > 1
    return split / answered if answered else None


def _codes(keys: Iterable[LabelKey]) -> dict[LabelKey, int]:
    """A category number per label, in order of first appearance."""
    codes: dict[LabelKey, int] = {}
    for key in keys:
        codes.setdefault(key, len(codes))
    return codes


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
