"""How well each annotator labels: agreement with the consensus, week by week (ISO weeks
of the annotation time, UTC), and accuracy on gold tasks. Pure: no I/O.

An answer counts towards agreement on a done task whose final label rests on two
answers or more (with one, it agrees with itself); towards gold accuracy on any gold
task. Adjudicators' annotations are left out: they make the consensus."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from core.labeling import LabelTask
from labeling.consensus import label_key


@dataclass(frozen=True)
class AnnotatorWeek:
    week: str  # ISO week, "2027-W03"
    week_start: date  # its Monday
    answers: int  # non-skip annotations
    skips: int
    compared: int  # answers on tasks with a consensus of two answers or more
    agreed: int  # ... equal to the final label
    agreement: float | None  # agreed / compared
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None  # gold_correct / gold_answered


@dataclass(frozen=True)
class AnnotatorAudit:
    annotator: str
    answers: int
    skips: int
    compared: int
    agreed: int
    agreement: float | None
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None
    weeks: list[AnnotatorWeek]  # oldest first, weeks with annotations only


@dataclass
class _Tally:
    answers: int = 0
    skips: int = 0
    compared: int = 0
    agreed: int = 0
    gold_answered: int = 0
    gold_correct: int = 0
    weeks: dict[tuple[int, int], _Tally] = field(default_factory=dict)


def iso_week(at: float) -> tuple[int, int]:
    year, week, _ = datetime.fromtimestamp(at, UTC).isocalendar()
    return year, week


def audit(tasks: Iterable[LabelTask]) -> list[AnnotatorAudit]:
    """Per annotator, sorted by name."""
    tallies: dict[str, _Tally] = {}
    for task in tasks:
        labelled = [a for a in task.annotations if not a.skip]
        consensus = (
            label_key(task.final_label)
            if task.state == "done" and task.final_label is not None and len(labelled) >= 2
            else None
        )
        gold = None if task.gold_label is None else label_key(task.gold_label)
        for annotation in task.annotations:
            if annotation.adjudicator:
                continue
            total = tallies.setdefault(annotation.annotator, _Tally())
            week = total.weeks.setdefault(iso_week(annotation.at), _Tally())
            for tally in (total, week):
                if annotation.skip:
                    tally.skips += 1
                    continue
                tally.answers += 1
                key = label_key(annotation.label)
                if consensus is not None:
                    tally.compared += 1
                    tally.agreed += key == consensus
                if gold is not None:
                    tally.gold_answered += 1
                    tally.gold_correct += key == gold
    return [_record(name, tallies[name]) for name in sorted(tallies)]


def _record(annotator: str, tally: _Tally) -> AnnotatorAudit:
    weeks = [
        AnnotatorWeek(
            week=f"{year}-W{week:02d}",
            week_start=date.fromisocalendar(year, week, 1),
            answers=t.answers,
            skips=t.skips,
            compared=t.compared,
            agreed=t.agreed,
            agreement=_share(t.agreed, t.compared),
            gold_answered=t.gold_answered,
            gold_correct=t.gold_correct,
            gold_accuracy=_share(t.gold_correct, t.gold_answered),
        )
        for (year, week), t in sorted(tally.weeks.items())
    ]
    return AnnotatorAudit(
        annotator=annotator,
        answers=tally.answers,
        skips=tally.skips,
        compared=tally.compared,
        agreed=tally.agreed,
        agreement=_share(tally.agreed, tally.compared),
        gold_answered=tally.gold_answered,
        gold_correct=tally.gold_correct,
        gold_accuracy=_share(tally.gold_correct, tally.gold_answered),
        weeks=weeks,
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
