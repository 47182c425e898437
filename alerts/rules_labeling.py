"""The annotator-agreement rule: the labeling loop's annotators, one alert each, judged
on each run of the model whatever its status (it reads the labeling loop, not the run).

An annotator with at least `min_compared` answers compared with a consensus over the
tasks annotated in the window is bad when their agreement is under `below`, else good;
one with fewer is unknown. An annotator with an open alert and no compared answers in
the window any more (they stopped, or their answers aged out) is good: nothing is left
to hold against them, and the alert can resolve instead of firing for ever. When the
labeling loop could not be read, every open alert is unknown. Bad annotators go worst
first and are capped like the per-column rules. The figures come from the labeling loop
through the sink (an AnnotatorAgreements provider); this module never imports it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.rules_common import RunContext, capped, seen
from core.alert_config import AnnotatorAgreementRule
from core.alerts import Observation, Verdict

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class AnnotatorAgreement:
    """One annotator's answers compared with a consensus over a window, and how many of
    them agreed with it (labeling/audit.py counts them)."""

    annotator: str
    compared: int
    agreed: int

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


# a rule's window_days -> the model's annotators over that window; a window missing:
# the labeling loop was not read (no provider, or it failed)
AgreementsByWindow = Mapping[float, Sequence[AnnotatorAgreement]]


def annotator_agreement(
    rule: AnnotatorAgreementRule, context: RunContext, agreements: AgreementsByWindow
) -> list[Observation]:
    alerting = context.alerting(rule)
    found = agreements.get(rule.window_days)
    if found is None:
        return _unknown_all(rule, alerting, "annotator agreement not available")
    none_compared = f"no answers compared with a consensus in the last {_days(rule.window_days)}"
    counted = {a.annotator: a for a in found if a.compared > 0}
    enough = [a for a in counted.values() if a.compared >= rule.min_compared]
    few = [a for a in counted.values() if a.compared < rule.min_compared]
    observations = [
        _judged(rule, a) for a in sorted(enough, key=lambda a: (a.agreed / a.compared, a.annotator))
    ]
    observations += [_too_few(rule, a) for a in sorted(few, key=lambda a: a.annotator)]
    # an annotator with an open alert and no compared answers in the window any more
    observations += [
        seen(rule, "good", none_compared, column=name) for name in sorted(alerting - counted.keys())
    ]
    return capped(observations, alerting, context.max_columns)


def _judged(rule: AnnotatorAgreementRule, found: AnnotatorAgreement) -> Observation:
    agreement = found.agreed / found.compared
    bad = agreement < rule.below
    where = "below" if bad else "at or above"
    summary = (
        f"annotator {found.annotator} agrees with the consensus on "
        f"{_percent(agreement, rule.below)} of {found.compared} compared answers "
        f"({where} {_level(rule.below)})"
    )
    verdict: Verdict = "bad" if bad else "good"
    return seen(rule, verdict, summary, agreement, rule.below, column=found.annotator)


def _too_few(rule: AnnotatorAgreementRule, found: AnnotatorAgreement) -> Observation:
    summary = (
        f"annotator {found.annotator}: {found.compared} answers compared with a consensus "
        f"in the last {_days(rule.window_days)} (fewer than {rule.min_compared})"
    )
    return seen(rule, "unknown", summary, found.agreement, rule.below, column=found.annotator)


def _unknown_all(
    rule: AnnotatorAgreementRule, alerting: frozenset[str], summary: str
) -> list[Observation]:
    """One unknown for the rule as a whole, and one per annotator with an open alert."""
    return [seen(rule, "unknown", summary)] + [
        seen(rule, "unknown", summary, column=name) for name in sorted(alerting)
    ]


def _percent(value: float, level: float) -> str:
    """A whole percentage, with decimals when it would otherwise read as the level."""
    shown = _level(level)
    for digits in range(4):
        text = f"{value:.{digits}%}"
        if value == level or float(text.rstrip("%")) != float(shown.rstrip("%")):
            return text
    return text


def _level(level: float) -> str:
    return f"{level * 100:g}%"


def _days(days: float) -> str:
    return "1 day" if days == 1 else f"{days:g} days"
