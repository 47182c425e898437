"""The alerts run sink: each stored run is judged by its model's rules, every alert's
state advances, and what people must hear goes to the outbox in the same transaction
as the new states. Sending is the dispatcher's job, never the run's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from alerts.evaluate import RunContext, evaluate
from alerts.lifecycle import LifecyclePolicy, advance_all
from alerts.notify import Change, Links, notifications_for
from alerts.rules_labeling import DAY_SECONDS, AgreementsByWindow, AnnotatorAgreement
from core.alert_config import AlertChannel, AlertRule, AnnotatorAgreementRule
from core.alerts import AlertState, Silence
from core.clock import Clock
from core.labeling import FlaggedSample
from core.results import RunResult
from core.stores.alerts import Judgement, StaleRunError
from core.stores.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelAlerting:
    """A model's rules and the schedule interval they count stale runs in."""

    rules: Sequence[AlertRule]
    schedule_seconds: float


class AlertStates(Protocol):
    async def silences(self, now: datetime | None = None) -> list[Silence]: ...

    async def judge(
        self,
        model: str,
        run_at: float,
        decide: Callable[[dict[str, AlertState]], Awaitable[Judgement]],
        outbox: Outbox,
        now: float,
    ) -> dict[str, AlertState]: ...


class RunHistory(Protocol):
    async def latest(self, model: str, ok_only: bool = False) -> RunResult | None: ...


class ModelCreation(Protocol):
    async def created_at(self, model: str) -> float | None: ...


class AlertGauges(Protocol):
    def set_alert_states(
        self, model: str, states: Sequence[tuple[str, str | None, str]]
    ) -> None: ...


class AnnotatorAgreements(Protocol):
    """The labeling loop's annotators, as the annotator-agreement rules judge them (the
    service layer adapts the labeling audit: alerts never import labeling)."""

    async def agreements(self, model: str, since: float) -> Sequence[AnnotatorAgreement]:
        """Per annotator, their answers compared with a consensus on the model's tasks
        annotated at or after `since` (unix seconds); empty without labeling activity."""
        ...


@dataclass(frozen=True)
class AlertSinkParts:
    states: AlertStates
    outbox: Outbox  # its commands join the states' transaction
    runs: RunHistory
    models: ModelCreation
    gauges: AlertGauges
    # None: annotator-agreement rules are unknown on every run
    agreements: AnnotatorAgreements | None = None


class AlertSink:
    name = "alerts"

    def __init__(
        self,
        parts: AlertSinkParts,
        alerting_for: Callable[[str], ModelAlerting],
        channels: Sequence[AlertChannel],
        policy: LifecyclePolicy,
        links: Links,
        clock: Clock,
        max_columns: int = 50,
    ) -> None:
        self._parts = parts
        self._alerting_for = alerting_for
        self._channels = list(channels)
        self._policy = policy
        self._links = links
        self._clock = clock
        self._max_columns = max_columns
        # one evaluation per model at a time in this process: a manual run finishing
        # beside a scheduled one must not advance the same alert twice from one state
        self._locks: dict[str, asyncio.Lock] = {}

    async def publish(
        self,
        run: RunResult,
        previous: RunResult | None,
        flagged: Sequence[FlaggedSample] = (),
    ) -> None:
        alerting = self._alerting_for(run.model)
        if not alerting.rules:
            return
        lock = self._locks.setdefault(run.model, asyncio.Lock())
        async with lock:
            await self._judge(run, alerting)

    async def _judge(self, run: RunResult, alerting: ModelAlerting) -> None:
        now = self._clock.now()
        changes: list[Change] = []
        # read once, outside the states' WATCH: a conflict judges again, not reads again
        agreements = await self._agreements(run.model, alerting.rules, now)

        async def decide(states: dict[str, AlertState]) -> Judgement:
            changes[:] = await self._changes(run, alerting, states, now, agreements)
            outbox = notifications_for(changes, run, self._channels, self._links, now)
            return [change.state for change in changes], outbox

        try:
            states = await self._parts.states.judge(
                run.model, _epoch(run.started_at), decide, self._parts.outbox, now
            )
        except StaleRunError:
            log.info(
                "run %s of %s finished after a newer one: its alerts are not judged",
                run.run_id,
                run.model,
            )
            return
        self._parts.gauges.set_alert_states(run.model, _active(states, changes))

    async def _changes(
        self,
        run: RunResult,
        alerting: ModelAlerting,
        states: dict[str, AlertState],
        now: float,
        agreements: AgreementsByWindow,
    ) -> list[Change]:
        context = await self._context(run, alerting, now, states)
        observed = evaluate(alerting.rules, run, context, agreements)
        silences = await self._parts.states.silences(datetime.fromtimestamp(now, UTC))
        steps = advance_all(
            observed, states, run, now, self._policy, partial(_silenced, silences, run.model)
        )
        return [
            Change(item.observed.rule, item.step.state, item.step.notify, item.silenced)
            for item in steps
        ]

    async def _agreements(
        self, model: str, rules: Sequence[AlertRule], now: float
    ) -> AgreementsByWindow:
        """The model's annotators over each window its annotator-agreement rules name. A
        window that cannot be read is left out (its rules are unknown this run): the
        labeling loop failing must not hold the model's other alerts up."""
        provider = self._parts.agreements
        windows = {rule.window_days for rule in rules if isinstance(rule, AnnotatorAgreementRule)}
        found: dict[float, Sequence[AnnotatorAgreement]] = {}
        if provider is None:
            return found
        for days in sorted(windows):
            try:
                found[days] = await provider.agreements(model, now - days * DAY_SECONDS)
            except Exception:
                log.warning(
                    "annotator agreement of %s over %g days not read: its rules are unknown",
                    model,
                    days,
                    exc_info=True,
                )
        return found

    async def _context(
        self, run: RunResult, alerting: ModelAlerting, now: float, states: dict[str, AlertState]
    ) -> RunContext:
        """`alerting_columns`: a column whose alert is pending or firing gets a verdict even
        when the run leaves it out or past the cap, so that the alert can resolve."""
        alerting_columns: dict[str, set[str]] = {}
        for state in states.values():
            if state.column is not None and state.state in {"pending", "firing"}:
                alerting_columns.setdefault(state.rule, set()).add(state.column)
        last_ok = await self._parts.runs.latest(run.model, ok_only=True)
        return RunContext(
            now=now,
            schedule_seconds=alerting.schedule_seconds,
            last_ok_at=None if last_ok is None else _epoch(last_ok.started_at),
            monitored_since=await self._parts.models.created_at(run.model),
            max_columns=self._max_columns,
            alerting_columns={rule: frozenset(cols) for rule, cols in alerting_columns.items()},
        )


def _silenced(silences: Sequence[Silence], model: str, rule: str, column: str | None) -> bool:
    return any(
        silence.model == model
        and silence.rule == rule
        and (silence.column is None or silence.column == column)
        for silence in silences
    )


def _active(
    before: dict[str, AlertState], changes: Sequence[Change]
) -> list[tuple[str, str | None, str]]:
    """Every pending or firing alert of the model after this run, for the gauges."""
    after = dict(before)
    after.update({change.state.id: change.state for change in changes})
    return [
        (state.rule, state.column, state.state)
        for state in after.values()
        if state.state in {"pending", "firing"}
    ]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
