"""How much annotators agree, pure: over a set of tasks (disagreement rate, Cohen's or
Fleiss' kappa) and per annotator against the final labels. The workflow's `stats` and
`annotators` report these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.labeling import Label, LabelTask
from core.stores.label_queue_types import QueueStats
from labeling.audit import AnnotatorAudit, audit
from labeling.consensus import answers, cohen_kappa, disagreement_rate, fleiss_kappa, pairs_between

KappaMethod = Literal["cohen", "fleiss"]


@dataclass(frozen=True)
class Agreement:
    """How much the annotators of a set of tasks agree."""

    tasks: int  # annotated tasks looked at
    disagreement_rate: float | None  # share of tasks with 2+ answers that are split
    kappa: float | None
    kappa_method: KappaMethod | None  # cohen: two annotators in all; fleiss: more
    annotators: int  # distinct annotators with an answer on a task of 2+ answers


@dataclass(frozen=True)
class ModelStats:
    queue: QueueStats
    agreement: Agreement
    mean_task_agreement: float | None  # over the done tasks annotated since `since`


@dataclass(frozen=True)
class AnnotatorReport:
    audit: AnnotatorAudit
    # Cohen's kappa of the annotator's labels against the final labels (done tasks whose
    # final label rests on two answers or more)
    kappa: float | None


@dataclass(frozen=True)
class AnnotatorsReport:
    agreement: Agreement
    annotators: list[AnnotatorReport]


def agreement_of(tasks: Sequence[LabelTask]) -> Agreement:
    """The disagreement rate and an inter-annotator coefficient of the tasks: Cohen's kappa
    when the tasks with two answers or more were answered by two annotators in all,
    Fleiss' kappa when by more (over the tasks with the most common number of answers
    above two; without such tasks, over those with two)."""
    multi = [task for task in tasks if len(answers(task)) >= 2]
    names = sorted({a.annotator for task in multi for a in answers(task)})
    kappa: float | None = None
    method: KappaMethod | None = None
    if len(names) == 2:
        method = "cohen"
        kappa = cohen_kappa(pairs_between(multi, names[0], names[1]))
    elif len(names) > 2:
        method = "fleiss"
        kappa = fleiss_kappa(multi)
        if kappa is None:
            kappa = fleiss_kappa(multi, raters=2)
    return Agreement(
        tasks=len(tasks),
        disagreement_rate=disagreement_rate(tasks),
        kappa=kappa,
        kappa_method=method,
        annotators=len(names),
    )


def consensus_pairs(
    tasks: Sequence[LabelTask], annotator: str
) -> list[tuple[Label | None, Label | None]]:
    """(the annotator's label, the final label) on done tasks whose final label rests on
    two answers or more: the ones the audit compares."""
    pairs: list[tuple[Label | None, Label | None]] = []
    for task in tasks:
        labelled = [a for a in task.annotations if not a.skip]
        if task.state != "done" or task.final_label is None or len(labelled) < 2:
            continue
        pairs += [(a.label, task.final_label) for a in answers(task) if a.annotator == annotator]
    return pairs


def model_stats(queue: QueueStats, tasks: Sequence[LabelTask]) -> ModelStats:
    """The queue's counts, the agreement over the tasks, and the mean agreement of the
    done ones."""
    done = [t.agreement for t in tasks if t.state == "done" and t.agreement is not None]
    mean = sum(done) / len(done) if done else None
    return ModelStats(queue, agreement_of(tasks), mean)


def annotators_report(tasks: Sequence[LabelTask]) -> AnnotatorsReport:
    """Per annotator (sorted by name): the audit and Cohen's kappa against the final
    labels; with the agreement over all the tasks."""
    reports = [
        AnnotatorReport(found, cohen_kappa(consensus_pairs(tasks, found.annotator)))
        for found in audit(tasks)
    ]
    return AnnotatorsReport(agreement_of(tasks), reports)
