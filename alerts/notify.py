"""From an alert's transitions in one run to outbox entries: which channels hear of it,
in how many messages, under which ids. Pure: the sink stores what this returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from core.alert_config import AlertChannel, AlertRule
from core.alerts import AlertEvent, AlertState, Notification, RunWindow, Transition
from core.results import RunResult


@dataclass(frozen=True)
class Change:
    """One alert after this run, and what (if anything) its owners should hear."""

    rule: AlertRule
    state: AlertState
    notify: Transition | None
    silenced: bool


@dataclass(frozen=True)
class Links:
    """Where people look, under DRIFTMON_PUBLIC_URL: the run's HTML report, and the
    picture of the model's drift scores over its recent runs up to this one."""

    public_url: str

    def run(self, model: str, run_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/v1/models/{model}/runs/{run_id}"

    def report(self, model: str, run_id: str) -> str:
        return f"{self.run(model, run_id)}/report"

    def plot(self, model: str, run_id: str) -> str:
        return f"{self.run(model, run_id)}/plot.png"


def notification_id(channel: str, run_id: str, key: str, transition: str) -> str:
    """The `webhook-id`: derived from what it says, so that storing the same run's
    notifications twice stores them once."""
    digest = hashlib.sha256(f"{channel}|{run_id}|{key}|{transition}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def alert_event(change: Change, run: RunResult, links: Links, transition: Transition) -> AlertEvent:
    state = change.state
    resolved = state.state == "resolved"
    return AlertEvent(
        alert_id=state.id,
        model=state.model,
        rule=state.rule,
        kind=change.rule.kind,
        column=state.column,
        severity=state.severity,
        status="resolved" if resolved else "firing",
        transition=transition,
        value=state.value,
        threshold=state.threshold,
        summary=state.summary,
        run_id=run.run_id,
        window=RunWindow(start=run.window.start, end=run.window.end, events=run.window.events),
        report_url=links.report(run.model, run.run_id),
        plot_url=links.plot(run.model, run.run_id),
        starts_at=state.fired_at or state.since,
        ends_at=state.since if resolved else None,
    )


def routed(rule: AlertRule, channels: Sequence[AlertChannel]) -> list[AlertChannel]:
    return [c for c in channels if rule.channels is None or c.name in rule.channels]


def notifications_for(
    changes: Sequence[Change],
    run: RunResult,
    channels: Sequence[AlertChannel],
    links: Links,
    now: float,
) -> list[Notification]:
    """One webhook message per alert transition; one Slack message per channel for all
    of a run's transitions (Slack takes about one message a second); and to Alertmanager
    every firing alert on every run (it forgets alerts that are not re-sent) plus the
    resolutions."""
    outbox: list[Notification] = []
    for channel in channels:
        events = _events_for(channel, changes, run, links)
        if not events:
            continue
        if channel.kind == "webhook":
            outbox += [_entry(channel, run, [event], event.alert_id, now) for event in events]
        else:  # slack and alertmanager: the run's alerts in one message
            outbox.append(_entry(channel, run, events, run.model, now))
    return outbox


def _events_for(
    channel: AlertChannel, changes: Sequence[Change], run: RunResult, links: Links
) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for change in changes:
        if change.silenced or channel not in routed(change.rule, [channel]):
            continue
        if change.notify is not None:
            events.append(alert_event(change, run, links, change.notify))
        elif channel.kind == "alertmanager" and change.state.state == "firing":
            events.append(alert_event(change, run, links, "refresh"))
    return events


def _entry(
    channel: AlertChannel, run: RunResult, events: list[AlertEvent], key: str, now: float
) -> Notification:
    transitions = ",".join(sorted({event.transition for event in events}))
    return Notification(
        id=notification_id(channel.name, run.run_id, key, transitions),
        channel=channel.name,
        channel_kind=channel.kind,
        order_key=f"{channel.name}|{key}",
        created_at=now,
        events=events,
    )
