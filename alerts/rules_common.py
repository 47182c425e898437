"""What every rule kind's evaluation shares: the run's context, the one way to write an
observation, the cap on bad per-column observations, and the number formats of summaries.
Summaries carry scores, shares, counts and names only, never feature values (PII)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.alert_config import AlertRule
from core.alerts import Observation, Verdict
from core.results import RunResult

DEFAULT_MAX_COLUMNS = 50


@dataclass(frozen=True)
class RunContext:
    now: float  # unix seconds
    schedule_seconds: float
    # start of the model's newest ok run, this one included
    last_ok_at: float | None = None
    # when the model was created or first seen, so a model never ok still goes stale
    monitored_since: float | None = None
    # bad per-column observations of one rule beyond this are left out, worst kept
    max_columns: int = DEFAULT_MAX_COLUMNS
    # rule name -> columns with a pending or firing alert: never capped out, and given a
    # verdict even when the run no longer names them, so that their alerts can resolve
    alerting_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def alerting(self, rule: AlertRule) -> frozenset[str]:
        return self.alerting_columns.get(rule.name, frozenset())


def seen(
    rule: AlertRule,
    verdict: Verdict,
    summary: str,
    value: float | None = None,
    threshold: float | None = None,
    column: str | None = None,
) -> Observation:
    return Observation(
        rule=rule.name,
        column=column,
        verdict=verdict,
        value=value,
        threshold=threshold,
        summary=summary,
    )


def capped(
    observations: list[Observation], alerting: frozenset[str], cap: int
) -> list[Observation]:
    """Bad observations in the given order up to `cap` bad columns, the alerting ones
    counted and always kept; good and unknown ones all stay, so every alert can resolve."""
    slots = cap - sum(1 for o in observations if o.verdict == "bad" and o.column in alerting)
    kept: list[Observation] = []
    for observation in observations:
        if observation.verdict == "bad" and observation.column not in alerting:
            if slots <= 0:
                continue
            slots -= 1
        kept.append(observation)
    return kept


def run_columns(run: RunResult) -> set[str]:
    """The columns the run names, in its drift results or its data-quality sections."""
    quality = run.data_quality.columns if run.data_quality is not None else {}
    return set(run.columns) | set(quality)


def versus(measure: str | None, value: float | None, threshold: float | None) -> str:
    return f"{measure or 'score'} {num(value)} (threshold {num(threshold)})"


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
