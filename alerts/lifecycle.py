"""One alert's state machine, per (model, rule, column), pure: the previous state and one
run's observation in, the next state and what (if anything) to notify out.

    inactive/resolved --bad--> pending (bad_runs < k) or firing (bad_runs >= k)
    pending --good--> inactive (nothing was ever announced, so nothing is)
    firing --bad--> firing, a reminder once `repeat_seconds` passed since the last notice
    firing --good x m--> resolved
    resolved --good, `resolved_keep_seconds` after resolving--> inactive (forgotten)

`unknown` (the run could not tell) touches nothing but last_run_id/last_run_at: streaks
are neither advanced nor broken. A silenced alert moves exactly as an unsilenced one but
notifies nothing and is not marked notified, so that, while it still fires after the
silence, its next run announces it: "firing" if the silence hid its firing (receivers
never heard of it), else a reminder once due. A resolution during a silence is not
announced."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from alerts.evaluate import RuleObservation
from core.alert_config import AlertRule
from core.alerts import (
    AlertState,
    AlertStatus,
    Observation,
    RunWindow,
    Transition,
    alert_id,
)
from core.results import RunResult

DEFAULT_REPEAT_SECONDS = 4 * 3600.0
# a resolved alert stays listed this long while its runs stay good, then is forgotten
DEFAULT_RESOLVED_KEEP_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class LifecyclePolicy:
    """The defaults of every rule; a rule's own fire_after/resolve_after win."""

    fire_after: int = 1  # k: consecutive bad runs to fire
    resolve_after: int = 1  # m: consecutive good runs to resolve
    repeat_seconds: float = DEFAULT_REPEAT_SECONDS  # reminder interval while firing
    resolved_keep_seconds: float = DEFAULT_RESOLVED_KEEP_SECONDS

    def __post_init__(self) -> None:
        if self.fire_after < 1 or self.resolve_after < 1 or self.repeat_seconds <= 0:
            raise ValueError("fire_after and resolve_after must be >= 1, repeat_seconds > 0")


@dataclass(frozen=True)
class Step:
    state: AlertState
    # only "firing", "resolved" or "reminder"
    notify: Transition | None = None


@dataclass(frozen=True)
class RuleStep:
    """One alert's step after a run: its id, the rule and observation, and the step."""

    key: str
    observed: RuleObservation
    step: Step
    silenced: bool


def advance_all(
    observed: Sequence[RuleObservation],
    states: Mapping[str, AlertState],
    run: RunResult,
    now: float,
    policy: LifecyclePolicy,
    silenced: Callable[[str, str | None], bool],
) -> list[RuleStep]:
    """Every observed alert of the run advanced from its state (the service's alert sink
    and the offline replay take the same steps); silenced(rule, column) mutes one."""
    steps: list[RuleStep] = []
    for item in observed:
        column = item.observation.column
        key = alert_id(run.model, item.rule.name, column)
        before = states.get(key)
        if before is None and item.observation.verdict != "bad":
            continue  # nothing to remember about an alert that never went bad
        muted = silenced(item.rule.name, column)
        step = advance(before, item.observation, item.rule, run, now, policy, muted)
        steps.append(RuleStep(key, item, step, muted))
    return steps


def iso_utc(timestamp: float) -> str:
    """Unix seconds as ISO 8601 UTC with a "Z", as run results write their times."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """ISO 8601 ("Z" or an offset) as unix seconds; a time without a zone is UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def advance(
    previous: AlertState | None,
    observation: Observation,
    rule: AlertRule,
    run: RunResult,
    now: float,
    policy: LifecyclePolicy,
    silenced: bool,
) -> Step:
    state = previous or AlertState(
        model=run.model,
        rule=rule.name,
        column=observation.column,
        severity=rule.severity,
        since=iso_utc(now),
    )
    state = state.model_copy(update={"last_run_id": run.run_id, "last_run_at": _run_time(run)})
    if observation.verdict == "unknown":
        return Step(state)
    state = _refreshed(state, observation, rule, run)
    if observation.verdict == "bad":
        fire_after = rule.fire_after or policy.fire_after
        step = _on_bad(state, fire_after, now, policy.repeat_seconds)
    else:
        step = _on_good(state, rule.resolve_after or policy.resolve_after, now)
        step = _forgotten_once_old(step, now, policy.resolved_keep_seconds)
    if silenced and step.notify is not None:
        # as if the notice was never sent: last_notified_at keeps its value
        return Step(step.state.model_copy(update={"last_notified_at": state.last_notified_at}))
    return step


def _refreshed(
    state: AlertState, observation: Observation, rule: AlertRule, run: RunResult
) -> AlertState:
    window = RunWindow(start=run.window.start, end=run.window.end, events=run.window.events)
    return state.model_copy(
        update={
            "column": observation.column,
            "severity": rule.severity,
            "value": observation.value,
            "threshold": observation.threshold,
            "summary": observation.summary,
            "window": window,
        }
    )


def _on_bad(state: AlertState, fire_after: int, now: float, repeat_seconds: float) -> Step:
    counted = state.model_copy(update={"bad_runs": state.bad_runs + 1, "good_runs": 0})
    if state.state == "firing":
        last_notice = _last_notice_of_episode(state)
        if last_notice is None:
            # a silence hid the firing: receivers hear of it now, as a firing
            return Step(_notified(counted, now), "firing")
        if now - last_notice >= repeat_seconds:
            return Step(_notified(counted, now), "reminder")
        return Step(counted)
    if counted.bad_runs >= fire_after:
        firing = _moved(counted, "firing", now).model_copy(update={"fired_at": iso_utc(now)})
        return Step(_notified(firing, now), "firing")
    return Step(_moved(counted, "pending", now))


def _on_good(state: AlertState, resolve_after: int, now: float) -> Step:
    counted = state.model_copy(update={"good_runs": state.good_runs + 1, "bad_runs": 0})
    if state.state == "firing":
        if counted.good_runs >= resolve_after:
            return Step(_moved(counted, "resolved", now), "resolved")
        return Step(counted)
    if state.state == "pending":
        return Step(_moved(counted, "inactive", now))
    return Step(counted)


def _forgotten_once_old(step: Step, now: float, keep_seconds: float) -> Step:
    """A resolved alert whose runs stayed good for `keep_seconds` becomes inactive with no
    streaks: the store then drops it, and `GET /v1/alerts` stops listing it."""
    state = step.state
    if state.state != "resolved" or step.notify is not None:
        return step
    if now - parse_iso(state.since) < keep_seconds:
        return step
    quiet = _moved(state, "inactive", now).model_copy(update={"bad_runs": 0, "good_runs": 0})
    return Step(quiet)


def _last_notice_of_episode(state: AlertState) -> float | None:
    """When this firing episode was last notified; None when it never was."""
    if state.last_notified_at is None:
        return None
    notified = parse_iso(state.last_notified_at)
    if state.fired_at is not None and notified < parse_iso(state.fired_at):
        return None
    return notified


def _moved(state: AlertState, status: AlertStatus, now: float) -> AlertState:
    if state.state == status:
        return state
    return state.model_copy(update={"state": status, "since": iso_utc(now)})


def _notified(state: AlertState, now: float) -> AlertState:
    return state.model_copy(update={"last_notified_at": iso_utc(now)})


def _run_time(run: RunResult) -> str:
    """The run's start, written the one way (a stored run could carry an offset)."""
    try:
        return iso_utc(parse_iso(run.started_at))
    except ValueError:
        return run.started_at
