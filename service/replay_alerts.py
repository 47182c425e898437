"""Which alerts a replay's runs would have fired and resolved: the alert sink's pure
steps (alerts/evaluate.py's `evaluate`, alerts/lifecycle.py's `advance`) over the runs
in order, with the states kept in memory instead of Redis and the clock at each run's
time. No silences and no notifications: only the transitions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from alerts.evaluate import RuleObservation, RunContext, evaluate
from alerts.lifecycle import advance_all
from core.alerts import AlertState, Transition
from core.results import RunResult
from core.stores.alerts import is_blank
from service.replay_input import ModelSetup


class AlertChange(BaseModel):
    """An alert's transition on one replayed run."""

    rule: str
    column: str | None = None
    transition: Literal["firing", "resolved", "reminder"]
    severity: str
    value: float | None = None
    threshold: float | None = None
    summary: str = ""

    @property
    def label(self) -> str:
        return self.rule if self.column is None else f"{self.rule}[{self.column}]"


class AlertReplay:
    """One model's alert states across successive runs, as AlertSink keeps them."""

    def __init__(self, model: ModelSetup, schedule_seconds: float, monitored_since: float) -> None:
        self._model = model
        self._schedule_seconds = schedule_seconds
        self._monitored_since = monitored_since
        self._states: dict[str, AlertState] = {}
        self._last_ok_at: float | None = None

    def firing(self) -> list[str]:
        """The alerts firing now, by label (rule, or rule[column])."""
        return sorted(
            state.rule if state.column is None else f"{state.rule}[{state.column}]"
            for state in self._states.values()
            if state.state == "firing"
        )

    def judge(self, run: RunResult, now: float) -> list[AlertChange]:
        """The run's observations advance every alert; its transitions, in rule order."""
        if run.status == "ok":  # the sink reads the latest ok run after storing this one
            self._last_ok_at = now
        context = self._context(now)
        observed = evaluate(self._model.rules, run, context)
        steps = advance_all(observed, self._states, run, now, self._model.lifecycle, _never)
        changes: list[AlertChange] = []
        for item in steps:
            if is_blank(item.step.state):
                self._states.pop(item.key, None)
            else:
                self._states[item.key] = item.step.state
            if item.step.notify is not None:
                changes.append(_change(item.observed, item.step.notify))
        return changes

    def _context(self, now: float) -> RunContext:
        alerting: dict[str, set[str]] = {}
        for state in self._states.values():
            if state.column is not None and state.state in {"pending", "firing"}:
                alerting.setdefault(state.rule, set()).add(state.column)
        return RunContext(
            now=now,
            schedule_seconds=self._schedule_seconds,
            last_ok_at=self._last_ok_at,
            monitored_since=self._monitored_since,
            max_columns=self._model.max_alert_columns,
            alerting_columns={rule: frozenset(columns) for rule, columns in alerting.items()},
        )


def _never(rule: str, column: str | None) -> bool:
    return False  # nothing is silenced offline


def _change(observed: RuleObservation, transition: Transition) -> AlertChange:
    observation = observed.observation
    return AlertChange(
        rule=observed.rule.name,
        column=observation.column,
        transition=transition,
        severity=observed.rule.severity,
        value=observation.value,
        threshold=observation.threshold,
        summary=observation.summary,
    )
